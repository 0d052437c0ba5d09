"""Values files and profiles: seed figures, partial files over the manifests, the small
profile's caps, and one-line errors."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from pytest_codelab.deploy.profiles import (
    DEFAULT_PROFILE,
    available_profiles,
    deep_merge,
    load_profile,
    load_values,
)
from pytest_codelab.deploy.quantity import parse_quantity
from pytest_codelab.deploy.valueschema import ValuesError
from pytest_codelab.resources import bundled_path, checkout_root


def write(tmp_path: Path, text: str, name: str = "values.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_profiles_bundled() -> None:
    assert available_profiles() == ["prod", "small"]


def test_prod_profile_has_the_seed_figures() -> None:
    v = load_profile("prod")
    assert v.global_.domain == "codelab.example.com"
    assert v.global_.image_registry == "ghcr.io/codelab"
    gw = v.gateway
    assert gw.replicas == 3 and gw.image is not None
    assert gw.image.ref == "ghcr.io/codelab/gateway:1.0.0"
    assert gw.resources is not None
    assert (gw.resources.requests.cpu, gw.resources.requests.memory) == ("500m", "512Mi")
    assert (gw.resources.limits.cpu, gw.resources.limits.memory) == ("1000m", "1Gi")
    assert gw.autoscaling is not None
    assert (gw.autoscaling.min_replicas, gw.autoscaling.max_replicas) == (3, 10)
    assert (gw.autoscaling.target_cpu, gw.autoscaling.target_memory) == (70, 80)
    ar = v.agent_runtime
    assert ar.replicas == 3 and ar.resources is not None and ar.autoscaling is not None
    assert (ar.resources.requests.cpu, ar.resources.requests.memory) == ("1000m", "1Gi")
    assert (ar.resources.limits.cpu, ar.resources.limits.memory) == ("2000m", "2Gi")
    assert (ar.autoscaling.min_replicas, ar.autoscaling.max_replicas) == (3, 20)
    # The seed's values give agent-runtime no memory target (its HPA manifest has 80 %):
    # absent means "keep the manifest's", so the rendered HPA keeps memory 80 %.
    assert ar.autoscaling.target_memory is None
    au = v.auth_service
    assert au.replicas == 2 and au.autoscaling is not None
    assert (au.autoscaling.min_replicas, au.autoscaling.max_replicas) == (2, 5)
    assert v.llm_proxy.replicas == 2
    assert v.llm_proxy_config is not None
    assert v.llm_proxy_config["model_list"][0]["model_name"] == "gpt-4"
    pg = v.postgres_primary
    assert pg.resources is not None and pg.persistence is not None
    assert (pg.resources.requests.cpu, pg.resources.limits.memory) == ("1000m", "4Gi")
    assert (pg.persistence.size, pg.persistence.storage_class) == ("50Gi", "standard")
    assert v.postgres_read_replicas.persistence is not None
    assert v.redis_master.persistence is not None and v.redis_master.persistence.size == "10Gi"
    assert v.redis_architecture == "replication" and v.redis_auth is True
    assert v.gateway.secret_env == ("INTERNAL_API_KEY",)
    assert set(v.agent_runtime.secret_env) == {"OPENAI_API_KEY", "INTERNAL_API_KEY"}


def test_prod_profile_is_the_seed_file_but_the_pinned_llm_tag() -> None:
    root = checkout_root()
    seed = root.parent / "shared" / "seed" / "kubernetes-deployment.md" if root else None
    if seed is None or not seed.is_file():
        pytest.skip("the seed document (../shared/seed) is not beside this checkout")
    block = re.search(
        r"Создайте файл `values-prod.yaml`:\n\n```yaml\n(.*?)```", seed.read_text("utf-8"), re.S
    )
    assert block is not None
    seed_data = yaml.safe_load(block.group(1))
    ours = yaml.safe_load((bundled_path("profiles") / "prod.yaml").read_text("utf-8"))
    assert seed_data["llmProxy"]["image"]["tag"] == "main-latest"
    assert ours["llmProxy"]["image"]["tag"] != "main-latest"
    ours["llmProxy"]["image"]["tag"] = "main-latest"
    assert ours == seed_data


def test_secret_values_are_dropped_while_loading() -> None:
    v = load_profile("prod")
    text = repr(v)
    for placeholder in (
        "your-secret-key",
        "your-openai-key",
        "your-postgres-password",
        "your-redis-password",
        "your-grafana-password",
        "your-jwt-secret",
    ):
        assert placeholder not in text


def test_small_profile_keeps_the_topology_and_fits_two_cores() -> None:
    prod, small = load_profile("prod"), load_profile("small")
    paths = ("gateway", "agentRuntime", "authService", "llmProxy")
    for path in paths + ("postgresql.primary", "redis.master"):
        assert small.workload(path).enabled
    for path in paths:
        assert small.workload(path).replicas == prod.workload(path).replicas
    # CPU requests of every pod at the HPAs' maximum fit in one core (the other runs the
    # control plane and add-ons).
    total = Decimal(0)
    for path in paths + ("postgresql.primary", "redis.master"):
        wl = small.workload(path)
        assert wl.resources is not None and wl.resources.requests.cpu is not None
        assert wl.resources.limits.cpu is not None
        pods = wl.autoscaling.max_replicas if wl.autoscaling else (wl.replicas or 1)
        assert pods is not None
        total += pods * parse_quantity(wl.resources.requests.cpu)
        assert parse_quantity(wl.resources.limits.cpu) >= Decimal("0.25")
    assert total <= Decimal(1), f"small profile requests {total} CPU at HPA max"
    for path in ("postgresql.primary", "redis.master"):
        p = small.workload(path).persistence
        assert p is not None and p.size == "1Gi"


def test_values_file_is_partial_over_the_manifests(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "gateway:\n  replicaCount: 5\n  autoscaling:\n    enabled: true\n"
        "    minReplicas: 5\n    maxReplicas: 7\n",
    )
    v = load_values(f)
    assert v is not None and v.gateway.replicas == 5
    assert v.gateway.autoscaling is not None and v.gateway.autoscaling.max_replicas == 7
    # What the file leaves out is unstated (the manifests keep theirs), never a profile's.
    assert v.gateway.resources is None and v.gateway.image is None
    assert v.agent_runtime == type(v.agent_runtime)()
    assert v.global_.domain is None
    assert v.source == f"values file {f}"


def test_no_values_file_means_none() -> None:
    assert load_values(None) is None


def test_seed_file_alone_is_complete(tmp_path: Path) -> None:
    prod = (bundled_path("profiles") / "prod.yaml").read_text("utf-8")
    v = load_values(write(tmp_path, prod))
    assert v is not None and v.gateway.replicas == 3


def test_unknown_key_names_the_full_path_and_suggests(tmp_path: Path) -> None:
    f = write(tmp_path, "gateway:\n  replicas: 3\n")
    with pytest.raises(ValuesError) as exc:
        load_values(f)
    assert str(exc.value) == (
        f"values file {f}: unknown key gateway.replicas (did you mean replicaCount?)"
    )


def test_wrong_type_names_the_key_and_value(tmp_path: Path) -> None:
    f = write(tmp_path, "gateway:\n  autoscaling:\n    enabled: true\n    maxReplicas: ten\n")
    with pytest.raises(ValuesError) as exc:
        load_values(f)
    assert str(exc.value) == (
        f"values file {f}: gateway.autoscaling.maxReplicas: expected an integer, got 'ten'"
    )
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "gateway:\n  resources:\n    requests:\n      cpu: lots\n",
            "gateway.resources.requests.cpu: "
            "expected a quantity such as '500m' or '1Gi', got 'lots'",
        ),
        (
            "gateway:\n  image:\n    repository: r\n    tag: 1.0\n",
            "gateway.image.tag: expected a string, got 1.0",
        ),
        # An image or autoscaling block means nothing in part, even in a partial file.
        ("gateway:\n  image:\n    repository: r\n", "missing key gateway.image.tag"),
        (
            "gateway:\n  autoscaling:\n    maxReplicas: 5\n",
            "missing key gateway.autoscaling.enabled",
        ),
        (
            "global:\n  imagePullPolicy: Sometimes\n",
            "global.imagePullPolicy: expected one of Always, IfNotPresent, Never, got 'Sometimes'",
        ),
        ("gateway:\n  env:\n    - value: x\n", None),
        (
            "gateway:\n  secrets:\n    GITHUB_TOKEN: x\n",
            "unknown secret gateway.secrets.GITHUB_TOKEN",
        ),
        (
            "ingress:\n  hosts: codelab.example.com\n",
            "ingress.hosts: expected a list, got 'codelab.example.com'",
        ),
        (
            "gateway:\n  autoscaling:\n    enabled: true\n    minReplicas: 0\n",
            "gateway.autoscaling.minReplicas: must be >= 1, got 0",
        ),
        ("redis:\n  architecture: cluster\n", "redis.architecture: expected one of"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(
    tmp_path: Path, text: str, expected: str | None
) -> None:
    f = write(tmp_path, text)
    with pytest.raises(ValuesError) as exc:
        load_values(f)
    message = str(exc.value)
    assert message.startswith(f"values file {f}: ")
    assert "\n" not in message
    if expected is None:  # an env entry without a name: caught once merged (required key)
        assert "gateway.env[0]" in message and "name" in message
    else:
        assert expected in message


def test_semantic_errors(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "gateway:\n  autoscaling:\n    enabled: true\n    minReplicas: 8\n    maxReplicas: 4\n",
    )
    with pytest.raises(ValuesError, match=r"gateway\.autoscaling: minReplicas 8 > maxReplicas 4"):
        load_values(f)
    f = write(
        tmp_path,
        "gateway:\n  resources:\n    requests:\n      memory: 2Gi\n"
        "    limits:\n      memory: 1Gi\n",
    )
    with pytest.raises(ValuesError, match=r"gateway\.resources: requests\.memory 2Gi is above"):
        load_values(f)


def test_secret_values_never_appear_in_errors(tmp_path: Path) -> None:
    f = write(tmp_path, "postgresql:\n  auth:\n    password: 98765431234\n")
    with pytest.raises(ValuesError) as exc:
        load_values(f)
    assert "postgresql.auth.password" in str(exc.value)
    assert "98765431234" not in str(exc.value)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    f = write(tmp_path, "gateway:\n  replicaCount: 3\n   image: x\n")
    with pytest.raises(ValuesError, match=r"^values file .*: invalid YAML at line 3"):
        load_values(f)


def test_missing_file_and_unknown_profile(tmp_path: Path) -> None:
    with pytest.raises(ValuesError, match=r"nope\.yaml: file not found"):
        load_values(tmp_path / "nope.yaml")
    with pytest.raises(ValuesError, match=r"unknown profile 'huge'; available: prod, small"):
        load_profile("huge")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ValuesError, match=r"top level: expected a mapping, got a list"):
        load_values(write(tmp_path, "- a\n- b\n"))


def test_default_profile_is_small() -> None:
    assert DEFAULT_PROFILE == "small"


def test_deep_merge_replaces_lists_and_merges_mappings() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [3]}, "e": 2}) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    # A null removes the key, as in Helm.
    assert deep_merge(base, {"a": {"b": None}, "d": None}) == {"a": {"c": [1, 2]}}
