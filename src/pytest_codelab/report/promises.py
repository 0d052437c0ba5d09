"""The deployment guide's promises: the one list the gate's verdict is given against.

Why a list of its own: the verdict must say, for each thing the guide
(``kubernetes-deployment.md``) promises, whether it was checked and held. Counting tests
cannot say that: a run whose only VPA test skipped still "passes" every test it ran.

Each :class:`Promise` has an id (what ``--codelab-waive`` takes), a title, the guide
section it comes from, and the requirement-marker keys that count for it.

**Matching rule.** A test's ``@pytest.mark.requirement("5.1/probes: ...")`` has the key
``5.1/probes``: its text before the first colon. The key counts for the promise that lists
it, or lists a key it extends by ``/...`` (``2.8`` takes ``2.8/resources``); the longest
listed key wins. Autoscaling is one promise per HorizontalPodAutoscaler: a key
``<section>/autoscaling/<hpa-name>`` (any section number, e.g.
``5.3/autoscaling/gateway-hpa``) counts for the promise ``autoscaling/<hpa-name>``. The
HPAs the guide expects are :data:`GUIDE_HPAS`; each is a row even when no test checks it
(then "not checked"), and an HPA outside that list that has a test gets a row too. A key
that matches no promise is returned as unmapped by :func:`promise_for`, so the report lists
it instead of dropping it (``tests/report/test_promises.py`` checks every marker of the
bundled suites maps).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The HPAs of the guide: ``hpa-agent-runtime.yaml`` and the ``autoscaling`` blocks of its
#: values-prod.yaml (gateway, agentRuntime, authService), each named ``<deployment>-hpa``
#: like the bundled manifests (a test compares this with them rendered with the prod profile).
GUIDE_HPAS: tuple[str, ...] = ("gateway-hpa", "agent-runtime-hpa", "auth-service-hpa")
AUTOSCALING = "autoscaling"
_HPA_KEY = re.compile(r"^[0-9.]+/autoscaling/(?P<hpa>[a-z0-9]([-a-z0-9]*[a-z0-9])?)$")


@dataclass(frozen=True)
class Promise:
    """One promise of the guide and the requirement-marker keys that check it."""

    id: str
    title: str
    section: str
    keys: tuple[str, ...] = ()


def _hpa_promise(hpa: str) -> Promise:
    return Promise(
        f"{AUTOSCALING}/{hpa}",
        f"autoscaling: {hpa} scales out under load and back",
        "Масштабирование / Horizontal Pod Autoscaling; values.yaml autoscaling",
    )


_BEFORE_HPAS = (
    Promise(
        "probes",
        "liveness and readiness probes work: a container failing its liveness probe is "
        "restarted, an unready pod gets no traffic",
        "Ручная установка / 3. Agent Runtime (livenessProbe, readinessProbe); Best Practices 3",
        ("5.1/probes", "5.1/liveness", "5.1/readiness"),
    ),
    Promise(
        "self-healing",
        "self-healing: a dead process is restarted, a lost pod is replaced, StatefulSet data "
        "survives it",
        "Обзор (Self-Healing, Отказоустойчивость); PostgreSQL/Redis StatefulSet",
        ("5.1/self-healing", "5.1/statefulset"),
    ),
    Promise(
        "node-spread",
        "spread over nodes: the guide's worker count, every multi-replica Deployment's Ready "
        "pods on at least two nodes",
        "Требования / Кластер (минимум 3 worker nodes); Обзор (Отказоустойчивость)",
        ("5.5/workers", "5.5/spread"),
    ),
    Promise(
        "node-drain",
        "node drain: draining a worker under traffic loses no request and keeps every "
        "PodDisruptionBudget",
        "Обзор (Отказоустойчивость, Rolling Updates без простоя); Best Practices 9",
        ("5.5/drain",),
    ),
    Promise(
        "node-loss",
        "node loss: a lost worker costs a bounded share of requests, its pods come back Ready "
        "on the other nodes within the bound; the data tier's single points of failure named",
        "Обзор (Отказоустойчивость, Self-Healing); Ручная установка 1-2 (StatefulSets, "
        "replicas: 1)",
        ("5.5/node-loss", "5.5/data-tier"),
    ),
    Promise(
        "connectivity",
        "connectivity: Services answer by name, the architecture's paths work end to end",
        "Архитектура в Kubernetes; Troubleshooting / Проверка сервисов",
        ("5.2/services", "5.2/paths", "4.4/smoke"),
    ),
    # Split in two: what the policies say is judged on the objects (any cluster); whether
    # the network plugin enforces them needs an enforcing plugin, so only that half may be
    # waived where the plugin does not enforce.
    Promise(
        "network-policies",
        "network policies: they admit the architecture graph's paths and no other",
        "Архитектура в Kubernetes; Best Practices 8 (network policies)",
        ("5.2/policy-admits",),
    ),
    Promise(
        "network-isolation",
        "network isolation: the network plugin refuses a path the guide forbids",
        "Best Practices 1 and 8 (namespaces, network policies)",
        ("5.2/network-policies",),
    ),
    Promise(
        "ingress-routing",
        "ingress routing: /api/v1 to the gateway, /oauth to auth-service, nothing else",
        "Ручная установка / 5. Ingress (rules)",
        ("5.3/ingress",),
    ),
    Promise(
        "tls",
        "TLS: the host is served over HTTPS with the certificate of its TLS Secret",
        "Ручная установка / 5. Ingress (tls, cert-manager); Требования / Инструменты",
        ("5.3/tls",),
    ),
    Promise(
        "tls-issuance",
        "TLS issuance: cert-manager issues codelab-tls from letsencrypt-prod; the served chain "
        "verifies against the issuer's root, names the Ingress hosts, lasts, and renews "
        "without a failed request",
        "Ручная установка / 5. Ingress (cert-manager.io/cluster-issuer: letsencrypt-prod); "
        "Требования / Инструменты (cert-manager)",
        ("5.3/tls-issuance",),
    ),
    Promise(
        "body-size",
        "body size: bodies under proxy-body-size pass, larger ones get 413",
        "Ручная установка / 5. Ingress (nginx.ingress.kubernetes.io/proxy-body-size: 50m)",
        ("5.3/body-size",),
    ),
)
_AFTER_HPAS = (
    Promise(
        "vpa",
        "VPA: agent-runtime-vpa recommends resources within its bounds; in Auto mode a "
        "pod is recreated with the recommendation",
        "Масштабирование / Vertical Pod Autoscaling (VPA)",
        ("6/vpa",),
    ),
    Promise(
        "metrics",
        "pod metrics: kubectl top pods (metrics.k8s.io) serves the pods' usage",
        "Мониторинг / Метрики",
        ("6/metrics",),
    ),
    Promise(
        "rolling-update",
        "rolling update: set image rolls out without a failed request, rollout status and "
        "history report it",
        "Обновление / Rolling Update",
        ("5.4/rolling-update", "5.4/history", "5.4/stuck-rollout"),
    ),
    Promise(
        "undo",
        "undo: rollout undo returns to the previous version",
        "Обновление / Откат (kubectl rollout undo)",
        ("5.4/undo",),
    ),
    Promise(
        "undo-to-revision",
        "undo to revision: rollout undo --to-revision returns to the chosen revision",
        "Обновление / Откат (--to-revision)",
        ("5.4/undo-to-revision",),
    ),
    Promise(
        "backup-restore",
        "backup and restore: a Velero backup holds the data and restores it",
        "Резервное копирование / Velero",
        ("7/backup", "7/restore"),
    ),
    Promise(
        "best-practices",
        "best practices: valid manifests, resources, probes, secrets, pinned images, "
        "HPA bounds, network policies, references",
        "Best Practices",
        ("2.8", "6/hpa"),
    ),
    Promise(
        "figures",
        "the guide's figures: replicas, resources, HPA bounds and targets, Ingress values",
        "Архитектура в Kubernetes; 2. Настройка values.yaml; HPA and Ingress manifests",
        ("guide/figures",),
    ),
)

PROMISES: tuple[Promise, ...] = (
    *_BEFORE_HPAS,
    *(_hpa_promise(hpa) for hpa in GUIDE_HPAS),
    *_AFTER_HPAS,
)
BY_ID: dict[str, Promise] = {p.id: p for p in PROMISES}


def marker_key(text: str) -> str:
    """The key of a requirement marker's text: what stands before the first colon."""
    return text.split(":", 1)[0].strip()


def promise_for(key: str) -> Promise | None:
    """The promise a marker key counts for, or None when it matches none (unmapped)."""
    hpa = _HPA_KEY.match(key)
    if hpa:
        return BY_ID.get(f"{AUTOSCALING}/{hpa['hpa']}") or _hpa_promise(hpa["hpa"])
    best: tuple[int, Promise] | None = None
    for promise in PROMISES:
        for listed in promise.keys:
            if (key == listed or key.startswith(listed + "/")) and (
                best is None or len(listed) > best[0]
            ):
                best = (len(listed), promise)
    return best[1] if best else None


def unknown_ids(ids: tuple[str, ...]) -> list[str]:
    """The ids that name no promise (for ``--codelab-waive``)."""
    return [i for i in ids if i not in BY_ID]
