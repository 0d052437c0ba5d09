"""Reading API objects whose fields the client declares optional: the metadata an object
always has in practice, its name, and nothing else to guess."""

from __future__ import annotations

from typing import Any

from kubernetes import client


def meta(obj: Any) -> client.V1ObjectMeta:
    """The object's metadata (an empty one when the API gave none)."""
    metadata: client.V1ObjectMeta | None = obj.metadata
    return metadata or client.V1ObjectMeta()


def name_of(obj: Any) -> str:
    """The object's name ('' when it has none)."""
    return str(meta(obj).name or "")


def deleting(obj: Any) -> bool:
    """The object has a deletion timestamp: it is going away."""
    return meta(obj).deletion_timestamp is not None
