"""On a real cluster: a failing run writes no generated secret value into the report
folder or the JUnit XML, with ``--showlocals`` and a container that logs its secrets.

One inner gate run (pytester, in a subprocess) deploys the stack with its generated Secrets
and runs one test that fails on purpose: it holds the Postgres password and connection
string in local variables, prints them, records one as a property, and starts a pod whose
container logs them (so the failure's diagnostics copy that log). It also writes every
generated value to a file beside the report folder; every file of the report folder and
the JUnit XML is then searched for each value, raw and base64, and none may be found.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

#: The ``inner_gate`` fixture (tests/e2e/conftest.py).
InnerGate = Callable[..., pytest.RunResult]

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.slow]

#: Secret keys that hold no secret (shown as they are).
PUBLIC = {("postgres-secret", "username"), ("*", "tls.crt"), ("*", "ca.crt")}

LEAKY_TEST = """
import base64
import json
import logging

from kubernetes import client


def _secret_pod(image):
    def env(name, key):
        ref = client.V1SecretKeySelector(name="postgres-secret", key=key)
        return client.V1EnvVar(name=name, value_from=client.V1EnvVarSource(secret_key_ref=ref))

    container = client.V1Container(
        name="leaky",
        image=image,
        image_pull_policy="IfNotPresent",
        command=["sh", "-c", "echo password=$P url=$U; sleep 3600"],
        env=[env("P", "password"), env("U", "connection-string")],
    )
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="leaky"),
        spec=client.V1PodSpec(containers=[container], restart_policy="Never"),
    )


def test_leaky(codelab_stack, core_v1, codelab_probe_image, waiter, record_property):
    ns = codelab_stack.namespace
    secrets = {
        s.metadata.name: dict(s.data or {})
        for s in core_v1.list_namespaced_secret(ns).items
        if s.type in ("Opaque", "kubernetes.io/tls")
    }
    with open(VALUES_FILE, "w") as out:  # beside the report folder, for the outer test
        json.dump(secrets, out)
    data = secrets["postgres-secret"]
    password = base64.b64decode(data["password"]).decode()
    url = base64.b64decode(data["connection-string"]).decode()
    core_v1.create_namespaced_pod(ns, _secret_pod(codelab_probe_image))

    def logged():
        try:
            log = core_v1.read_namespaced_pod_log("leaky", ns)
        except client.ApiException as exc:
            return False, f"HTTP {exc.status}"
        return "password=" in log, log[-80:]

    waiter.until(logged, "pod leaky to log its secrets", kind="probe")
    print("password", password, "url", url)
    logging.getLogger("leaky").warning("connecting to %s", url)
    record_property("url", url)
    assert password == "not the password", url
"""


def _searched_values(raw: dict[str, dict[str, str]]) -> set[str]:
    """Each generated secret value as base64 and decoded (a PEM key line by line too)."""
    values: set[str] = set()
    for name, data in raw.items():
        for key, encoded in data.items():
            if (name, key) in PUBLIC or ("*", key) in PUBLIC:
                continue
            plain = base64.b64decode(encoded).decode()
            values |= {encoded, plain, *(line for line in plain.splitlines() if len(line) >= 16)}
    return values


def test_a_failing_run_leaks_no_secret(pytester: pytest.Pytester, inner_gate: InnerGate) -> None:
    values_file = pytester.path / "generated.json"
    test_file = pytester.path / "test_leaky.py"
    test_file.write_text(f"VALUES_FILE = {str(values_file)!r}\n{LEAKY_TEST}")
    junit = pytester.path / "junit.xml"
    result = inner_gate("--showlocals", f"--junitxml={junit}", tests=[str(test_file)])
    result.assert_outcomes(failed=1)
    values = _searched_values(json.loads(values_file.read_text()))
    assert len(values) >= 10, "the stack's Secrets were not read"
    report = pytester.path / "report"
    files: list[Path] = [p for p in report.rglob("*") if p.is_file()] + [junit]
    logs = [p for p in files if p.name.startswith("leaky.leaky")]
    assert logs, f"the leaky pod's log was not collected: {sorted(p.name for p in files)}"
    assert "password=*** url=***" in logs[0].read_text()
    assert "password   = '***'" in junit.read_text()
    leaks = sorted(
        f"{p.relative_to(pytester.path)}: {name}"
        for p in files
        for name, v in ((f"value #{i}", v) for i, v in enumerate(sorted(values)))
        if v in p.read_text(errors="replace")
    )
    assert leaks == [], "generated secret values found in the report"
