"""``kubectl set image / rollout restart / history / undo`` for one Deployment, via the API.

What the seed's "Обновление" section does with kubectl, done the way kubectl does it: a
strategic merge patch for ``set image`` and ``rollout restart`` (recording the change cause
like ``--record`` did), the ReplicaSets owned by the Deployment as its history, and kubectl's
DeploymentRollbacker for ``undo``: copy a ReplicaSet's pod template (minus its
pod-template-hash label) and annotations back into the Deployment. ``Snapshot`` puts a
Deployment back as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from pytest_codelab.k8s.objects import meta, name_of
from pytest_codelab.k8s.stack import label_selector

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
POD_TEMPLATE_HASH = "pod-template-hash"
#: The pod-template annotation ``kubectl rollout restart`` sets.
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
#: Deployment annotations ``kubectl rollout undo`` keeps instead of copying from the RS.
UNDO_SKIPPED_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)
_JSON_PATCH = "application/json-patch+json"


def container_of(deployment: client.V1Deployment) -> client.V1Container:
    """The container named like the Deployment, else its first one."""
    containers = _pod_spec(deployment).containers
    return next((c for c in containers if c.name == name_of(deployment)), containers[0])


def _pod_spec(workload: Any) -> client.V1PodSpec:
    """The pod spec of a Deployment's or ReplicaSet's template."""
    template = workload.spec.template if workload.spec else None
    spec: client.V1PodSpec | None = template.spec if template else None
    return spec or client.V1PodSpec(containers=[])


def _selector(deployment: client.V1Deployment) -> str:
    return label_selector(deployment.spec.selector if deployment.spec else None)


def set_image(
    apps: client.AppsV1Api,
    namespace: str,
    name: str,
    image: str,
    *,
    pull_policy: str | None = None,
    progress_deadline: int | None = None,
) -> None:
    """``kubectl set image deployment/NAME NAME=IMAGE`` (strategic merge patch), recording
    the change cause like ``--record`` did."""
    deployment = apps.read_namespaced_deployment(name, namespace)
    change: dict[str, Any] = {"name": container_of(deployment).name, "image": image}
    if pull_policy:
        change["imagePullPolicy"] = pull_policy
    spec: dict[str, Any] = {"template": {"spec": {"containers": [change]}}}
    if progress_deadline is not None:
        spec["progressDeadlineSeconds"] = progress_deadline
    body = {
        "metadata": {"annotations": {CHANGE_CAUSE: f"pytest-codelab: set image {image}"}},
        "spec": spec,
    }
    apps.patch_namespaced_deployment(
        name, namespace, body, _content_type="application/strategic-merge-patch+json"
    )


def restart(apps: client.AppsV1Api, namespace: str, name: str) -> str:
    """``kubectl rollout restart deployment/NAME``: a new pod-template revision with the same
    image (the restartedAt annotation), recording the change cause. Returns the timestamp."""
    moment = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "metadata": {"annotations": {CHANGE_CAUSE: f"pytest-codelab: rollout restart {moment}"}},
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: moment}}}},
    }
    apps.patch_namespaced_deployment(
        name, namespace, body, _content_type="application/strategic-merge-patch+json"
    )
    return moment


def replica_sets(
    apps: client.AppsV1Api, namespace: str, deployment: client.V1Deployment
) -> list[client.V1ReplicaSet]:
    """The Deployment's ReplicaSets (by owner reference), oldest revision first."""
    uid = meta(deployment).uid
    owned = [
        rs
        for rs in apps.list_namespaced_replica_set(
            namespace, label_selector=_selector(deployment)
        ).items
        if any(ref.uid == uid for ref in meta(rs).owner_references or [])
    ]
    return sorted(owned, key=revision_of)


def revision_of(obj: Any) -> int:
    """The revision annotation of a Deployment or ReplicaSet (0 without one)."""
    return int((meta(obj).annotations or {}).get(REVISION, "0"))


@dataclass(frozen=True)
class Revision:
    """One line of ``kubectl rollout history``."""

    number: int
    image: str
    cause: str
    replica_set: str

    def __str__(self) -> str:
        return f"{self.number} {self.image} ({self.cause or '-'}) rs/{self.replica_set}"


def history(apps: client.AppsV1Api, namespace: str, name: str) -> list[Revision]:
    """``kubectl rollout history deployment/NAME``."""
    deployment = apps.read_namespaced_deployment(name, namespace)
    return [
        Revision(
            revision_of(rs),
            next((str(c.image) for c in _pod_spec(rs).containers if c.name == name), ""),
            (meta(rs).annotations or {}).get(CHANGE_CAUSE, ""),
            name_of(rs),
        )
        for rs in replica_sets(apps, namespace, deployment)
    ]


def undo(
    apps: client.AppsV1Api, api: client.ApiClient, namespace: str, name: str, to_revision: int = 0
) -> str:
    """``kubectl rollout undo [--to-revision=N]``: copy that ReplicaSet's pod template (minus
    its pod-template-hash label) and annotations into the Deployment (kubectl's
    DeploymentRollbacker). 0 means the revision before the current one. AssertionError when
    kubectl would refuse (a paused Deployment, no such revision)."""
    deployment = apps.read_namespaced_deployment(name, namespace)
    if deployment.spec and deployment.spec.paused:
        raise AssertionError(f"deployment/{name} is paused; kubectl refuses to undo it")
    sets = replica_sets(apps, namespace, deployment)
    if to_revision == 0:
        current = revision_of(deployment)
        older = [rs for rs in sets if revision_of(rs) < current]
        if not older:
            raise AssertionError(f"deployment/{name}: no revision before {current} to undo to")
        chosen = older[-1]
    else:
        matches = [rs for rs in sets if revision_of(rs) == to_revision]
        if not matches:
            raise AssertionError(
                f"deployment/{name}: no revision {to_revision}; history: "
                + ", ".join(str(r) for r in history(apps, namespace, name))
            )
        chosen = matches[0]
    template = api.sanitize_for_serialization(chosen.spec.template if chosen.spec else None)
    template.get("metadata", {}).get("labels", {}).pop(POD_TEMPLATE_HASH, None)
    current_template = deployment.spec.template if deployment.spec else None
    if template == api.sanitize_for_serialization(current_template):
        return f"skipped rollback (current template already matches revision {to_revision})"
    annotations = {
        k: v
        for k, v in (meta(deployment).annotations or {}).items()
        if k in UNDO_SKIPPED_ANNOTATIONS
    }
    annotations.update(
        {
            k: v
            for k, v in (meta(chosen).annotations or {}).items()
            if k not in UNDO_SKIPPED_ANNOTATIONS
        }
    )
    patch = [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]
    apps.patch_namespaced_deployment(name, namespace, patch, _content_type=_JSON_PATCH)
    return f"rolled back to revision {revision_of(chosen)} (rs/{name_of(chosen)})"


def pods_with_image(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str, name: str, image: str
) -> list[client.V1Pod]:
    """Pods of the Deployment with a container running ``image``."""
    deployment = apps.read_namespaced_deployment(name, namespace)
    pods = core.list_namespaced_pod(namespace, label_selector=_selector(deployment)).items
    return [p for p in pods if p.spec and any(c.image == image for c in p.spec.containers)]


@dataclass(frozen=True)
class Snapshot:
    """What a test may change in a Deployment (pod template, progressDeadlineSeconds, change
    cause), to put it back afterwards."""

    namespace: str
    name: str
    template: dict[str, Any]
    progress_deadline: int | None
    cause: str | None

    @classmethod
    def take(
        cls, apps: client.AppsV1Api, api: client.ApiClient, namespace: str, name: str
    ) -> Snapshot:
        deployment = apps.read_namespaced_deployment(name, namespace)
        spec = deployment.spec
        return cls(
            namespace,
            name,
            api.sanitize_for_serialization(spec.template if spec else None),
            spec.progress_deadline_seconds if spec else None,
            (meta(deployment).annotations or {}).get(CHANGE_CAUSE),
        )

    def restore(self, apps: client.AppsV1Api, api: client.ApiClient) -> None:
        """Patch back whatever differs from the snapshot (nothing if nothing does)."""
        current = apps.read_namespaced_deployment(self.name, self.namespace)
        spec = current.spec
        patch: list[dict[str, Any]] = []
        if api.sanitize_for_serialization(spec.template if spec else None) != self.template:
            patch.append({"op": "replace", "path": "/spec/template", "value": self.template})
        if (spec.progress_deadline_seconds if spec else None) != self.progress_deadline:
            patch.append(
                {
                    "op": "replace",
                    "path": "/spec/progressDeadlineSeconds",
                    "value": self.progress_deadline,
                }
            )
        annotations = meta(current).annotations or {}
        if annotations.get(CHANGE_CAUSE) != self.cause:
            path = "/metadata/annotations/" + CHANGE_CAUSE.replace("~", "~0").replace("/", "~1")
            if self.cause is None:
                patch.append({"op": "remove", "path": path})
            else:
                patch.append({"op": "add", "path": path, "value": self.cause})
        if patch:
            apps.patch_namespaced_deployment(
                self.name, self.namespace, patch, _content_type=_JSON_PATCH
            )
