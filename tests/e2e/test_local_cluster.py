"""The local engine is a real Kubernetes: each test asserts one thing a cluster must do.

Runs with ``--codelab-cluster=local`` (or against any cluster with an nginx-class ingress
and a default StorageClass). Workloads use busybox (httpd, sh), the one image every
cluster of the gate has.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.engine import versions
from pytest_codelab.k8s.namespaces import NamespaceInfo
from pytest_codelab.k8s.waiting import Waiter
from pytest_codelab.providers.base import ClusterHandle

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

BUSYBOX = versions.BUSYBOX_IMAGE
WEB = "web"
PAGE = "hello from codelab e2e"


def _web_deployment(replicas: int = 2) -> client.V1Deployment:
    container = client.V1Container(
        name="httpd",
        image=BUSYBOX,
        image_pull_policy="IfNotPresent",
        command=[
            "sh",
            "-c",
            "mkdir -p /www && cp /page/index.html /www/ && exec httpd -f -p 8080 -h /www",
        ],
        ports=[client.V1ContainerPort(container_port=8080)],
        readiness_probe=client.V1Probe(
            http_get=client.V1HTTPGetAction(path="/index.html", port=8080),
            period_seconds=1,
        ),
        resources=client.V1ResourceRequirements(
            requests={"cpu": "10m", "memory": "16Mi"}, limits={"cpu": "200m", "memory": "64Mi"}
        ),
        env=[client.V1EnvVar(name="REVISION", value="1")],
        volume_mounts=[client.V1VolumeMount(name="page", mount_path="/page")],
    )
    spec = client.V1PodSpec(
        containers=[container],
        termination_grace_period_seconds=1,
        volumes=[client.V1Volume(name="page", config_map=client.V1ConfigMapVolumeSource(name=WEB))],
    )
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=WEB),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels={"app": WEB}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": WEB}), spec=spec
            ),
        ),
    )


#: Apps of this module's own pods. The namespace is the run's, where the CodeLab stack and
#: its ``default-deny-ingress`` policy may already be: each of these apps gets a policy
#: admitting every source (the ingress controller included), as an operator would add.
OPEN_APPS = ("web", "across")


def _open_policy(app: str) -> client.V1NetworkPolicy:
    return client.V1NetworkPolicy(
        metadata=client.V1ObjectMeta(name=f"open-{app}"),
        spec=client.V1NetworkPolicySpec(
            pod_selector=client.V1LabelSelector(match_labels={"app": app}),
            policy_types=["Ingress"],
            ingress=[client.V1NetworkPolicyIngressRule()],
        ),
    )


@pytest.fixture(scope="module", autouse=True)
def open_policies(k8s_client: client.ApiClient, codelab_namespace: NamespaceInfo) -> Iterator[None]:
    """Policies admitting every source to this module's pods, removed at its end."""
    net = client.NetworkingV1Api(k8s_client)
    ns = codelab_namespace.name
    for app in OPEN_APPS:
        net.create_namespaced_network_policy(ns, _open_policy(app))
    yield
    for app in OPEN_APPS:
        try:
            net.delete_namespaced_network_policy(f"open-{app}", ns)
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture(scope="module")
def web(
    core_v1: client.CoreV1Api, apps_v1: client.AppsV1Api, codelab_namespace: NamespaceInfo
) -> Iterator[str]:
    """A busybox httpd Deployment (2 replicas) behind Service ``web:8080``; its namespace."""
    ns = codelab_namespace.name
    core_v1.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=WEB), data={"index.html": PAGE})
    )
    apps_v1.create_namespaced_deployment(ns, _web_deployment())
    core_v1.create_namespaced_service(
        ns,
        client.V1Service(
            metadata=client.V1ObjectMeta(name=WEB),
            spec=client.V1ServiceSpec(
                selector={"app": WEB}, ports=[client.V1ServicePort(port=8080, target_port=8080)]
            ),
        ),
    )
    yield ns
    apps_v1.delete_namespaced_deployment(WEB, ns)


def test_nodes_ready_with_pinned_version(core_v1: client.CoreV1Api) -> None:
    """Every node is Ready and its kubelet runs the pinned Kubernetes version."""
    nodes = core_v1.list_node().items
    assert nodes
    for node in nodes:
        ready = {c.type: c.status for c in node.status.conditions}["Ready"]
        assert ready == "True", (node.metadata.name, node.status.conditions)
        assert node.status.node_info.kubelet_version == versions.KUBERNETES


def _local_only(cluster: ClusterHandle) -> None:
    if cluster.name != "local":
        pytest.skip(f"the local cluster's own shape; cluster {cluster.name} has its own")


def test_local_cluster_is_a_tainted_control_plane_and_zoned_workers(
    core_v1: client.CoreV1Api, codelab_cluster: ClusterHandle
) -> None:
    """Like kind's multi-node clusters: the control plane is tainted NoSchedule, and each
    worker carries a zone of its own (so zone spreading can be exercised)."""
    _local_only(codelab_cluster)
    nodes = {n.metadata.name: n for n in core_v1.list_node().items}
    cp = nodes.pop("codelab")
    taints = [(t.key, t.effect) for t in cp.spec.taints or []]
    assert ("node-role.kubernetes.io/control-plane", "NoSchedule") in taints
    assert nodes, "no worker nodes"
    zones = [n.metadata.labels.get("topology.kubernetes.io/zone") for n in nodes.values()]
    assert None not in zones and len(set(zones)) == len(zones), zones
    cidrs = [n.spec.pod_cidr for n in [cp, *nodes.values()]]
    assert None not in cidrs and len(set(cidrs)) == len(cidrs), cidrs


HTTP_GET = 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {host} 80'


def _pinned(name: str, node: str, labels: dict[str, str], command: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(
            node_name=node,
            termination_grace_period_seconds=0,
            containers=[
                client.V1Container(
                    name="sh",
                    image=BUSYBOX,
                    image_pull_policy="IfNotPresent",
                    command=["sh", "-c", command],
                )  # fmt: skip
            ],
        ),
    )


@pytest.fixture(scope="module")
def across_workers(
    core_v1: client.CoreV1Api, codelab_namespace: NamespaceInfo, codelab_cluster: ClusterHandle
) -> Iterator[str]:
    """An httpd pod on one worker behind Service ``across``, a client pod on another."""
    _local_only(codelab_cluster)
    ns = codelab_namespace.name
    workers = sorted(
        n.metadata.name for n in core_v1.list_node().items if n.metadata.name != "codelab"
    )
    if len(workers) < 2:
        pytest.skip(f"needs two workers, the local cluster has {len(workers)}")
    serve = "mkdir -p /www && echo across > /www/index.html && exec httpd -f -p 8080 -h /www"
    core_v1.create_namespaced_pod(
        ns, _pinned("across-server", workers[0], {"app": "across"}, serve)
    )
    core_v1.create_namespaced_pod(
        ns, _pinned("across-client", workers[1], {"app": "client"}, "sleep 3600")
    )
    core_v1.create_namespaced_service(
        ns,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="across"),
            spec=client.V1ServiceSpec(
                selector={"app": "across"}, ports=[client.V1ServicePort(port=80, target_port=8080)]
            ),
        ),
    )
    yield ns
    for pod in ("across-server", "across-client"):
        core_v1.delete_namespaced_pod(pod, ns, grace_period_seconds=0)


def _reply(pod_exec: Any, host: str) -> tuple[bool, str]:
    try:
        result = pod_exec("across-client", ["sh", "-c", HTTP_GET.format(host=host)])
    except ApiException as exc:  # the pod is not running yet
        return False, f"exec: HTTP {exc.status} {exc.reason}"
    seen = (result.stdout + result.stderr).strip()
    return "\nacross" in result.stdout, seen[-120:] or f"no reply (exit {result.exit_code})"


def test_pods_on_different_workers_reach_each_other_by_service_name(
    across_workers: str, waiter: Waiter, pod_exec: Any
) -> None:
    """Pod networking across nodes: routes between the nodes' pod ranges, kube-proxy and
    CoreDNS on every node."""
    waiter.until(
        lambda: _reply(pod_exec, "across"), "across-client -> svc/across", kind="pod_start"
    )


def test_a_pod_denied_by_a_network_policy_is_refused(
    across_workers: str,
    waiter: Waiter,
    pod_exec: Any,
    core_v1: client.CoreV1Api,
    k8s_client: client.ApiClient,
) -> None:
    """NetworkPolicies are enforced (kube-network-policies): a pod no policy admits cannot
    connect; labelled as the policy admits, the same pod can."""
    ns = across_workers
    waiter.until(
        lambda: _reply(pod_exec, "across"), "across-client -> svc/across", kind="pod_start"
    )
    net = client.NetworkingV1Api(k8s_client)
    net.delete_namespaced_network_policy("open-across", ns)  # only the next one applies
    net.create_namespaced_network_policy(
        ns,
        client.V1NetworkPolicy(
            metadata=client.V1ObjectMeta(name="across-only-allowed"),
            spec=client.V1NetworkPolicySpec(
                pod_selector=client.V1LabelSelector(match_labels={"app": "across"}),
                policy_types=["Ingress"],
                ingress=[
                    client.V1NetworkPolicyIngressRule(
                        _from=[
                            client.V1NetworkPolicyPeer(
                                pod_selector=client.V1LabelSelector(match_labels={"app": "allowed"})
                            )
                        ]
                    )
                ],
            ),
        ),
    )
    try:

        def refused() -> tuple[bool, str]:
            ok, seen = _reply(pod_exec, "across")
            return not ok, seen

        waiter.until(refused, "the policy to refuse across-client", kind="pod_start")
        core_v1.patch_namespaced_pod(
            "across-client", ns, {"metadata": {"labels": {"app": "allowed"}}}
        )
        waiter.until(lambda: _reply(pod_exec, "across"), "the policy to admit it", kind="pod_start")
    finally:
        net.delete_namespaced_network_policy("across-only-allowed", ns)
        net.create_namespaced_network_policy(ns, _open_policy("across"))


def test_deployment_pods_running_and_ready(
    web: str, apps_v1: client.AppsV1Api, core_v1: client.CoreV1Api, waiter: Waiter
) -> None:
    """A Deployment's pods reach Running and Ready."""
    waiter.rollout(apps_v1, web, WEB)
    pods = core_v1.list_namespaced_pod(web, label_selector=f"app={WEB}").items
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Running", (pod.metadata.name, pod.status.phase)
        ready = {c.type: c.status for c in pod.status.conditions}["Ready"]
        assert ready == "True", (pod.metadata.name, pod.status.conditions)


def test_service_reachable_by_dns_from_pod(
    web: str, apps_v1: client.AppsV1Api, waiter: Waiter, probe_pod: Any
) -> None:
    """A Service answers by its DNS name from another pod (CoreDNS + kube-proxy)."""
    waiter.rollout(apps_v1, web, WEB)
    result = probe_pod(f"timeout 10 wget -qO- http://{WEB}.{web}.svc.cluster.local:8080/index.html")
    assert result.ok, result.output
    assert PAGE in result.output
    short = probe_pod(f"timeout 10 wget -qO- http://{WEB}:8080/index.html")
    assert short.ok and PAGE in short.output, short.output


def test_metrics_api_serves_pod_cpu(
    web: str, apps_v1: client.AppsV1Api, k8s_client: client.ApiClient, waiter: Waiter
) -> None:
    """metrics.k8s.io reports CPU usage of the Deployment's pods (metrics-server)."""
    waiter.rollout(apps_v1, web, WEB)
    custom = client.CustomObjectsApi(k8s_client)

    def probe() -> tuple[bool, str]:
        try:
            items = custom.list_namespaced_custom_object(
                "metrics.k8s.io", "v1beta1", web, "pods", label_selector=f"app={WEB}"
            )["items"]
        except ApiException as exc:
            return False, f"metrics API: HTTP {exc.status} {exc.reason}"
        cpus = [c["usage"]["cpu"] for i in items for c in i["containers"]]
        return len(items) == 2 and all(cpus), f"{len(items)} pod metrics, cpu={cpus}"

    seen = waiter.until(probe, "pod CPU metrics for deployment/web", kind="pod_start")
    assert "cpu=" in seen


def _pod(name: str, claim: str, command: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            restart_policy="Never",
            termination_grace_period_seconds=0,
            containers=[
                client.V1Container(
                    name="sh",
                    image=BUSYBOX,
                    command=["sh", "-c", command],
                    volume_mounts=[client.V1VolumeMount(name="data", mount_path="/data")],
                )
            ],
            volumes=[
                client.V1Volume(
                    name="data",
                    persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                        claim_name=claim
                    ),
                )
            ],
        ),
    )


def _pod_done(core: client.CoreV1Api, ns: str, name: str) -> Any:
    def probe() -> tuple[bool, str]:
        pod = core.read_namespaced_pod(name, ns)
        return pod.status.phase in ("Succeeded", "Failed"), f"phase={pod.status.phase}"

    return probe


def test_pvc_binds_and_data_survives_pod_deletion(
    core_v1: client.CoreV1Api, codelab_namespace: NamespaceInfo, waiter: Waiter
) -> None:
    """A PVC of the default StorageClass binds, and its data outlives the pod that wrote it."""
    ns = codelab_namespace.name
    core_v1.create_namespaced_persistent_volume_claim(
        ns,
        client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name="data"),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                resources=client.V1VolumeResourceRequirements(requests={"storage": "64Mi"}),
            ),
        ),
    )
    token = f"written-{time.time_ns()}"
    core_v1.create_namespaced_pod(ns, _pod("writer", "data", f"echo {token} > /data/f"))
    waiter.until(_pod_done(core_v1, ns, "writer"), "pod/writer to finish", kind="pod_start")
    pvc = core_v1.read_namespaced_persistent_volume_claim("data", ns)
    assert pvc.status.phase == "Bound", pvc.status
    pv = client.CoreV1Api(core_v1.api_client).read_persistent_volume(pvc.spec.volume_name)
    assert pv.spec.local is not None, "expected a `local` PV (backup tools skip hostPath)"
    core_v1.delete_namespaced_pod("writer", ns, grace_period_seconds=0)
    core_v1.create_namespaced_pod(ns, _pod("reader", "data", "cat /data/f"))
    waiter.until(_pod_done(core_v1, ns, "reader"), "pod/reader to finish", kind="pod_start")
    assert core_v1.read_namespaced_pod_log("reader", ns).strip() == token


def test_ingress_routes_by_host_and_path(
    web: str,
    apps_v1: client.AppsV1Api,
    k8s_client: client.ApiClient,
    codelab_cluster: ClusterHandle,
    waiter: Waiter,
) -> None:
    """An Ingress of class nginx routes by host and path from the host machine."""
    assert codelab_cluster.ingress_url, "the cluster provider gave no ingress URL"
    waiter.rollout(apps_v1, web, WEB)
    host = f"{web}.e2e.test"
    backend = client.V1IngressBackend(
        service=client.V1IngressServiceBackend(
            name=WEB, port=client.V1ServiceBackendPort(number=8080)
        )
    )
    client.NetworkingV1Api(k8s_client).create_namespaced_ingress(
        web,
        client.V1Ingress(
            metadata=client.V1ObjectMeta(name=WEB),
            spec=client.V1IngressSpec(
                ingress_class_name="nginx",
                rules=[
                    client.V1IngressRule(
                        host=host,
                        http=client.V1HTTPIngressRuleValue(
                            paths=[
                                client.V1HTTPIngressPath(
                                    path="/index.html", path_type="Prefix", backend=backend
                                )
                            ]
                        ),
                    )
                ],
            ),
        ),
    )
    url = f"{codelab_cluster.ingress_url}/index.html"

    def probe() -> tuple[bool, str]:
        try:
            r = requests.get(url, headers={"Host": host}, timeout=3)
        except requests.RequestException as exc:
            return False, type(exc).__name__
        return r.status_code == 200 and PAGE in r.text, f"HTTP {r.status_code}"

    waiter.until(probe, f"{url} with Host {host} to serve the page", kind="http")
    other_host = requests.get(url, headers={"Host": "other.e2e.test"}, timeout=3)
    assert other_host.status_code == 404
    other_path = requests.get(
        f"{codelab_cluster.ingress_url}/nope", headers={"Host": host}, timeout=3
    )
    assert other_path.status_code == 404


def test_rolling_update_completes(
    web: str, apps_v1: client.AppsV1Api, core_v1: client.CoreV1Api, waiter: Waiter
) -> None:
    """Changing the pod template rolls every pod to the new revision."""
    waiter.rollout(apps_v1, web, WEB)
    before = apps_v1.read_namespaced_deployment(WEB, web).metadata.annotations[
        "deployment.kubernetes.io/revision"
    ]
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "httpd", "env": [{"name": "REVISION", "value": "2"}]}]
                }
            }
        }
    }
    apps_v1.patch_namespaced_deployment(WEB, web, patch)
    waiter.rollout(apps_v1, web, WEB)
    dep = apps_v1.read_namespaced_deployment(WEB, web)
    assert int(dep.metadata.annotations["deployment.kubernetes.io/revision"]) == int(before) + 1
    pods = core_v1.list_namespaced_pod(web, label_selector=f"app={WEB}").items
    live = [p for p in pods if p.metadata.deletion_timestamp is None]
    envs = {e.value for p in live for e in p.spec.containers[0].env}
    assert envs == {"2"}, envs
