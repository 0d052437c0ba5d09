"""Deploy-to-Ready time of the CodeLab stack (bundled manifests, a profile). Prints figures.

Against a running cluster (the local one by default): each run creates a gate namespace,
applies the rendered manifests and generated Secrets, waits until every workload is Ready,
then deletes the namespace. Target on this 2-core machine with the `small` profile: <= 45 s.

    python benchmarks/stack.py --runs 3 [--kubeconfig K --context C --profile small]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from kubernetes import client

from pytest_codelab.deploy.fit import fitted
from pytest_codelab.deploy.manifests import apply_order, load_manifests, render
from pytest_codelab.deploy.secrets import generate_secrets
from pytest_codelab.k8s import kube, namespaces, stack
from pytest_codelab.options import BY_NAME
from pytest_codelab.resources import bundled_path

HOST = str(BY_NAME["ingress_host"].default)


def ready_after(core: client.CoreV1Api, namespace: str, since: float) -> dict[str, float]:
    """Seconds from ``since`` (wall clock) until each pod's Ready condition, per pod."""
    out = {}
    for pod in core.list_namespaced_pod(namespace).items:
        for cond in pod.status.conditions or []:
            if cond.type == "Ready" and cond.status == "True":
                out[pod.metadata.name] = cond.last_transition_time.timestamp() - since
    return out


def one_run(api: client.ApiClient, profile: str, run_id: str) -> tuple[float, float]:
    """Deploy once; return (seconds to apply, seconds to Ready); print the slowest pods."""
    core = client.CoreV1Api(api)
    name = namespaces.namespace_name(run_id, "main")
    namespaces.create(core, name, run_id, timeout=60)
    try:
        objects = fitted(
            render(
                load_manifests(bundled_path("manifests")),
                namespace=name,
                values=None,
                ingress_host=HOST,
            ),
            profile,
        )
        secrets = generate_secrets(None, ingress_host=HOST, namespace=name)
        started, wall = time.monotonic(), time.time()
        stack.deploy(api, apply_order(secrets + objects), name)
        applied = time.monotonic() - started
        stack.wait_ready(api, name, timeout=600)
        ready = time.monotonic() - started
        slowest = sorted(ready_after(core, name, wall).items(), key=lambda kv: -kv[1])[:4]
        print("  slowest pods: " + ", ".join(f"{n} {t:.0f}s" for n, t in slowest), flush=True)
        return applied, ready
    finally:
        namespaces.delete(core, name, timeout=300)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", default=BY_NAME["profile"].default)
    parser.add_argument(
        "--kubeconfig", type=Path, default=Path("/var/lib/pytest-codelab/kubeconfig")
    )
    parser.add_argument("--context", default="codelab")
    args = parser.parse_args()
    api = kube.new_client(args.kubeconfig, args.context)
    applies, readies = [], []
    for _ in range(args.runs):
        applied, ready = one_run(api, args.profile, namespaces.new_run_id())
        applies.append(applied)
        readies.append(ready)
        print(
            f"run: applied in {applied:.1f}s, every workload Ready after {ready:.1f}s", flush=True
        )
    print(
        f"stack ({args.profile} profile) deploy-to-Ready: median {statistics.median(readies):.1f}s"
        f" min {min(readies):.1f}s max {max(readies):.1f}s (n={len(readies)}); "
        f"apply median {statistics.median(applies):.1f}s"
    )


if __name__ == "__main__":
    main()
