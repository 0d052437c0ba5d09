"""What an Ingress object says about reaching the stack: its address, its host, its TLS
Secret, and which other Ingresses of the cluster claim the same host."""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.k8s.objects import meta


def published_address(ingress: client.V1Ingress) -> str | None:
    """The address the controller published in the Ingress status (IP or load balancer
    name), None while it has published none."""
    balancer = ingress.status.load_balancer if ingress.status else None
    lbs = balancer.ingress if balancer else None
    return next((lb.ip or lb.hostname for lb in lbs or [] if lb.ip or lb.hostname), None)


def served_host(ingress: client.V1Ingress, preferred: str) -> str:
    """``preferred`` when the Ingress's rules serve it (or name no host), else the first host
    they name: the deployment under test may serve another host."""
    hosts = [r.host for r in (ingress.spec.rules or []) if r.host] if ingress.spec else []
    return preferred if not hosts or preferred in hosts else hosts[0]


def tls_secret(ingress: client.V1Ingress, host: str) -> str | None:
    """The Secret holding the certificate the Ingress serves for ``host``, if any."""
    for tls in (ingress.spec.tls if ingress.spec else None) or []:
        if host in (tls.hosts or []) and tls.secret_name:
            return str(tls.secret_name)
    return None


def conflicts(api: client.ApiClient, ingress: client.V1Ingress, host: str) -> list[str]:
    """Other Ingresses of the cluster that claim ``host`` (the controller may route the
    host's requests to them); [] when they cannot be listed."""
    try:
        items = client.NetworkingV1Api(api).list_ingress_for_all_namespaces().items
    except ApiException:
        return []
    me = (meta(ingress).namespace, meta(ingress).name)
    return [
        f"ingress/{meta(i).name} in {meta(i).namespace}"
        for i in items
        if (meta(i).namespace, meta(i).name) != me
        and any(r.host == host for r in ((i.spec.rules if i.spec else None) or []))
    ]
