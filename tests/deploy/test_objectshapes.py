"""Malformed manifests stop the load with one line naming the file, line and object.

Each case breaks one thing the gate reads; the property-based cases are in
tests/deploy/test_hostile_inputs.py, the run's exit in tests/deploy/test_inputs.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_codelab.deploy.manifests import ManifestError, load_manifests
from pytest_codelab.deploy.objectshapes import shape_problems
from pytest_codelab.deploy.profiles import load_values
from pytest_codelab.deploy.shapes import MAX_FILE_BYTES, MAX_NODES, plain_problem
from pytest_codelab.deploy.valueschema import ValuesError
from pytest_codelab.errors import GateError

Obj = dict[str, Any]


def deployment() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "ghcr.io/codelab/web:1.0.0",
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
                            "env": [{"name": "PASSWORD", "value": "hunter2-secret"}],
                        }
                    ]
                },
            },
        },
    }


def _pod(d: Obj) -> Obj:
    spec: Obj = d["spec"]["template"]["spec"]
    return spec


def _load(tmp_path: Path, text: str) -> list[Obj]:
    folder = tmp_path / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / "app.yaml").write_text(text)
    return load_manifests(folder)


Break = Callable[[Obj], object]
CASES: list[tuple[str, Break, str]] = [
    ("no spec", lambda d: d.pop("spec"), "Deployment/web: missing key spec"),
    ("spec a string", lambda d: d.update(spec="x"), "Deployment/web: spec: expected a mapping"),
    (
        "containers a mapping",
        lambda d: _pod(d).update(containers={"name": "web"}),
        "Deployment/web: spec.template.spec.containers: expected a list, got a mapping",
    ),
    (
        "a container a string",
        lambda d: _pod(d).update(containers=["web"]),
        "spec.template.spec.containers[0]: expected a mapping, got 'web'",
    ),
    (
        "ports a string",
        lambda d: _pod(d)["containers"][0].update(ports="8080"),
        "spec.template.spec.containers[0].ports: expected a list, got '8080'",
    ),
    (
        "a port a name",
        lambda d: _pod(d)["containers"][0]["ports"][0].update(containerPort="http"),
        "containers[0].ports[0].containerPort: expected an integer, got 'http'",
    ),
    (
        "a probe a list",
        lambda d: _pod(d)["containers"][0].update(readinessProbe=["/ready"]),
        "containers[0].readinessProbe: expected a mapping, got a list",
    ),
    (
        "a probe port a list",
        lambda d: _pod(d)["containers"][0]["readinessProbe"]["httpGet"].update(port=[1]),
        "readinessProbe.httpGet.port: expected a number or a name, got a list",
    ),
    (
        "replicas a string",
        lambda d: d["spec"].update(replicas="two"),
        "Deployment/web: spec.replicas: expected an integer, got 'two'",
    ),
    (
        "a claim template without spec",
        lambda d: d["spec"].update(volumeClaimTemplates=[{"metadata": {"name": "data"}}]),
        "Deployment/web: missing key spec.volumeClaimTemplates[0].spec",
    ),
    (
        "labels a list",
        lambda d: d["metadata"].update(labels=["app"]),
        "Deployment/web: metadata.labels: expected a mapping, got a list",
    ),
]


@pytest.mark.parametrize(("case", "breaks", "says"), CASES, ids=[c[0] for c in CASES])
def test_a_malformed_object_is_one_line_naming_file_and_object(
    tmp_path: Path, case: str, breaks: Break, says: str
) -> None:
    d = deployment()
    breaks(d)
    text = "# comment\n" + yaml.safe_dump_all([{"kind": "x"}][:0] + [d])
    with pytest.raises(ManifestError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert isinstance(info.value, GateError) and "\n" not in message
    assert message.startswith(f"{tmp_path / 'manifests' / 'app.yaml'}:2: "), message
    assert says in message, message


def test_a_wrong_typed_env_value_is_never_repeated(tmp_path: Path) -> None:
    d = deployment()
    _pod(d)["containers"][0]["env"][0]["value"] = 73519
    with pytest.raises(ManifestError, match=r"env\[0\]\.value: expected a string") as info:
        _load(tmp_path, yaml.safe_dump(d))
    assert "73519" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("- a\n- b\n", "app.yaml:1: expected a Kubernetes object (a mapping), got a list"),
        ("42\n", "app.yaml:1: expected a Kubernetes object (a mapping), got 42"),
        ("kind: List\napiVersion: v1\nitems: 3\n", "app.yaml:1: List: items: expected a list"),
        ("a: &x [*x]\n", "app.yaml:1: a[0]: a YAML alias that contains itself"),
        ("1: x\n", "app.yaml:1: top level: key 1 is not a string (quote it)"),
        ("when: 2024-01-01\n", "app.yaml:1: when: a date or time (quote it) is not a YAML"),
        ("[" * 20000 + "]" * 20000, "app.yaml:1: invalid YAML: exceeded maximum nesting depth"),
        ("[" * 900 + "]" * 900, "[0][0]: nested more than 64 levels deep"),
        ("a: [unclosed\n", "app.yaml:2: invalid YAML:"),
    ],
    ids=["list", "scalar", "items", "alias loop", "int key", "date", "deep", "deeper", "syntax"],
)
def test_a_document_that_is_no_object_is_one_line(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ManifestError) as info:
        _load(tmp_path, text)
    assert "\n" not in str(info.value) and says in str(info.value), str(info.value)


def test_aliases_that_expand_past_the_limit_stop(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    with pytest.raises(ManifestError, match=f"more than {MAX_NODES} values"):
        _load(tmp_path, "\n".join(lines) + "\n")


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    text = yaml.safe_dump(deployment()) + "#" + "x" * MAX_FILE_BYTES + "\n"
    with pytest.raises(ManifestError, match=r"app\.yaml: too large \(4\.0 MiB; at most 4 MiB"):
        _load(tmp_path, text)


def test_a_huge_values_file_and_an_alias_loop_in_values(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("gateway: {}\n#" + "x" * MAX_FILE_BYTES)
    with pytest.raises(ValuesError, match=f"values file {big}: too large"):
        load_values(big)
    loop = tmp_path / "loop.yaml"
    loop.write_text("llmProxy:\n  config: &c {model_list: [*c]}\n")
    with pytest.raises(ValuesError, match=r"llmProxy\.config\.model_list\[0\]: a YAML alias"):
        load_values(loop)


def test_the_bundled_kinds_pass_and_unknown_fields_are_left_to_the_schema() -> None:
    d = deployment()
    d["spec"]["somethingNew"] = {"anything": [1, 2]}
    assert shape_problems(d) == []
    assert shape_problems({"kind": "Widget", "metadata": {"name": "w"}, "spec": 3}) == []
    assert plain_problem({"a": [1, 2.5, True, None, "s"]}) is None
