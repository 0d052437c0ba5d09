"""A liveness probe made to fail on purpose, while the container's process stays alive.

Why: a container restarted after its process died proves only that exits are restarted; the
guide's liveness probe is proven by a restart the kubelet makes *because the probe fails*.
Nothing inside a container can stop PID 1 (the kernel drops SIGSTOP/SIGKILL sent to a
pid-namespace init from within it), so the check uses the reference services' fault hook
(images/README.md, "Fault hook (test contract)"): SIGUSR1 to PID 1 makes ``/health`` answer
503 until the process is restarted. A build advertises the hook in ``/version``'s
``fault_hooks``; one that does not cannot be checked this way (SIGUSR1 without a handler
would kill the process).

The probe's budget (periodSeconds x failureThreshold + timeoutSeconds) comes from the
expectation (the guide's figures), never from the live object: Kubernetes' own defaults fill
the fields the guide leaves out, as they would in the manifest the guide shows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client

from pytest_codelab.deploy.expected import Expectation
from pytest_codelab.k8s import podtools
from pytest_codelab.k8s.diagnostics import event_time

Exec = Callable[..., podtools.ExecResult]

#: The hook the reference services advertise in /version (images/services/codelab_common.py).
FAULT_HOOK = "SIGUSR1:fail-health"
#: Kubernetes' defaults for probe fields a manifest leaves out (the guide's liveness probe
#: states no failureThreshold, for instance).
PROBE_DEFAULTS = {"periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3}
#: Sends the hook's signal to PID 1 and prints when, by the node's clock (the clock the
#: kubelet stamps its events with).
FIRE_SCRIPT = "import os, signal, time; os.kill(1, signal.SIGUSR1); print(repr(time.time()))"
#: Prints the ``fault_hooks`` the service advertises at /version (argv[1]: its port).
HOOKS_SCRIPT = """
import json, sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:%s/version" % sys.argv[1], timeout=5) as resp:
    print(json.dumps(json.load(resp).get("fault_hooks") or []))
"""
LIVENESS_FAILED = "Liveness probe failed"
KILLED_FOR_LIVENESS = "failed liveness probe"


@dataclass(frozen=True)
class ProbeBudget:
    """How long a failing liveness probe may take to get its container killed, per the
    expectation: each figure with the key that states it (or "Kubernetes default")."""

    workload: str
    port: int | str
    period: int
    timeout: int
    failure_threshold: int
    keys: tuple[str, ...]

    @property
    def seconds(self) -> float:
        """The last failing probe starts at most ``failureThreshold`` periods after the fault
        (the first within one period) and takes at most ``timeoutSeconds``."""
        return float(self.period * self.failure_threshold + self.timeout)

    def __str__(self) -> str:
        return (
            f"periodSeconds {self.period} x failureThreshold {self.failure_threshold} + "
            f"timeoutSeconds {self.timeout} = {self.seconds:g}s ({'; '.join(self.keys)})"
        )


def liveness_budget(
    expected: Expectation, kind: str, name: str, container: str
) -> ProbeBudget | None:
    """The expected liveness probe of ``kind/name``'s ``container`` as a budget; None when
    the expectation states no liveness probe for it."""
    stated = {
        fid.field.split(".", 1)[1]: figure
        for fid, figure in expected.area("probes").items()
        if (fid.kind, fid.name, fid.part) == (kind, name, container)
        and fid.field.startswith("livenessProbe.")
    }
    if not stated:
        return None
    values: dict[str, int] = {}
    keys: list[str] = []
    for field, default in PROBE_DEFAULTS.items():
        figure = stated.get(field)
        values[field] = int(figure.value) if figure else default
        keys.append(f"{field}: {figure.key}" if figure else f"{field}: Kubernetes default")
    port_figure = stated.get("port")
    return ProbeBudget(
        f"{kind.lower()}/{name}",
        port_figure.value if port_figure else "",
        values["periodSeconds"],
        values["timeoutSeconds"],
        values["failureThreshold"],
        tuple(keys),
    )


def resolve_port(pod: client.V1Pod, container: str, port: int | str) -> int | None:
    """A probe's port as a number: a named port looked up in the pod's container."""
    if isinstance(port, int):
        return port
    for c in pod.spec.containers if pod.spec else []:
        if c.name == container:
            for p in c.ports or []:
                if p.name == port:
                    return int(p.container_port)
    return None


def fault_hooks(pod_exec: Exec, pod: str, container: str, port: int) -> list[str]:
    """The fault hooks the service in ``pod`` advertises at /version ([] when none or when it
    does not answer: the exec's error is the caller's to show)."""
    result = pod_exec(pod, ["python3", "-c", HOOKS_SCRIPT, str(port)], container=container)
    if not result.ok:
        return []
    try:
        hooks = json.loads(result.stdout.strip() or "[]")
    except ValueError:
        return []
    return [str(h) for h in hooks] if isinstance(hooks, list) else []


def fail_health(pod_exec: Exec, pod: str, container: str) -> float:
    """Fire the fault hook in ``pod`` (SIGUSR1 to PID 1); when it was sent, by the node's
    clock. AssertionError when the exec fails."""
    result = pod_exec(pod, ["python3", "-c", FIRE_SCRIPT], container=container)
    if not result.ok:
        raise AssertionError(f"SIGUSR1 to PID 1 of pod/{pod} failed: {result.stderr.strip()}")
    return float(result.stdout.strip())


@dataclass(frozen=True)
class LivenessEvents:
    """The pod's events about its liveness probe since the fault."""

    failed: list[client.CoreV1Event]
    killed: list[client.CoreV1Event]
    others: list[client.CoreV1Event]


def liveness_events(
    core: client.CoreV1Api, namespace: str, pod: str, container: str, since: float
) -> LivenessEvents:
    """Events of ``pod`` stamped at or after ``since`` (node clock; events have whole
    seconds, so one second earlier counts): Unhealthy "Liveness probe failed", Killing
    "... failed liveness probe, will be restarted", and the rest (for messages)."""
    events = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={pod}"
    ).items
    recent = sorted((e for e in events if event_time(e) >= int(since)), key=event_time)
    mine = f"spec.containers{{{container}}}"
    failed = [
        e
        for e in recent
        if e.reason == "Unhealthy"
        and (e.message or "").startswith(LIVENESS_FAILED)
        and (e.involved_object.field_path or mine) == mine
    ]
    killed = [
        e
        for e in recent
        if e.reason == "Killing"
        and KILLED_FOR_LIVENESS in (e.message or "")
        and (e.involved_object.field_path or mine) == mine
    ]
    others = [e for e in recent if e not in failed and e not in killed]
    return LivenessEvents(failed, killed, others)
