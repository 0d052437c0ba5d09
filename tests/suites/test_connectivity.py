"""The connectivity suite's policy check (suites/test_connectivity.py ``policy_problems``)
offline: the bundled NetworkPolicies match the guide's graph; policies that admit everything,
or none at all, fail it naming forbidden paths; a policy missing a guide path fails too."""

from __future__ import annotations

import copy
import importlib.util
import sys
from types import ModuleType
from typing import Any

import pytest
import yaml
from kubernetes import client

from pytest_codelab.deploy.graph import INGRESS_CONTROLLER
from pytest_codelab.k8s.netpolicy import Endpoint
from pytest_codelab.resources import bundled_path


@pytest.fixture(scope="module")
def suite() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "codelab_suite_connectivity", bundled_path("suites") / "test_connectivity.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _bundled_policies() -> list[dict[str, Any]]:
    text = (bundled_path("manifests") / "60-networkpolicies.yaml").read_text()
    return [d for d in yaml.safe_load_all(text) if d and d["kind"] == "NetworkPolicy"]


def _objects(docs: list[dict[str, Any]]) -> list[client.V1NetworkPolicy]:
    api = client.ApiClient()
    return [api._ApiClient__deserialize(d, "V1NetworkPolicy") for d in docs]  # type: ignore[attr-defined]


def _judge(suite: ModuleType, docs: list[dict[str, Any]]) -> list[str]:
    ns_labels = {"kubernetes.io/metadata.name": "codelab"}
    endpoints = {
        name: Endpoint(name, port, port, None, {"app": name})
        for name, port in suite.SERVICES.items()
    }
    sources = {
        name: suite.Source({"app": name}, ns_labels, same_namespace=True) for name in endpoints
    }
    sources[INGRESS_CONTROLLER] = suite.Source(
        {"app.kubernetes.io/name": "ingress-nginx"},
        {"kubernetes.io/metadata.name": "ingress-nginx"},
        same_namespace=False,
    )
    return list(suite.policy_problems(_objects(docs), endpoints, sources))


def test_the_bundled_policies_admit_exactly_the_graph(suite: ModuleType) -> None:
    assert _judge(suite, _bundled_policies()) == []


def test_policies_admitting_everything_fail_naming_the_forbidden_paths(
    suite: ModuleType,
) -> None:
    docs = copy.deepcopy(_bundled_policies())
    for doc in docs:
        doc["spec"]["ingress"] = [{}]
    problems = _judge(suite, docs)
    assert len(problems) == len(suite.GRAPH.forbidden())
    assert any(
        p.startswith("forbidden path gateway -> redis:6379: admitted by a rule of ")
        and "default-deny-ingress" in p
        for p in problems
    ), problems


def test_no_policies_fail_as_no_default_deny(suite: ModuleType) -> None:
    problems = _judge(suite, [])
    assert "forbidden path ingress-controller -> postgres:5432: no policy selects postgres " in (
        "\n".join(problems) + " "
    )


def test_a_policy_missing_a_graph_path_fails(suite: ModuleType) -> None:
    docs = [d for d in _bundled_policies() if d["metadata"]["name"] != "redis-allow-ingress"]
    problems = _judge(suite, docs)
    assert "guide path agent-runtime -> redis:6379 is admitted by no rule of" in "\n".join(problems)
