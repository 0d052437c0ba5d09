"""Loading and rendering manifests, generated secrets, bundled resource paths."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from pytest_codelab.deploy.manifests import (
    CLUSTER_SCOPED_KINDS,
    ManifestError,
    RenderWarning,
    apply_order,
    containers,
    load_manifests,
    object_id,
    render,
    source_of,
    split_image,
)
from pytest_codelab.deploy.profiles import load_profile, load_values
from pytest_codelab.deploy.schema import validate_object
from pytest_codelab.deploy.secrets import SECRET_KEYS, generate_secrets, redact
from pytest_codelab.deploy.values import Values
from pytest_codelab.resources import bundled_path

Obj = dict[str, Any]
SEED_COMPONENTS = {"gateway", "agent-runtime", "auth-service", "llm-proxy", "postgres", "redis"}


@pytest.fixture(scope="module")
def bundled() -> list[Obj]:
    return load_manifests(bundled_path("manifests"))


@pytest.fixture(scope="module")
def prod() -> Values:
    """The guide's values-prod.yaml, as a values file rendered over the manifests."""
    return load_profile("prod")


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def main_container(objects: list[Obj], kind: str, name: str) -> dict[str, Any]:
    return containers(find(objects, kind, name), init=False)[0]


# --------------------------------------------------------------------------- loading


def test_bundled_manifests_hold_the_seed_stack(bundled: list[Obj]) -> None:
    ids = {object_id(o) for o in bundled}
    for name in ("gateway", "agent-runtime", "auth-service", "llm-proxy"):
        assert {f"Deployment/{name}", f"Service/{name}"} <= ids
    for name in ("postgres", "redis"):
        assert {f"StatefulSet/{name}", f"Service/{name}"} <= ids
        assert find(bundled, "Service", name)["spec"]["clusterIP"] == "None"
    assert {
        "Ingress/codelab-ingress",
        "HorizontalPodAutoscaler/gateway-hpa",
        "HorizontalPodAutoscaler/agent-runtime-hpa",
        "HorizontalPodAutoscaler/auth-service-hpa",
        "VerticalPodAutoscaler/agent-runtime-vpa",
        "NetworkPolicy/default-deny-ingress",
        "ConfigMap/llm-proxy-config",
    } <= ids
    assert not [o for o in bundled if o["kind"] == "Secret"], "secrets must never be committed"
    assert not [o for o in bundled if "namespace" in o["metadata"]], "rendering sets namespaces"


def test_bundled_manifests_keep_the_seed_figures(bundled: list[Obj]) -> None:
    ports = {"gateway": 8000, "agent-runtime": 8001, "auth-service": 8003, "llm-proxy": 4000}
    replicas = {"gateway": 3, "agent-runtime": 3, "auth-service": 2, "llm-proxy": 2}
    for name, port in ports.items():
        dep = find(bundled, "Deployment", name)
        assert dep["spec"]["replicas"] == replicas[name]
        assert dep["spec"]["selector"]["matchLabels"] == {"app": name}
        c = containers(dep)[0]
        assert c["ports"][0]["containerPort"] == port
        assert find(bundled, "Service", name)["spec"]["ports"][0]["port"] == port
    ar = main_container(bundled, "Deployment", "agent-runtime")
    assert ar["image"] == "ghcr.io/codelab/agent-runtime:1.0.0"
    assert ar["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8001}
    assert ar["livenessProbe"]["initialDelaySeconds"] == 30
    assert ar["readinessProbe"]["initialDelaySeconds"] == 10
    assert ar["resources"] == {
        "requests": {"memory": "1Gi", "cpu": "1000m"},
        "limits": {"memory": "2Gi", "cpu": "2000m"},
    }
    env = {e["name"]: e for e in ar["env"]}
    assert env["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "api-keys",
        "key": "openai-api-key",
    }
    assert env["LLM_PROXY_URL"]["value"] == "http://llm-proxy:4000"
    gw_env = {e["name"]: e for e in main_container(bundled, "Deployment", "gateway")["env"]}
    assert gw_env["AGENT_RUNTIME_URL"]["value"] == "http://agent-runtime:8001"
    assert gw_env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "postgres-secret"
    pg = main_container(bundled, "StatefulSet", "postgres")
    assert pg["image"] == "postgres:15-alpine"
    assert pg["volumeMounts"][0]["mountPath"] == "/var/lib/postgresql/data"
    rd = main_container(bundled, "StatefulSet", "redis")
    assert rd["image"] == "redis:7-alpine" and rd["volumeMounts"][0]["mountPath"] == "/data"
    ing = find(bundled, "Ingress", "codelab-ingress")
    paths = {
        p["path"]: (
            p["pathType"],
            p["backend"]["service"]["name"],
            p["backend"]["service"]["port"]["number"],
        )
        for p in ing["spec"]["rules"][0]["http"]["paths"]
    }
    assert paths == {
        "/api/v1": ("Prefix", "gateway", 8000),
        "/oauth": ("Prefix", "auth-service", 8003),
    }
    assert ing["spec"]["tls"][0]["secretName"] == "codelab-tls"
    assert ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "50m"
    hpa = find(bundled, "HorizontalPodAutoscaler", "auth-service-hpa")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"], len(hpa["metrics"])) == (2, 5, 1)
    vpa = find(bundled, "VerticalPodAutoscaler", "agent-runtime-vpa")
    assert vpa["spec"]["updatePolicy"]["updateMode"] == "Auto"


def test_every_object_carries_the_labels(bundled: list[Obj]) -> None:
    for obj in bundled:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "codelab", object_id(obj)
        assert "app.kubernetes.io/name" in labels, object_id(obj)
        tmpl = (obj.get("spec") or {}).get("template")
        if tmpl:
            name = obj["metadata"]["name"]
            assert tmpl["metadata"]["labels"]["app"] == name


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\n  metadata: x\n")
    with pytest.raises(ManifestError) as exc:
        load_manifests(tmp_path)
    assert str(exc.value).startswith(f"{tmp_path / 'a.yaml'}:3: invalid YAML")
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ("kind: ConfigMap\nmetadata:\n  name: x\n", "object without apiVersion"),
        ("apiVersion: v1\nmetadata:\n  name: x\n", "object without kind"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "ConfigMap without metadata.name"),
        ("- a\n- b\n", "expected a Kubernetes object (a mapping), got a list"),
    ],
)
def test_incomplete_object_names_file_and_line(tmp_path: Path, doc: str, problem: str) -> None:
    ok = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\n"
    (tmp_path / "b.yml").write_text(ok + "---\n" + doc)
    with pytest.raises(ManifestError) as exc:
        load_manifests(tmp_path)
    assert str(exc.value) == f"{tmp_path / 'b.yml'}:6: {problem}"


def test_duplicates_empty_and_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not found or not a folder"):
        load_manifests(tmp_path / "missing")
    with pytest.raises(ManifestError, match=r"no \*\.yaml files"):
        load_manifests(tmp_path)
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: same\n"
    (tmp_path / "1.yaml").write_text(cm)
    (tmp_path / "2.yaml").write_text(cm)
    with pytest.raises(
        ManifestError, match=r"2\.yaml:1: duplicate ConfigMap/same \(first at .*1\.yaml:1\)"
    ):
        load_manifests(tmp_path)


def test_lists_are_expanded_and_sources_recorded(tmp_path: Path) -> None:
    (tmp_path / "l.yaml").write_text(
        "# comment\n---\napiVersion: v1\nkind: List\nitems:\n"
        "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
        "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n"
    )
    objs = load_manifests(tmp_path)
    assert [object_id(o) for o in objs] == ["ConfigMap/a", "ConfigMap/b"]
    assert source_of(objs[0]) == "l.yaml:3"


def test_profiles_folder_is_not_read_as_manifests(bundled: list[Obj]) -> None:
    sources = {(source_of(o) or "").split(":")[0] for o in bundled}
    assert sources == {p.name for p in bundled_path("manifests").glob("*.yaml")}
    assert not [o for o in bundled if "gateway" in o and "global" in o]


# --------------------------------------------------------------------------- rendering


def test_render_sets_namespace_everywhere_and_copies(bundled: list[Obj], prod: Values) -> None:
    before = copy.deepcopy(bundled)
    extra = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "reader", "namespace": "bogus"},
            "rules": [],
        },
    ]
    out = render(bundled + extra, namespace="codelab-abc123-gw0", values=prod)
    assert bundled == before, "render must not modify its input"
    assert len(out) == len(bundled) + 1
    for obj in out:
        if obj["kind"] in CLUSTER_SCOPED_KINDS:
            assert "namespace" not in obj["metadata"]
        else:
            assert obj["metadata"]["namespace"] == "codelab-abc123-gw0", object_id(obj)


def test_render_follows_a_source_namespace(tmp_path: Path) -> None:
    (tmp_path / "np.yaml").write_text(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {"name": "p", "namespace": "codelab"},
                    "spec": {
                        "podSelector": {},
                        "ingress": [
                            {
                                "from": [
                                    {
                                        "namespaceSelector": {
                                            "matchLabels": {
                                                "kubernetes.io/metadata.name": "codelab"
                                            }
                                        }
                                    },
                                    {
                                        "namespaceSelector": {
                                            "matchLabels": {
                                                "kubernetes.io/metadata.name": "ingress-nginx"
                                            }
                                        }
                                    },
                                ]
                            }
                        ],
                    },
                },
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "d", "namespace": "codelab"},
                    "spec": {
                        "selector": {"matchLabels": {"a": "b"}},
                        "template": {
                            "metadata": {"labels": {"a": "b"}},
                            "spec": {
                                "containers": [
                                    {
                                        "name": "c",
                                        "image": "x:1",
                                        "env": [
                                            {
                                                "name": "U",
                                                "value": "http://api.codelab.svc.cluster.local:80",
                                            }
                                        ],
                                    }
                                ]
                            },
                        },
                    },
                },
            ]
        )
    )
    out = render(load_manifests(tmp_path), namespace="t1", values=None, ingress_namespace="traefik")
    peers = out[0]["spec"]["ingress"][0]["from"]
    assert peers[0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "t1"
    assert peers[1]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "traefik"
    env = out[1]["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"]
    assert env == "http://api.t1.svc.cluster.local:80"


def test_image_overrides_apply_to_codelab_images_only(bundled: list[Obj], prod: Values) -> None:
    out = render(
        bundled, namespace="n", values=prod, image_registry="localhost:5000/lab", image_tag="dev-1"
    )
    images = {c["image"] for o in out for c in containers(o)}
    assert images == {
        "localhost:5000/lab/gateway:dev-1",
        "localhost:5000/lab/agent-runtime:dev-1",
        "localhost:5000/lab/auth-service:dev-1",
        "ghcr.io/berriai/litellm:v1.80.11-stable.1",
        "postgres:15-alpine",
        "redis:7-alpine",
    }
    only_registry = render(bundled, namespace="n", values=prod, image_registry="reg.local")
    assert (
        main_container(only_registry, "Deployment", "gateway")["image"] == "reg.local/gateway:1.0.0"
    )


def test_ingress_host_class_and_namespace_overrides(bundled: list[Obj], prod: Values) -> None:
    out = render(
        bundled,
        namespace="n",
        values=prod,
        ingress_host="codelab.127.0.0.1.nip.io",
        ingress_class="traefik",
        ingress_namespace="kube-system",
    )
    spec = find(out, "Ingress", "codelab-ingress")["spec"]
    assert spec["ingressClassName"] == "traefik"
    assert [r["host"] for r in spec["rules"]] == ["codelab.127.0.0.1.nip.io"]
    assert spec["tls"] == [{"hosts": ["codelab.127.0.0.1.nip.io"], "secretName": "codelab-tls"}]
    gw_policy = find(out, "NetworkPolicy", "gateway-allow-ingress")
    selector = gw_policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]
    assert selector == {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}


def test_values_drive_replicas_resources_hpa_and_storage(
    tmp_path: Path, bundled: list[Obj], prod: Values
) -> None:
    """A values file changes exactly what it states (helm install -f over the manifests)."""
    f = tmp_path / "v.yaml"
    f.write_text(
        "gateway:\n  replicaCount: 4\n  resources:\n    limits:\n      cpu: 800m\n"
        "  autoscaling:\n    enabled: true\n    maxReplicas: 12\n"
        "postgresql:\n  primary:\n    persistence:\n      size: 20Gi\n"
        "      storageClass: fast\n"
    )
    v = render(bundled, namespace="n", values=load_values(f))
    gateway = find(v, "Deployment", "gateway")
    assert gateway["spec"]["replicas"] == 4
    assert main_container(v, "Deployment", "gateway")["resources"] == {
        "requests": {"memory": "512Mi", "cpu": "500m"},
        "limits": {"memory": "1Gi", "cpu": "800m"},
    }
    hpa = find(v, "HorizontalPodAutoscaler", "gateway-hpa")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 12)
    vct = find(v, "StatefulSet", "postgres")["spec"]["volumeClaimTemplates"][0]["spec"]
    assert (vct["resources"]["requests"]["storage"], vct["storageClassName"]) == ("20Gi", "fast")
    # What the file does not state keeps the manifests' figures.
    assert find(v, "Deployment", "agent-runtime") == find(
        render(bundled, namespace="n", values=None), "Deployment", "agent-runtime"
    )
    p = render(bundled, namespace="n", values=prod)
    assert find(p, "HorizontalPodAutoscaler", "gateway-hpa")["spec"]["maxReplicas"] == 10
    ar_hpa = find(p, "HorizontalPodAutoscaler", "agent-runtime-hpa")["spec"]
    targets = {
        m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
        for m in ar_hpa["metrics"]
    }
    assert targets == {"cpu": 70, "memory": 80}
    p_claim = find(p, "StatefulSet", "postgres")["spec"]["volumeClaimTemplates"][0]["spec"]
    assert p_claim["resources"]["requests"]["storage"] == "50Gi"


def test_without_values_the_manifests_render_as_written(bundled: list[Obj]) -> None:
    """No values file: only the namespace is set (what kubectl apply -n would do)."""
    out = render(bundled, namespace="n", values=None)
    assert [object_id(o) for o in out] == [object_id(o) for o in bundled]
    for obj, raw in zip(out, bundled, strict=True):
        assert obj["metadata"].pop("namespace") == "n"
        assert obj == raw, object_id(obj)


def test_values_file_can_disable_and_extend(tmp_path: Path, bundled: list[Obj]) -> None:
    f = tmp_path / "v.yaml"
    f.write_text(
        "llmProxy:\n  enabled: false\n"
        "authService:\n  autoscaling:\n    enabled: false\n"
        "gateway:\n  replicaCount: 4\n  env:\n    - name: LOG_LEVEL\n      value: debug\n"
        '  image:\n    repository: ghcr.io/codelab/gateway\n    tag: "1.2.3"\n'
        "postgresql:\n  primary:\n    persistence:\n      enabled: false\n"
    )
    out = render(bundled, namespace="n", values=load_values(f))
    assert not [
        o for o in out if o["metadata"]["labels"].get("app.kubernetes.io/name") == "llm-proxy"
    ]
    assert not [o for o in out if o["metadata"]["name"] == "auth-service-hpa"]
    gw = find(out, "Deployment", "gateway")
    assert gw["spec"]["replicas"] == 4
    c = containers(gw)[0]
    assert c["image"] == "ghcr.io/codelab/gateway:1.2.3"
    assert {"name": "LOG_LEVEL", "value": "debug"} in c["env"]
    pg = find(out, "StatefulSet", "postgres")
    assert not pg["spec"].get("volumeClaimTemplates")
    assert {"name": "postgres-data", "emptyDir": {}} in pg["spec"]["template"]["spec"]["volumes"]


def test_values_enable_autoscaling_without_a_manifest_hpa(
    tmp_path: Path, bundled: list[Obj]
) -> None:
    f = tmp_path / "v.yaml"
    f.write_text(
        "llmProxy:\n  autoscaling:\n    enabled: true\n    minReplicas: 2\n"
        "    maxReplicas: 4\n    targetCPUUtilizationPercentage: 60\n"
    )
    out = render(bundled, namespace="n", values=load_values(f))
    hpa = find(out, "HorizontalPodAutoscaler", "llm-proxy-hpa")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "llm-proxy"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    assert validate_object(hpa).validated


def test_values_secret_names_become_secret_refs(tmp_path: Path, bundled: list[Obj]) -> None:
    f = tmp_path / "v.yaml"
    f.write_text("authService:\n  secrets:\n    INTERNAL_API_KEY: placeholder-value\n")
    out = render(bundled, namespace="n", values=load_values(f))
    env = {e["name"]: e for e in main_container(out, "Deployment", "auth-service")["env"]}
    assert env["INTERNAL_API_KEY"] == {
        "name": "INTERNAL_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "api-keys", "key": "internal-api-key"}},
    }
    assert "placeholder-value" not in json.dumps(out)


def test_redis_auth_cannot_be_switched_off(tmp_path: Path, bundled: list[Obj]) -> None:
    f = tmp_path / "v.yaml"
    f.write_text("redis:\n  auth:\n    enabled: false\n")
    with pytest.raises(ValueError, match=r"redis\.auth\.enabled: false is not supported"):
        render(bundled, namespace="n", values=load_values(f))


def test_missing_targets_warn(tmp_path: Path, prod: Values) -> None:
    (tmp_path / "x.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
    with pytest.warns(RenderWarning) as record:
        render(load_manifests(tmp_path), namespace="n", values=prod)
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith("values not applied, the manifests lack their objects: ")
    assert (
        "gateway.* (Deployment/gateway)" in message
        and "redis.master.* (StatefulSet/redis)" in message
    )


def test_no_secret_values_in_rendered_objects(bundled: list[Obj], prod: Values) -> None:
    text = json.dumps(render(bundled, namespace="n", values=prod))
    for placeholder in (
        "your-secret-key",
        "your-openai-key",
        "your-jwt-secret",
        "your-oauth-secret",
        "your-postgres-password",
        "your-redis-password",
    ):
        assert placeholder not in text
    out = render(bundled, namespace="n", values=prod)
    for obj in out:
        assert obj["kind"] != "Secret"
        for c in containers(obj):
            for e in c.get("env") or []:
                if (
                    any(w in e["name"] for w in ("KEY", "SECRET", "PASSWORD", "_URL"))
                    and "value" in e
                ):
                    assert "@" not in e["value"] and e["name"].endswith("_URL"), e


def test_apply_order(bundled: list[Obj], prod: Values) -> None:
    objs = render(bundled, namespace="n", values=prod) + generate_secrets(prod)
    order = [o["kind"] for o in apply_order(reversed(objs))]
    rank = [
        "ServiceAccount",
        "Service",
        "StatefulSet",
        "Deployment",
        "Ingress",
        "HorizontalPodAutoscaler",
        "VerticalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ]
    firsts = [order.index(k) for k in rank]
    assert firsts == sorted(firsts)
    last_config = max(
        i for i, k in enumerate(order) if k in ("ConfigMap", "Secret", "ServiceAccount")
    )
    assert last_config < order.index("Service")
    assert order[-1] == "NetworkPolicy"


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("ghcr.io/codelab/gateway:1.0.0", ("ghcr.io/codelab/gateway", "1.0.0", None)),
        ("localhost:5000/x/y", ("localhost:5000/x/y", None, None)),
        ("localhost:5000/x/y:2", ("localhost:5000/x/y", "2", None)),
        ("redis@sha256:abc", ("redis", None, "sha256:abc")),
        ("redis:7@sha256:abc", ("redis", "7", "sha256:abc")),
    ],
)
def test_split_image(ref: str, parts: tuple[str, str | None, str | None]) -> None:
    assert split_image(ref) == parts


# --------------------------------------------------------------------------- secrets


def _decoded(secret: Obj) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_generated_secrets_cover_every_reference(bundled: list[Obj], prod: Values) -> None:
    secrets = generate_secrets(prod, namespace="n")
    have = {(s["metadata"]["name"], k) for s in secrets for k in s["data"]}
    wanted = set()
    for obj in render(bundled, namespace="n", values=prod):
        for c in containers(obj):
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    wanted.add((ref["name"], ref["key"]))
    tls = find(render(bundled, namespace="n", values=prod), "Ingress", "codelab-ingress")
    wanted |= {(t["secretName"], "tls.crt") for t in tls["spec"]["tls"]}
    assert wanted <= have, wanted - have
    assert {s["metadata"]["name"] for s in secrets} == set(SECRET_KEYS)
    for s in secrets:
        assert s["metadata"]["namespace"] == "n"
        assert validate_object(s).validated


def test_generated_secrets_are_random_and_consistent(prod: Values) -> None:
    a = {s["metadata"]["name"]: _decoded(s) for s in generate_secrets(prod)}
    b = {s["metadata"]["name"]: _decoded(s) for s in generate_secrets(prod)}
    assert a["jwt-secret"]["jwt-secret-key"] != b["jwt-secret"]["jwt-secret-key"]
    pg = a["postgres-secret"]
    assert pg["connection-string"] == f"postgresql://codelab:{pg['password']}@postgres:5432/codelab"
    assert a["redis-secret"]["url"] == f"redis://:{a['redis-secret']['password']}@redis:6379/0"
    assert a["llm-proxy-secret"]["master-key"].startswith("sk-")
    assert len(a["api-keys"]["internal-api-key"]) >= 32


def test_tls_secret_is_a_cert_for_the_host(prod: Values) -> None:
    tls = next(
        s
        for s in generate_secrets(prod, ingress_host="gate.test")
        if s["type"] == "kubernetes.io/tls"
    )
    cert = x509.load_pem_x509_certificate(base64.b64decode(tls["data"]["tls.crt"]))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gate.test"]
    assert b"PRIVATE KEY" in base64.b64decode(tls["data"]["tls.key"])


def test_provided_values_and_redaction(prod: Values) -> None:
    secrets = generate_secrets(
        prod, provided={"api-keys": {"openai-api-key": "sk-real-one-000000000000"}}
    )
    keys = _decoded(next(s for s in secrets if s["metadata"]["name"] == "api-keys"))
    assert keys["openai-api-key"] == "sk-real-one-000000000000"
    shown = json.dumps([redact(s) for s in secrets])
    assert (
        "sk-real-one" not in shown
        and base64.b64encode(b"sk-real-one-000000000000").decode() not in shown
    )
    assert "<redacted>" in shown
    with pytest.raises(ValueError, match="unknown key 'openai' of secret 'api-keys'"):
        generate_secrets(prod, provided={"api-keys": {"openai": "x"}})
    with pytest.raises(ValueError, match="unknown secret 'nope'"):
        generate_secrets(prod, provided={"nope": {}})


# --------------------------------------------------------------------------- resources


def test_bundled_paths() -> None:
    assert (bundled_path("manifests") / "32-gateway.yaml").is_file()
    assert (bundled_path("profiles") / "small.yaml").is_file()
    assert (bundled_path("expected") / "guide.yaml").is_file()
    assert (bundled_path("suites") / "test_static.py").is_file()
    with pytest.raises(ValueError, match="unknown bundled resource 'stuff'"):
        bundled_path("stuff")


def test_pull_policy_global_then_per_service(tmp_path: Path, bundled: list[Obj]) -> None:
    f = tmp_path / "v.yaml"
    f.write_text("global:\n  imagePullPolicy: Never\ngateway:\n  imagePullPolicy: Always\n")
    out = render(bundled, namespace="n", values=load_values(f))
    policies = {o["metadata"]["name"]: c["imagePullPolicy"] for o in out for c in containers(o)}
    assert policies.pop("gateway") == "Always"
    assert set(policies.values()) == {"Never"} and len(policies) == 5
