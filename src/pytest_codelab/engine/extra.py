"""What the cert-manager and vpa add-ons share: apply, wait, a serving certificate.

Why not in addons.py: those are the base add-ons every cluster has; these helpers serve
the optional ones installed on a running cluster (``up --with``, the gate's
``--codelab-local-addons``), each with its own field manager and its own error prefix.
"""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from pytest_codelab.engine import addons
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.layout import Layout
from pytest_codelab.engine.pki import Authority
from pytest_codelab.engine.timeouts import Timeouts, seconds_flag
from pytest_codelab.engine.waiting import wait_until


def template(name: str, values: dict[str, str]) -> str:
    """``addons/<name>.yaml`` with its ``${...}`` placeholders filled."""
    text = (resources.files("pytest_codelab.engine") / "addons" / f"{name}.yaml").read_text()
    return Template(text).substitute(values)


def apply(layout: Layout, addon: str, stream: str, timeouts: Timeouts) -> None:
    """Server-side apply of a YAML stream as ``codelab-<addon>``."""
    addons.kubectl(
        layout,
        "apply",
        "--server-side",
        "--force-conflicts",
        f"--field-manager=codelab-{addon}",
        "-f",
        "-",
        stdin=stream,
        timeout=timeouts.extra_apply,
    )


def apply_until_accepted(layout: Layout, addon: str, stream: str, timeouts: Timeouts) -> None:
    """Apply again until the API server accepts it: an object that passes through an
    admission webhook is refused while that webhook's CA bundle is still being injected."""
    errors: list[str] = []

    def accepted() -> tuple[bool, str]:
        try:
            apply(layout, addon, stream, timeouts)
        except EngineError as exc:
            errors.append(exc.detail.strip().splitlines()[-1] if exc.detail else str(exc))
            return False, errors[-1]
        return True, "applied"

    wait_until(accepted, timeout=timeouts.extra_ready, what=f"{addon}: apply", interval=3)


def wait(
    layout: Layout,
    addon: str,
    namespace: str | None,
    target: str,
    condition: str,
    timeouts: Timeouts,
) -> None:
    """``kubectl rollout status`` (condition "rollout") or ``kubectl wait --for``; a timeout
    carries the namespace's pods and events."""
    ns = ["-n", namespace] if namespace else []
    flag = f"--timeout={seconds_flag(timeouts.extra_ready)}"
    if condition == "rollout":
        args = ["rollout", "status", *target.split(), flag]
    else:
        args = ["wait", f"--for={condition}", *target.split(), flag]
    try:
        addons.kubectl(layout, *ns, *args, timeout=timeouts.extra_ready + timeouts.slack)
    except EngineError as exc:
        raise EngineError(
            f"{addon} add-on: {target} did not reach {condition} within {timeouts.extra_ready:g}s",
            exc.detail + "\n" + addons.describe_pods(layout, namespace, timeouts),
        ) from exc


@dataclass(frozen=True)
class Serving:
    """A server certificate and the CA that signed it (PEM bytes)."""

    cert: bytes
    key: bytes
    ca: bytes


def serving_certificate(directory: Path, name: str, hosts: tuple[str, ...]) -> Serving:
    """A fresh CA and a server certificate for ``hosts`` (DNS names or IPs), kept under
    ``directory`` like the cluster's own PKI."""
    ca = Authority(directory, f"{name}-ca")
    pair = ca.issue(directory / name, name, server=True, hosts=hosts)
    return Serving(pair.cert.read_bytes(), pair.key.read_bytes(), ca.pair.cert.read_bytes())


def secret_json(namespace: str, name: str, data: dict[str, bytes], addon: str) -> str:
    """A Secret as JSON (``data`` given as bytes, base64-encoded here)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "labels": {"component": addon}},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        }
    )


def secret_key(layout: Layout, namespace: str, name: str, key: str, timeouts: Timeouts) -> bytes:
    """One key of an existing Secret, b"" when the Secret or key is missing."""
    try:
        out = addons.kubectl(
            layout,
            "-n",
            namespace,
            "get",
            "secret",
            name,
            "--ignore-not-found",
            "-o",
            "json",
            timeout=timeouts.kubectl,
        )
    except (EngineError, subprocess.TimeoutExpired):
        return b""
    if not out.strip():
        return b""
    value = (json.loads(out).get("data") or {}).get(key)
    return base64.b64decode(value) if value else b""


def delete(layout: Layout, args: tuple[str, ...], timeouts: Timeouts) -> None:
    """``kubectl delete ARGS --ignore-not-found`` within the add-on deadline."""
    addons.kubectl(
        layout,
        "delete",
        *args,
        "--ignore-not-found",
        f"--timeout={seconds_flag(timeouts.extra_ready)}",
        timeout=timeouts.extra_ready + timeouts.slack,
    )
