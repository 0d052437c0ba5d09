"""Rules on every container of a workload: resources, probes aimed at declared ports, pinned
images (seed best practices 2 and 3, and what makes a deployment reproducible)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pytest_codelab.deploy.manifests import split_image
from pytest_codelab.deploy.quantity import parse_quantity
from pytest_codelab.deploy.rules.base import (
    Obj,
    Violation,
    cname,
    init_containers,
    main_containers,
    violation,
)


def check_resources(obj: Obj) -> list[Violation]:
    """Requests and limits for cpu and memory on every container, requests <= limits."""
    out: list[Violation] = []
    for init, group in ((False, main_containers(obj)), (True, init_containers(obj))):
        for c in group:
            res = c.get("resources") or {}
            missing = [
                f"{section}.{what}"
                for section in ("requests", "limits")
                for what in ("cpu", "memory")
                if (res.get(section) or {}).get(what) in (None, "")
            ]
            if missing:
                out.append(
                    violation(
                        "resources",
                        obj,
                        f"no resources.{', resources.'.join(missing)}",
                        "set resources.requests and resources.limits for cpu and memory "
                        "(e.g. the values profile's figures for this service)",
                        cname(c, init),
                    )
                )
                continue
            for what in ("cpu", "memory"):
                try:
                    req = parse_quantity(res["requests"][what])
                    lim = parse_quantity(res["limits"][what])
                except (ValueError, TypeError):
                    continue  # malformed quantities are the schema check's to report
                if req > lim:
                    out.append(
                        violation(
                            "resources",
                            obj,
                            f"requests.{what} {res['requests'][what]} is above "
                            f"limits.{what} {res['limits'][what]}",
                            f"lower requests.{what} or raise limits.{what}",
                            cname(c, init),
                        )
                    )
    return out


def _declared_ports(c: Mapping[str, Any]) -> tuple[set[int], set[str]]:
    numbers: set[int] = set()
    names: set[str] = set()
    for p in c.get("ports") or []:
        if isinstance(p.get("containerPort"), int):
            numbers.add(p["containerPort"])
        if isinstance(p.get("name"), str):
            names.add(p["name"])
    return numbers, names


def _probe_port(probe: Mapping[str, Any]) -> Any:
    for action in ("httpGet", "tcpSocket", "grpc"):
        if isinstance(probe.get(action), Mapping):
            return probe[action].get("port")
    return None


def check_probes(obj: Obj) -> list[Violation]:
    """Liveness and readiness probes on every serving container, aimed at a declared port."""
    out: list[Violation] = []
    for c in main_containers(obj):
        if not c.get("ports"):
            continue
        numbers, names = _declared_ports(c)
        first = min(numbers) if numbers else None
        target = f"on port {first}" if first else "on the serving port"
        for probe in ("readinessProbe", "livenessProbe"):
            spec = c.get(probe)
            if not isinstance(spec, Mapping) or not spec:
                out.append(
                    violation(
                        "probes",
                        obj,
                        f"no {probe}",
                        f"add a {probe} (httpGet /health {target}, or an exec check for "
                        "a server without HTTP)",
                        cname(c),
                    )
                )
                continue
            port = _probe_port(spec)
            if port is not None and port not in numbers and port not in names:
                out.append(
                    violation(
                        "probes",
                        obj,
                        f"{probe} targets port {port!r}, which the container does not declare",
                        f"point the {probe} at a declared containerPort ({sorted(numbers)})",
                        cname(c),
                    )
                )
    return out


FLOATING_TAGS = frozenset(
    {"latest", "main", "master", "edge", "nightly", "stable", "lts", "rolling", "dev", "head"}
)
_FLOATING_PART = re.compile(r"(^|[-_.])(latest|nightly|edge|snapshot)($|[-_.])", re.I)


def image_problem(image: str) -> str | None:
    """Why an image reference is not pinned, or None if it is (a digest always pins)."""
    repo, tag, digest = split_image(image)
    if digest:
        return None
    if not tag:
        return "has no tag (it means :latest)"
    if tag.lower() in FLOATING_TAGS or tag.lower() in {"main-stable", "main-latest"}:
        return f"uses the floating tag {tag!r}"
    if _FLOATING_PART.search(tag):
        return f"uses the floating tag {tag!r}"
    return None


def check_images(obj: Obj) -> list[Violation]:
    """Every container image pinned to a version tag or digest."""
    out: list[Violation] = []
    for init, group in ((False, main_containers(obj)), (True, init_containers(obj))):
        for c in group:
            image = c.get("image")
            if not isinstance(image, str) or not image:
                out.append(
                    violation("pinned-images", obj, "no image", "set an image", cname(c, init))
                )
                continue
            problem = image_problem(image)
            if problem:
                out.append(
                    violation(
                        "pinned-images",
                        obj,
                        f"image {image} {problem}",
                        "pin a released version tag (e.g. :1.0.0) or a digest (@sha256:...)",
                        cname(c, init),
                    )
                )
    return out
