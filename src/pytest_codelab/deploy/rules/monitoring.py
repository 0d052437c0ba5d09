"""Monitoring hooks, where the manifests carry them (the guide's best practice 5): a scrape
annotation, ServiceMonitor or PodMonitor must point at a port that exists, else Prometheus
(the guide's kube-prometheus-stack) silently scrapes nothing.

The guide installs Prometheus separately and its manifests carry no hooks, so a folder without
any passes; a hook that is there is checked against the ports the objects declare.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_codelab.deploy.rules.base import (
    Obj,
    Violation,
    main_containers,
    selects,
    template_labels,
    violation,
    workloads,
)

SCRAPE = "prometheus.io/scrape"
PORT = "prometheus.io/port"
MONITOR_GROUP = "monitoring.coreos.com/"


def _container_ports(obj: Obj) -> tuple[set[int], set[str]]:
    numbers: set[int] = set()
    names: set[str] = set()
    for c in main_containers(obj):
        for p in c.get("ports") or []:
            if isinstance(p.get("containerPort"), int):
                numbers.add(p["containerPort"])
            if isinstance(p.get("name"), str):
                names.add(p["name"])
    return numbers, names


def _annotations(meta: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (meta or {}).get("annotations") or {}


def _port_number(value: Any) -> int | None:
    text = str(value).strip()
    return int(text) if text.isdigit() else None


def _pod_hooks(obj: Obj) -> list[Violation]:
    template_meta = ((obj.get("spec") or {}).get("template") or {}).get("metadata")
    annotations = _annotations(template_meta)
    numbers, _ = _container_ports(obj)
    field = "spec.template.metadata.annotations"
    if PORT in annotations:
        port = _port_number(annotations[PORT])
        if port is None or port not in numbers:
            return [
                violation(
                    "monitoring",
                    obj,
                    f"{field}[{PORT}] is {annotations[PORT]!r}; expected one of the pod's "
                    f"containerPorts {sorted(numbers)}",
                    "point prometheus.io/port at the port that serves metrics",
                )
            ]
    elif str(annotations.get(SCRAPE, "")).lower() == "true" and not numbers:
        return [
            violation(
                "monitoring",
                obj,
                f"{field}[{SCRAPE}] is true but no container declares a port; expected a "
                "containerPort (or prometheus.io/port) to scrape",
                "declare the metrics port in the container's ports",
            )
        ]
    return []


def _service_hooks(svc: Obj) -> list[Violation]:
    annotations = _annotations(svc.get("metadata"))
    if PORT not in annotations:
        return []
    ports = (svc.get("spec") or {}).get("ports") or []
    numbers = {p.get(k) for p in ports for k in ("port", "targetPort") if isinstance(p.get(k), int)}
    if _port_number(annotations[PORT]) in numbers:
        return []
    return [
        violation(
            "monitoring",
            svc,
            f"metadata.annotations[{PORT}] is {annotations[PORT]!r}; expected one of the "
            f"Service's ports {sorted(numbers)}",
            "point prometheus.io/port at a port the Service exposes",
        )
    ]


def _service_monitor(monitor: Obj, objects: Sequence[Obj]) -> list[Violation]:
    spec = monitor.get("spec") or {}
    services = [
        o
        for o in objects
        if o.get("kind") == "Service"
        and selects(spec.get("selector"), (o.get("metadata") or {}).get("labels") or {})
    ]
    if not services:
        return [
            violation(
                "monitoring",
                monitor,
                "spec.selector selects no Service of the manifests; expected the labels of "
                "the Service to scrape",
                "make spec.selector.matchLabels match the metrics Service's labels",
            )
        ]
    named = {p.get("name") for s in services for p in (s.get("spec") or {}).get("ports") or []}
    pods = [w for w in workloads(objects) if any(_backs(s, w) for s in services)]
    out: list[Violation] = []
    for i, endpoint in enumerate(spec.get("endpoints") or []):
        port, target = endpoint.get("port"), endpoint.get("targetPort")
        if port is not None and port not in named:
            out.append(
                violation(
                    "monitoring",
                    monitor,
                    f"spec.endpoints[{i}].port is {port!r}; expected a named port of "
                    f"{', '.join(_ids(services))}: {sorted(n for n in named if n)}",
                    "name the Service port and use that name here",
                )
            )
        if target is not None and not any(_has_port(w, target) for w in pods):
            out.append(
                violation(
                    "monitoring",
                    monitor,
                    f"spec.endpoints[{i}].targetPort is {target!r}; expected a containerPort "
                    "of the pods behind the selected Services",
                    "point targetPort at the container's metrics port",
                )
            )
    return out


def _pod_monitor(monitor: Obj, objects: Sequence[Obj]) -> list[Violation]:
    spec = monitor.get("spec") or {}
    pods = [w for w in workloads(objects) if selects(spec.get("selector"), template_labels(w))]
    if not pods:
        return [
            violation(
                "monitoring",
                monitor,
                "spec.selector selects no pod of the manifests; expected the labels of the "
                "pods to scrape",
                "make spec.selector.matchLabels match the pod template's labels",
            )
        ]
    out: list[Violation] = []
    for i, endpoint in enumerate(spec.get("podMetricsEndpoints") or []):
        port = endpoint.get("port")
        if port is not None and not any(_has_port(w, port) for w in pods):
            names = sorted({n for w in pods for n in _container_ports(w)[1]})
            out.append(
                violation(
                    "monitoring",
                    monitor,
                    f"spec.podMetricsEndpoints[{i}].port is {port!r}; expected a named "
                    f"containerPort of {', '.join(_ids(pods))}: {names}",
                    "name the container's metrics port and use that name here",
                )
            )
    return out


def _backs(service: Obj, workload: Obj) -> bool:
    """The workload's pods are behind the Service (its selector, a plain label map)."""
    selector = (service.get("spec") or {}).get("selector")
    return bool(selector) and selects({"matchLabels": selector}, template_labels(workload))


def _has_port(workload: Obj, port: Any) -> bool:
    numbers, names = _container_ports(workload)
    return port in names or _port_number(port) in numbers


def _ids(objects: Sequence[Obj]) -> list[str]:
    return [f"{o.get('kind')}/{(o.get('metadata') or {}).get('name')}" for o in objects]


def check_monitoring(objects: Sequence[Obj]) -> list[Violation]:
    """Every scrape annotation, ServiceMonitor and PodMonitor points at an existing port."""
    out: list[Violation] = []
    for obj in workloads(objects):
        out += _pod_hooks(obj)
    for obj in objects:
        kind, group = obj.get("kind"), str(obj.get("apiVersion", ""))
        if kind == "Service":
            out += _service_hooks(obj)
        elif kind == "ServiceMonitor" and group.startswith(MONITOR_GROUP):
            out += _service_monitor(obj, objects)
        elif kind == "PodMonitor" and group.startswith(MONITOR_GROUP):
            out += _pod_monitor(obj, objects)
    return out
