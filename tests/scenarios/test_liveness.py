"""The liveness scenario's budget comes from the expectation, never from the live object."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from pytest_codelab.deploy.expected import load_expectation
from pytest_codelab.scenarios.liveness import (
    FAULT_HOOK,
    liveness_budget,
    liveness_events,
    resolve_port,
)


def test_the_guide_budget_of_agent_runtime() -> None:
    """The guide's agent-runtime liveness probe: period 10, timeout 3 (recorded deviation),
    no failureThreshold (Kubernetes' default 3): 10 x 3 + 3 = 33 s."""
    budget = liveness_budget(load_expectation(None), "Deployment", "agent-runtime", "agent-runtime")
    assert budget is not None
    assert (budget.period, budget.failure_threshold, budget.timeout) == (10, 3, 3)
    assert budget.seconds == 33 and budget.port == 8001
    assert "failureThreshold: Kubernetes default" in str(budget)
    assert "expect.probes.agent-runtime.livenessProbe.periodSeconds" in str(budget)


def test_an_operator_expectation_changes_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "expect.yaml"
    path.write_text(
        "expect:\n  probes:\n    gateway:\n      guide: mine\n      livenessProbe:\n"
        "        {path: /health, port: 8000, periodSeconds: 5, failureThreshold: 2,"
        " timeoutSeconds: 1}\n"
    )
    budget = liveness_budget(load_expectation(path), "Deployment", "gateway", "gateway")
    assert budget is not None and budget.seconds == 11


def test_no_expected_liveness_probe_is_none() -> None:
    assert liveness_budget(load_expectation(None), "StatefulSet", "redis", "redis") is None


def test_named_ports_resolve_in_the_pod() -> None:
    pod = client.V1Pod(
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="gateway", ports=[client.V1ContainerPort(container_port=8000, name="http")]
                )
            ]
        )
    )
    assert resolve_port(pod, "gateway", "http") == 8000
    assert resolve_port(pod, "gateway", 8001) == 8001
    assert resolve_port(pod, "gateway", "metrics") is None


class _Events:
    def __init__(self, events: list[client.CoreV1Event]) -> None:
        self.events = events

    def list_namespaced_event(self, namespace: str, field_selector: str) -> client.CoreV1EventList:
        return client.CoreV1EventList(items=self.events)


def _event(reason: str, message: str, at: float, field_path: str) -> client.CoreV1Event:
    from datetime import UTC, datetime

    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=f"{reason}-{at}"),
        involved_object=client.V1ObjectReference(kind="Pod", name="p", field_path=field_path),
        reason=reason,
        message=message,
        last_timestamp=datetime.fromtimestamp(at, UTC),
    )


def test_liveness_events_are_the_container_s_since_the_fault() -> None:
    mine, other = "spec.containers{gateway}", "spec.containers{sidecar}"
    events = [
        _event(
            "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 503", 90, mine
        ),
        _event(
            "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 503", 110, mine
        ),
        _event(
            "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", 105, mine
        ),
        _event("Unhealthy", "Liveness probe failed: timeout", 111, other),
        _event("Killing", "Container gateway failed liveness probe, will be restarted", 125, mine),
        _event("Killing", "Stopping container gateway", 126, mine),
    ]
    found = liveness_events(_Events(events), "ns", "p", "gateway", since=100.5)  # type: ignore[arg-type]
    assert [e.metadata.name for e in found.failed] == ["Unhealthy-110"]
    assert [e.metadata.name for e in found.killed] == ["Killing-125"]
    assert {e.metadata.name for e in found.others} >= {"Unhealthy-105", "Killing-126"}


def test_the_hook_name_is_the_services_own() -> None:
    import sys

    services = Path(__file__).resolve().parents[2] / "images" / "services"
    sys.path.insert(0, str(services))
    try:
        import codelab_common
    finally:
        sys.path.remove(str(services))
    assert codelab_common.FAULT_HOOK == FAULT_HOOK
