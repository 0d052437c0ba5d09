"""What an Ingress says about reaching the stack: address, host, TLS Secret."""

from __future__ import annotations

from kubernetes import client

from pytest_codelab.k8s import ingresses


def ingress(hosts: list[str], tls: dict[str, list[str]], address: str | None) -> client.V1Ingress:
    status = None
    if address is not None:
        status = client.V1IngressStatus(
            load_balancer=client.V1IngressLoadBalancerStatus(
                ingress=[client.V1IngressLoadBalancerIngress(ip=address)]
            )
        )
    return client.V1Ingress(
        metadata=client.V1ObjectMeta(name="codelab-ingress", namespace="n"),
        spec=client.V1IngressSpec(
            rules=[client.V1IngressRule(host=h) for h in hosts],
            tls=[client.V1IngressTLS(secret_name=s, hosts=h) for s, h in tls.items()],
        ),
        status=status,
    )


def test_published_address() -> None:
    assert ingresses.published_address(ingress([], {}, "10.0.0.9")) == "10.0.0.9"
    assert ingresses.published_address(ingress([], {}, None)) is None


def test_the_preferred_host_unless_the_rules_serve_another() -> None:
    assert ingresses.served_host(ingress(["a.test"], {}, None), "a.test") == "a.test"
    assert ingresses.served_host(ingress(["b.test"], {}, None), "a.test") == "b.test"
    assert ingresses.served_host(ingress([], {}, None), "a.test") == "a.test"


def test_tls_secret_of_the_host() -> None:
    item = ingress(["a.test"], {"other-tls": ["b.test"], "codelab-tls": ["a.test"]}, None)
    assert ingresses.tls_secret(item, "a.test") == "codelab-tls"
    assert ingresses.tls_secret(item, "c.test") is None
