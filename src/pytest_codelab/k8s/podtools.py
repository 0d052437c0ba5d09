"""Reach into the cluster the way an operator would with kubectl.

``exec_in_pod`` is ``kubectl exec``, ``port_forward`` is ``kubectl port-forward`` (a local
port, for the duration of a ``with`` block), and ``probe_pod`` is the seed's
``kubectl run test-pod --image=busybox --rm -- wget ...``: a short-lived pod that runs one
command inside the cluster network and is always deleted.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import select
import shlex
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward, stream

from pytest_codelab.errors import WaitTimeout
from pytest_codelab.k8s.diagnostics import pod_summary
from pytest_codelab.k8s.pods import is_ready
from pytest_codelab.k8s.waiting import format_seconds, wait_until
from pytest_codelab.safety import MANAGED_BY, MANAGED_BY_LABEL

#: The seed's troubleshooting image; the local engine imports this exact tag.
DEFAULT_PROBE_IMAGE = "docker.io/library/busybox:1.36"
#: Labels of every probe pod: the gate's, and its role.
PROBE_LABELS = {MANAGED_BY_LABEL: MANAGED_BY, "codelab.dev/role": "probe"}
_ERROR_CHANNEL = 3


@dataclass(frozen=True)
class ExecResult:
    """Outcome of a command: exit code and what it printed."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def _exit_code(status_text: str) -> tuple[int, str]:
    """Exit code from the exec error channel's Status (and its message on failure)."""
    if not status_text.strip():
        return -1, "no exit status received"
    status = json.loads(status_text)
    if status.get("status") == "Success":
        return 0, ""
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause["message"]), ""
    return -1, str(status.get("message", "command failed to start"))


def exec_in_pod(
    core: client.CoreV1Api,
    namespace: str,
    pod: str,
    command: Sequence[str],
    *,
    container: str | None = None,
    timeout: float,
) -> ExecResult:
    """Run ``command`` (argv, no shell) in a container and wait for it to finish."""
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        command=list(command),
        container=container,
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    try:
        resp.run_forever(timeout=timeout)
        if resp.is_open():
            raise WaitTimeout(
                f"timed out after {format_seconds(timeout)} waiting for "
                f"`{shlex.join(command)}` in pod/{pod}"
            )
        stdout, stderr = resp.read_stdout(timeout=0), resp.read_stderr(timeout=0)
        code, problem = _exit_code(resp.read_channel(_ERROR_CHANNEL, timeout=0))
    finally:
        resp.close()
    return ExecResult(code, stdout, stderr + problem)


def pod_for_service(
    core: client.CoreV1Api, namespace: str, service: str, port: int
) -> tuple[str, int]:
    """A Ready pod behind a Service and the container port its ``port`` maps to.

    What ``kubectl port-forward svc/NAME PORT`` does: pick one backing pod.
    """
    svc = core.read_namespaced_service(service, namespace)
    spec = svc.spec or client.V1ServiceSpec()
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.selector or {}).items()))
    if not selector:
        raise ValueError(f"service/{service} has no selector; forward to a pod instead")
    svc_port = next((p for p in spec.ports or [] if p.port == port), None)
    if svc_port is None:
        raise ValueError(f"service/{service} has no port {port}")
    for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
        if is_ready(pod):
            name = (pod.metadata or client.V1ObjectMeta()).name or ""
            return name, _container_port(pod, svc_port.target_port, port)
    raise ValueError(f"service/{service} has no Ready pod")


def _container_port(pod: client.V1Pod, target: Any, default: int) -> int:
    """Resolve a Service targetPort (number or container port name) against the pod."""
    if target is None:
        return default
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for container in pod.spec.containers if pod.spec else []:
        for port in container.ports or []:
            if port.name == target:
                return port.container_port
    raise ValueError(f"pod has no container port named {target!r}")


def _relay(local: socket.socket, remote: Any, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes or the forward stops."""
    peers = {local: remote, remote: local}
    while not stop.is_set():
        readable, _, _ = select.select(list(peers), [], [], 0.5)
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            peers[sock].sendall(data)


def _serve_connection(
    conn: socket.socket, open_remote: Callable[[], Any], port: int, stop: threading.Event
) -> None:
    with contextlib.closing(conn):
        try:
            forward = open_remote()
        except ApiException:
            return
        remote = forward.socket(port)
        remote.setblocking(True)
        try:
            _relay(conn, remote, stop)
        finally:
            remote.close()


def _accept_loop(
    server: socket.socket, open_remote: Callable[[], Any], port: int, stop: threading.Event
) -> None:
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        threading.Thread(
            target=_serve_connection, args=(conn, open_remote, port, stop), daemon=True
        ).start()


@contextlib.contextmanager
def port_forward(
    core: client.CoreV1Api, namespace: str, pod: str, remote_port: int, *, host: str = "127.0.0.1"
) -> Iterator[int]:
    """Forward a free local port to ``remote_port`` of ``pod``; yield the local port.

    Each accepted connection gets its own port-forward stream, like kubectl.
    """

    def open_remote() -> Any:
        return portforward(
            core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(remote_port)
        )

    server = socket.create_server((host, 0))
    server.settimeout(0.5)
    stop = threading.Event()
    thread = threading.Thread(
        target=_accept_loop, args=(server, open_remote, remote_port, stop), daemon=True
    )
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        server.close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class ProbeResult:
    """What a probe pod's command printed and how it exited."""

    exit_code: int
    output: str
    pod: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def probe_manifest(name: str, command: Sequence[str], image: str) -> client.V1Pod:
    """A pod that runs ``command`` once, as an unprivileged user (passes PSA restricted)."""
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=dict(PROBE_LABELS)),
        spec=client.V1PodSpec(
            restart_policy="Never",
            automount_service_account_token=False,
            termination_grace_period_seconds=0,
            security_context=client.V1PodSecurityContext(
                run_as_non_root=True,
                run_as_user=65534,
                run_as_group=65534,
                seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
            ),
            containers=[
                client.V1Container(
                    name="probe",
                    image=image,
                    image_pull_policy="IfNotPresent",
                    command=list(command),
                    security_context=client.V1SecurityContext(
                        allow_privilege_escalation=False,
                        read_only_root_filesystem=True,
                        capabilities=client.V1Capabilities(drop=["ALL"]),
                    ),
                    resources=client.V1ResourceRequirements(
                        requests={"cpu": "10m", "memory": "16Mi"},
                        limits={"cpu": "200m", "memory": "64Mi"},
                    ),
                )
            ],
        ),
    )


def probe_pod(
    core: client.CoreV1Api,
    namespace: str,
    command: Sequence[str] | str,
    *,
    image: str = DEFAULT_PROBE_IMAGE,
    timeout: float,
) -> ProbeResult:
    """Run ``command`` in a fresh pod (a string runs under ``sh -c``); always delete it."""
    argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
    name = f"codelab-probe-{secrets.token_hex(4)}"
    core.create_namespaced_pod(namespace, probe_manifest(name, argv, image))
    try:
        wait_until(
            lambda: _finished(core, namespace, name),
            timeout=timeout,
            what=f"probe pod/{name} (`{shlex.join(argv)}`) to finish",
        )
        pod = core.read_namespaced_pod(name, namespace)
        output = core.read_namespaced_pod_log(name, namespace, container="probe")
        return ProbeResult(_probe_exit_code(pod), output, name)
    finally:
        with contextlib.suppress(ApiException):
            core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)


def _finished(core: client.CoreV1Api, namespace: str, name: str) -> tuple[bool, str]:
    pod = core.read_namespaced_pod(name, namespace)
    phase = pod.status.phase if pod.status else None
    return phase in ("Succeeded", "Failed"), pod_summary(pod)


def _probe_exit_code(pod: client.V1Pod) -> int:
    for cs in (pod.status.container_statuses if pod.status else None) or []:
        if cs.state and cs.state.terminated:
            return cs.state.terminated.exit_code
    return -1


#: Shell for psql inside a PostgreSQL container, authenticated from the container's own
#: environment (the official image's POSTGRES_* variables): the gate never holds the password.
_PSQL = (
    'export PGPASSWORD="$POSTGRES_PASSWORD"; '
    'psql -v ON_ERROR_STOP=1 -h 127.0.0.1 -U "${POSTGRES_USER:-postgres}" '
    '-d "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" -tAc "$1"'
)
#: The same for redis-cli (REDIS_PASSWORD when the container sets one).
_REDIS_CLI = (
    'if [ -z "$REDISCLI_AUTH" ] && [ -n "$REDIS_PASSWORD" ]; then '
    'export REDISCLI_AUTH="$REDIS_PASSWORD"; fi; redis-cli -h 127.0.0.1 "$@"'
)


def psql_argv(sql: str) -> list[str]:
    """argv that runs one SQL statement in a PostgreSQL container (tuples only, unaligned)."""
    return ["sh", "-c", _PSQL, "psql", sql]


def redis_cli_argv(*args: str) -> list[str]:
    """argv that runs one redis-cli command in a Redis container."""
    return ["sh", "-c", _REDIS_CLI, "redis-cli", *args]
