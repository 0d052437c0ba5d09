"""The shapes of the Kubernetes objects the gate reads, checked when manifests are loaded.

Why: the renderer, the fit, the rules and the comparisons read fields of the operator's
objects (a workload's ``spec.template.spec.containers[].ports``, an HPA's bounds, an
Ingress's rules). A malformed object (a Deployment without ``spec``, a ``ports`` that is a
string) must stop the run with one line naming its file and object, never a traceback from
deep inside a check. Only those fields are typed here, and only as far as the gate reads
them; whether the object is valid for Kubernetes is the schema rule's verdict
(:mod:`pytest_codelab.deploy.schema`), reported per object as a test failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_codelab.deploy.shapes import Anything, ListOf, MapOf, Obj, Scalar, Spec, problems

STR = Scalar((str,), "a string")
INT = Scalar((int,), "an integer")
BOOL = Scalar((bool,), "true or false")
INT_OR_STR = Scalar((int, str), "a number or a name")
QUANTITY = Scalar((str, int, float), "a quantity")
#: A value that may be a credential: an error never repeats it.
SECRET_STR = Scalar((str,), "a string", sensitive=True)
STRINGS = ListOf(STR)
LABELS = MapOf(STR)


def _open(**fields: Spec) -> Obj:
    return Obj(fields, open=True)


METADATA = _open(name=STR, namespace=STR, labels=LABELS, annotations=LABELS)
SELECTOR = _open(
    matchLabels=LABELS,
    matchExpressions=ListOf(_open(key=STR, operator=STR, values=STRINGS)),
)
PROBE = _open(
    httpGet=_open(
        path=STR, port=INT_OR_STR, scheme=STR, httpHeaders=ListOf(_open(name=STR, value=STR))
    ),
    tcpSocket=_open(port=INT_OR_STR),
    grpc=_open(port=INT),
    exec=_open(command=STRINGS),
    initialDelaySeconds=INT,
    periodSeconds=INT,
    timeoutSeconds=INT,
    failureThreshold=INT,
    successThreshold=INT,
)
KEY_REF = _open(name=STR, key=STR)
ENV_VAR = Obj(
    {
        "name": STR,
        "value": SECRET_STR,
        "valueFrom": _open(secretKeyRef=KEY_REF, configMapKeyRef=KEY_REF, fieldRef=Anything()),
    },
    required=("name",),
    open=True,
)
CONTAINER = Obj(
    {
        "name": STR,
        "image": STR,
        "imagePullPolicy": STR,
        "command": STRINGS,
        "args": STRINGS,
        "ports": ListOf(_open(containerPort=INT, name=STR, protocol=STR, hostPort=INT)),
        "env": ListOf(ENV_VAR),
        "envFrom": ListOf(_open(secretRef=_open(name=STR), configMapRef=_open(name=STR))),
        "resources": _open(requests=MapOf(QUANTITY), limits=MapOf(QUANTITY)),
        "livenessProbe": PROBE,
        "readinessProbe": PROBE,
        "startupProbe": PROBE,
        "securityContext": _open(
            runAsNonRoot=BOOL,
            runAsUser=INT,
            readOnlyRootFilesystem=BOOL,
            allowPrivilegeEscalation=BOOL,
            privileged=BOOL,
            capabilities=_open(add=STRINGS, drop=STRINGS),
        ),
        "volumeMounts": ListOf(_open(name=STR, mountPath=STR, subPath=STR, readOnly=BOOL)),
        "lifecycle": _open(),
    },
    required=("name",),
    open=True,
)
POD_SPEC = _open(
    containers=ListOf(CONTAINER),
    initContainers=ListOf(CONTAINER),
    volumes=ListOf(_open(name=STR)),
    serviceAccountName=STR,
    securityContext=_open(runAsNonRoot=BOOL, runAsUser=INT, fsGroup=INT),
    nodeSelector=LABELS,
    tolerations=ListOf(_open()),
    topologySpreadConstraints=ListOf(_open(labelSelector=SELECTOR)),
    affinity=_open(),
    terminationGracePeriodSeconds=INT,
    automountServiceAccountToken=BOOL,
)
CLAIM_SPEC = _open(
    accessModes=STRINGS,
    storageClassName=STR,
    resources=_open(requests=MapOf(QUANTITY), limits=MapOf(QUANTITY)),
)
WORKLOAD_SPEC = _open(
    replicas=INT,
    selector=SELECTOR,
    template=_open(metadata=METADATA, spec=POD_SPEC),
    volumeClaimTemplates=ListOf(
        Obj({"metadata": METADATA, "spec": CLAIM_SPEC}, required=("spec",), open=True)
    ),
    strategy=_open(type=STR, rollingUpdate=_open(maxSurge=INT_OR_STR, maxUnavailable=INT_OR_STR)),
    updateStrategy=_open(type=STR, rollingUpdate=_open(partition=INT)),
    serviceName=STR,
    minReadySeconds=INT,
    revisionHistoryLimit=INT,
    progressDeadlineSeconds=INT,
)
PEER = _open(
    podSelector=SELECTOR, namespaceSelector=SELECTOR, ipBlock=_open(cidr=STR, **{"except": STRINGS})
)
POLICY_PORTS = ListOf(_open(port=INT_OR_STR, protocol=STR, endPort=INT))
BACKEND = _open(service=_open(name=STR, port=_open(number=INT, name=STR)))

#: kind -> the shape of its ``spec`` (required: the gate reads it).
SPECS: Mapping[str, Spec] = {
    "Deployment": WORKLOAD_SPEC,
    "StatefulSet": WORKLOAD_SPEC,
    "DaemonSet": WORKLOAD_SPEC,
    "ReplicaSet": WORKLOAD_SPEC,
    "Job": WORKLOAD_SPEC,
    "CronJob": _open(schedule=STR, jobTemplate=_open(metadata=METADATA, spec=WORKLOAD_SPEC)),
    "Pod": POD_SPEC,
    "Service": _open(
        type=STR,
        clusterIP=STR,
        selector=LABELS,
        ports=ListOf(_open(name=STR, port=INT, targetPort=INT_OR_STR, protocol=STR, nodePort=INT)),
    ),
    "Ingress": _open(
        ingressClassName=STR,
        defaultBackend=BACKEND,
        rules=ListOf(
            _open(
                host=STR,
                http=_open(paths=ListOf(_open(path=STR, pathType=STR, backend=BACKEND))),
            )
        ),
        tls=ListOf(_open(hosts=STRINGS, secretName=STR)),
    ),
    "HorizontalPodAutoscaler": _open(
        scaleTargetRef=_open(apiVersion=STR, kind=STR, name=STR),
        minReplicas=INT,
        maxReplicas=INT,
        metrics=ListOf(
            _open(
                type=STR,
                resource=_open(
                    name=STR,
                    target=_open(type=STR, averageUtilization=INT, averageValue=QUANTITY),
                ),
            )
        ),
        behavior=_open(),
    ),
    "VerticalPodAutoscaler": _open(
        targetRef=_open(apiVersion=STR, kind=STR, name=STR),
        updatePolicy=_open(updateMode=STR),
        resourcePolicy=_open(containerPolicies=ListOf(_open(containerName=STR))),
    ),
    "NetworkPolicy": _open(
        podSelector=SELECTOR,
        policyTypes=STRINGS,
        ingress=ListOf(_open(ports=POLICY_PORTS, **{"from": ListOf(PEER)})),
        egress=ListOf(_open(ports=POLICY_PORTS, to=ListOf(PEER))),
    ),
    "PodDisruptionBudget": _open(
        minAvailable=INT_OR_STR, maxUnavailable=INT_OR_STR, selector=SELECTOR
    ),
    "PersistentVolumeClaim": CLAIM_SPEC,
}
#: kind -> the shape of its other top-level fields the gate reads.
BODIES: Mapping[str, Mapping[str, Spec]] = {
    "ConfigMap": {"data": MapOf(STR), "binaryData": MapOf(STR)},
    "Secret": {"type": STR, "data": MapOf(SECRET_STR), "stringData": MapOf(SECRET_STR)},
    "Role": {"rules": ListOf(_open(apiGroups=STRINGS, resources=STRINGS, verbs=STRINGS))},
    "ClusterRole": {"rules": ListOf(_open(apiGroups=STRINGS, resources=STRINGS, verbs=STRINGS))},
    "RoleBinding": {"subjects": ListOf(_open(kind=STR, name=STR, namespace=STR))},
    "ClusterRoleBinding": {"subjects": ListOf(_open(kind=STR, name=STR, namespace=STR))},
}


def object_shape(kind: str) -> Obj:
    """The shape of an object of ``kind``: metadata always, ``spec`` where the gate reads
    one (then required), the fields of :data:`BODIES`."""
    fields: dict[str, Spec] = {"apiVersion": STR, "kind": STR, "metadata": METADATA}
    fields.update(BODIES.get(kind, {}))
    spec = SPECS.get(kind)
    if spec is not None:
        fields["spec"] = spec
    return Obj(fields, required=("spec",) if spec is not None else (), open=True)


def shape_problems(obj: Mapping[str, Any]) -> list[str]:
    """Every problem of ``obj``'s shape, one line each, naming the key path."""
    errors: list[str] = []
    problems(object_shape(str(obj.get("kind"))), obj, "", False, errors)
    return errors
