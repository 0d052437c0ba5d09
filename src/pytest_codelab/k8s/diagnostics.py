"""What a failed test leaves behind: events, pod descriptions and logs of its namespace.

Every file starts with the ``kubectl`` command that shows the same thing live, so the
person reading a red CI run can rerun it against the cluster. Secrets are never read;
pod descriptions list environment variable names and their sources, never values (a
plain ``value:`` may hold a key copied from a values file).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

from kubernetes import client
from kubernetes.client.exceptions import ApiException

#: The index file of a failure's diagnostics and its first line: how a new run knows which
#: folders of the report dir are an earlier run's diagnostics (report.cleanup).
DIAGNOSTICS_INDEX, DIAGNOSTICS_HEADER = "index.txt", "# diagnostics of namespace "
#: Lines of each log kept; the end of a log is where a crash is explained.
LOG_TAIL_LINES = 2000


def kubectl(kubeconfig: str | None, context: str | None, namespace: str) -> str:
    """``kubectl --kubeconfig X --context Y -n NS``: the prefix of every rerunnable command
    (``KUBECONFIG=A:B kubectl ...`` for a list of files: --kubeconfig takes only one)."""
    parts = ["kubectl"]
    listed = bool(kubeconfig) and os.pathsep in str(kubeconfig)
    if kubeconfig and not listed:
        parts += ["--kubeconfig", kubeconfig]
    if context:
        parts += ["--context", context]
    parts += ["-n", namespace]
    env = f"KUBECONFIG={shlex.quote(str(kubeconfig))} " if listed else ""
    return env + shlex.join(parts)


def event_time(event: client.CoreV1Event) -> float:
    """When the event last happened, as a timestamp (0 if it does not say)."""
    meta = event.metadata or client.V1ObjectMeta()
    moment = (
        event.last_timestamp or event.event_time or event.first_timestamp or meta.creation_timestamp
    )
    return moment.timestamp() if moment else 0.0


def sorted_events(core: client.CoreV1Api, namespace: str) -> list[client.CoreV1Event]:
    """Events of the namespace, oldest first (like ``--sort-by=.lastTimestamp``)."""
    return sorted(core.list_namespaced_event(namespace).items, key=event_time)


def event_line(event: client.CoreV1Event) -> str:
    obj = event.involved_object
    count = f" (x{event.count})" if event.count and event.count > 1 else ""
    moment = event.last_timestamp or event.event_time or event.first_timestamp
    when = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"
    return (
        f"{when}  {event.type or '-':8} {event.reason or '-':24} "
        f"{(obj.kind or '').lower()}/{obj.name}: {(event.message or '').strip()}{count}"
    )


def _state(state: client.V1ContainerState | None) -> str:
    if state is None:
        return "unknown"
    if state.waiting:
        return f"Waiting ({state.waiting.reason}): {state.waiting.message or ''}".rstrip(": ")
    if state.terminated:
        t = state.terminated
        return (
            f"Terminated ({t.reason}, exit {t.exit_code}) at {t.finished_at}: {t.message or ''}"
        ).rstrip(": ")
    if state.running:
        return f"Running since {state.running.started_at}"
    return "unknown"


def container_problems(pod: client.V1Pod) -> list[str]:
    """Why the pod's containers are not fine: waiting reasons, crashes, restarts."""
    status = pod.status or client.V1PodStatus()
    problems = []
    for cs in (status.init_container_statuses or []) + (status.container_statuses or []):
        waiting = cs.state.waiting if cs.state else None
        if waiting and waiting.reason not in (None, "PodInitializing", "ContainerCreating"):
            problems.append(f"{cs.name} waiting: {waiting.reason} {waiting.message or ''}".strip())
        last = cs.last_state.terminated if cs.last_state else None
        if last is not None and cs.restart_count:
            problems.append(
                f"{cs.name} restarted {cs.restart_count}x, last exit {last.exit_code} "
                f"({last.reason})"
            )
        elif not cs.ready and not waiting and cs.state and cs.state.running:
            problems.append(f"{cs.name} running but not ready (readiness probe failing)")
    return problems


def pod_summary(pod: client.V1Pod) -> str:
    """One line: name, phase, failing conditions and container problems."""
    meta = pod.metadata or client.V1ObjectMeta()
    status = pod.status or client.V1PodStatus()
    failing, explained = [], set()
    for c in status.conditions or []:
        if c.status == "True":
            continue
        why = (c.reason, c.message)
        # Ready and ContainersReady usually fail for the same reason: say it once.
        detail = f" ({c.reason}: {c.message})" if c.reason and why not in explained else ""
        explained.add(why)
        failing.append(f"{c.type}={c.status}{detail}")
    parts = [f"pod/{meta.name} {status.phase or 'Unknown'}"]
    if status.reason:
        parts.append(f"reason {status.reason}: {status.message or ''}".strip())
    parts += failing + container_problems(pod)
    return "; ".join(parts)


def _env_source(env: client.V1EnvVar) -> str:
    ref = env.value_from
    if ref is None:
        return env.name
    if ref.secret_key_ref:
        return f"{env.name} (from secret {ref.secret_key_ref.name}/{ref.secret_key_ref.key})"
    if ref.config_map_key_ref:
        cm = ref.config_map_key_ref
        return f"{env.name} (from configmap {cm.name}/{cm.key})"
    return f"{env.name} (from field or resource)"


def _resources(res: client.V1ResourceRequirements | None) -> tuple[str, str]:
    def fmt(values: dict[str, str] | None) -> str:
        return " ".join(f"{k}={v}" for k, v in sorted((values or {}).items())) or "-"

    return (fmt(res.requests), fmt(res.limits)) if res else ("-", "-")


def _pairs(mapping: dict[str, str] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((mapping or {}).items())) or "-"


def describe_pod(pod: client.V1Pod) -> str:
    """A readable account of a pod, in the spirit of ``kubectl describe pod``."""
    meta = pod.metadata or client.V1ObjectMeta()
    spec = pod.spec or client.V1PodSpec(containers=[])
    status = pod.status or client.V1PodStatus()
    lines = [
        f"Name:       {meta.name}",
        f"Namespace:  {meta.namespace}",
        f"Node:       {spec.node_name or '-'}",
        f"Phase:      {status.phase}"
        + (f" ({status.reason}: {status.message})" if status.reason else ""),
        f"Pod IP:     {status.pod_ip or '-'}",
        f"Started:    {status.start_time or '-'}",
        f"Labels:     {_pairs(meta.labels)}",
        "Conditions:",
    ]
    for c in status.conditions or []:
        why = f"  {c.reason}: {c.message}" if c.reason else ""
        lines.append(f"  {c.type:26} {c.status}{why}")
    statuses = {cs.name: cs for cs in (status.init_container_statuses or [])}
    statuses.update({cs.name: cs for cs in (status.container_statuses or [])})
    for title, containers in (
        ("Init containers:", spec.init_containers),
        ("Containers:", spec.containers),
    ):
        if containers:
            lines.append(title)
            for container in containers:
                lines += _describe_container(container, statuses.get(container.name))
    return "\n".join(lines) + "\n"


def _describe_container(
    container: client.V1Container, cs: client.V1ContainerStatus | None
) -> list[str]:
    requests, limits = _resources(container.resources)
    env = ", ".join(_env_source(e) for e in container.env or []) or "-"
    lines = [
        f"  {container.name}:",
        f"    Image:      {container.image}",
        f"    State:      {_state(cs.state) if cs else 'not started'}",
    ]
    if cs and cs.last_state and (cs.last_state.terminated or cs.last_state.waiting):
        lines.append(f"    Last state: {_state(cs.last_state)}")
    lines += [
        f"    Ready:      {cs.ready if cs else False}",
        f"    Restarts:   {cs.restart_count if cs else 0}",
        f"    Requests:   {requests}",
        f"    Limits:     {limits}",
        f"    Env:        {env}",
    ]
    return lines


def _log(core: client.CoreV1Api, pod: str, namespace: str, container: str, previous: bool) -> str:
    try:
        return core.read_namespaced_pod_log(
            pod, namespace, container=container, previous=previous, tail_lines=LOG_TAIL_LINES
        )
    except ApiException as exc:
        return f"(no log: HTTP {exc.status} {exc.reason})\n"


def _write(path: Path, command: str, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {command}\n{body}", encoding="utf-8")


def _same(text: str) -> str:
    return text


def collect(
    core: client.CoreV1Api,
    namespace: str,
    dest_dir: Path,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    scrub: Callable[[str], str] = _same,
) -> Path:
    """Write events, pod descriptions and logs of ``namespace`` under ``dest_dir``, each
    through ``scrub`` (the run's secret values masked: a container may log its password).

    Returns the index file, which lists every file with the command that reproduces it.
    """
    prefix = kubectl(kubeconfig, context, namespace)
    index: list[str] = [f"{DIAGNOSTICS_HEADER}{namespace}", ""]

    def add(relpath: str, command: str, body: str) -> None:
        _write(dest_dir / relpath, command, scrub(body))
        index.append(f"{relpath}\n    {command}")

    events = sorted_events(core, namespace)
    add(
        "events.txt",
        f"{prefix} get events --sort-by=.lastTimestamp",
        "".join(event_line(e) + "\n" for e in events) or "(no events)\n",
    )
    pods = core.list_namespaced_pod(namespace).items
    for pod in pods:
        name = (pod.metadata or client.V1ObjectMeta()).name or "unknown"
        add(f"pods/{name}.txt", f"{prefix} describe pod {name}", describe_pod(pod))
        _collect_logs(core, namespace, pod, prefix, add)
    summary = [pod_summary(p) for p in pods] or ["(no pods)"]
    (dest_dir / DIAGNOSTICS_INDEX).write_text(
        scrub("\n".join(index + ["", "# pods"] + summary) + "\n"), encoding="utf-8"
    )
    return dest_dir / DIAGNOSTICS_INDEX


def _collect_logs(
    core: client.CoreV1Api,
    namespace: str,
    pod: client.V1Pod,
    prefix: str,
    add: Callable[[str, str, str], None],
) -> None:
    name = (pod.metadata or client.V1ObjectMeta()).name or "unknown"
    status = pod.status or client.V1PodStatus()
    for cs in (status.init_container_statuses or []) + (status.container_statuses or []):
        command = f"{prefix} logs {name} -c {cs.name} --tail={LOG_TAIL_LINES}"
        add(f"logs/{name}.{cs.name}.log", command, _log(core, name, namespace, cs.name, False))
        if cs.restart_count:
            add(
                f"logs/{name}.{cs.name}.previous.log",
                f"{command} --previous",
                _log(core, name, namespace, cs.name, True),
            )
