"""The run's inputs checked up front: a malformed manifest or values file stops the run with
one line and a non-zero exit, never a traceback (the offline suite, as an operator runs it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_codelab.resources import bundled_path

SUITE = bundled_path("suites") / "test_static.py"
Obj = dict[str, Any]


def _manifests(pytester: pytest.Pytester, fault: Callable[[Obj], None]) -> Path:
    """The bundled manifests with ``fault`` applied to every object."""
    dest = pytester.path / "manifests"
    dest.mkdir()
    for source in sorted(bundled_path("manifests").glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(source.read_text()) if d]
        for doc in docs:
            fault(doc)
        (dest / source.name).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return dest


def _no_gateway_spec(obj: Obj) -> None:
    if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "gateway":
        del obj["spec"]


def _ports_a_string(obj: Obj) -> None:
    if obj["kind"] == "StatefulSet" and obj["metadata"]["name"] == "redis":
        obj["spec"]["template"]["spec"]["containers"][0]["ports"] = "6379"


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        str(SUITE),
        f"--rootdir={SUITE.parent}",
        "-p",
        "no:cacheprovider",
        f"--codelab-report-dir={pytester.path / 'report'}",
        "--codelab-offline",
        *args,
    )


@pytest.mark.parametrize(
    ("fault", "values", "says"),
    [
        # The case: a traceback (KeyError: 'spec') at collection with a values file.
        (_no_gateway_spec, True, "32-gateway.yaml:27: Deployment/gateway: missing key spec"),
        (_no_gateway_spec, False, "32-gateway.yaml:27: Deployment/gateway: missing key spec"),
        (
            _ports_a_string,
            True,
            "11-redis.yaml:28: StatefulSet/redis: spec.template.spec.containers[0].ports: "
            "expected a list, got '6379'",
        ),
    ],
    ids=["no spec, values", "no spec", "ports a string"],
)
def test_a_malformed_manifest_is_one_line_and_a_usage_error(
    pytester: pytest.Pytester, fault: Callable[[Obj], None], values: bool, says: str
) -> None:
    manifests = _manifests(pytester, fault)
    args = [f"--codelab-manifests={manifests}"]
    if values:
        args.append(f"--codelab-values={bundled_path('profiles') / 'prod.yaml'}")
    result = _run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = [line for line in result.stderr.lines if line.strip()]
    assert err == [f"ERROR: {manifests / says.split(':', 1)[0]}:{says.split(':', 1)[1]}"], err
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_malformed_values_file_is_one_line_and_a_usage_error(pytester: pytest.Pytester) -> None:
    values = pytester.path / "values.yaml"
    values.write_text("gateway:\n  image: {repository: ghcr.io/codelab/gateway}\n")
    result = _run(pytester, f"--codelab-values={values}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = [line for line in result.stderr.lines if line.strip()]
    assert err == [f"ERROR: values file {values}: missing key gateway.image.tag"], err
