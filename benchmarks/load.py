"""Figures of the gate's load runner. Prints, asserts nothing.

1. Requests/s that ``pytest_codelab.clients.load`` (``python -m locust`` headless, FastHttpUser)
   generates on this machine against a trivial endpoint on 127.0.0.1, served by a tiny
   asyncio HTTP/1.1 server in its own process: per run the wall-clock requests/s and the
   requests per CPU-second of the Locust processes (the per-core figure), for N runs; with
   ``--workers N`` also as a master with N local worker processes.
2. ``--cluster``: the time from load start to the first scale-up on a cluster. Deploys the
   CodeLab stack into its own gate namespace (labelled, deleted at the end), waits until the
   HPAs report CPU at minReplicas, runs the CodeLab load of suites/test_autoscaling.py and
   reports when each HPA first scaled out (its SuccessfulRescale event and the first sample
   above minReplicas).

    python benchmarks/load.py --runs 3 --seconds 10 --users 10 [--workers 2]
    python benchmarks/load.py --runs 0 --cluster [--kubeconfig K --context C \\
        --ingress-url https://172.31.254.2 --ingress-host load-bench.codelab.example.com]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from pytest_codelab.clients.load.locust import LocustRun, free_port, run_locust
from pytest_codelab.clients.load.results import fmt_ms
from pytest_codelab.clients.load.spec import MAX_SPAWN_RATE, SECRET_ENV, LoadSpec
from pytest_codelab.options import BY_NAME

LOCUSTFILE = """
from locust import FastHttpUser, constant, task

class Trivial(FastHttpUser):
    wait_time = constant(0)

    @task
    def root(self):
        self.client.get("/")
"""
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: keep-alive\r\n\r\nok"
)
#: The HPAs and the load of suites/test_autoscaling.py (keep in sync).
SCALED = ("agent-runtime-hpa", "gateway-hpa")
SUITE_LOAD = {
    "users": 24,
    "spawn_rate": 6.0,
    "env": {
        "CODELAB_LOAD_WORK_ROUNDS": "20000",
        "CODELAB_LOAD_MIX": "whoami=10,work=3,session=1",
        "CODELAB_LOAD_WAIT": "0.05-0.3",
    },
}


class _Responder(asyncio.Protocol):
    """Answers every request on a keep-alive connection with 200 "ok"."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(RESPONSE)  # type: ignore[attr-defined]


def _serve(port: int, ready: multiprocessing.synchronize.Event) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Responder, "127.0.0.1", port, backlog=1024)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def local_runs(args: argparse.Namespace) -> None:
    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(port, ready), daemon=True)
    server.start()
    ready.wait(10)
    workdir = Path(tempfile.mkdtemp(prefix="codelab-load-bench-"))
    locustfile = workdir / "trivial.py"
    locustfile.write_text(LOCUSTFILE, encoding="utf-8")
    print(
        f"machine: {os.cpu_count()} cores; server: asyncio on 127.0.0.1:{port} (own process); "
        f"{args.users} FastHttpUsers, no wait, {args.seconds:g}s per run, "
        f"{args.workers} worker processes",
        flush=True,
    )
    walls, per_core = [], []
    try:
        for number in range(1, args.runs + 1):
            before = children_cpu()
            spec = LoadSpec(
                f"http://127.0.0.1:{port}",
                users=args.users,
                spawn_rate=min(MAX_SPAWN_RATE, float(args.users)),
                run_time=args.seconds,
                locustfile=locustfile,
                name=f"run{number}",
                local_workers=args.workers,
            )
            result = run_locust(spec, workdir)
            cpu = children_cpu() - before
            active = max(0.001, result.requests / result.rps) if result.rps else args.seconds
            walls.append(result.rps)
            per_core.append(result.requests / cpu if cpu else 0.0)
            print(
                f"run {number}: {result.requests} requests in {active:.1f}s = "
                f"{result.rps:.0f} req/s; Locust used {cpu:.1f} CPU-s = "
                f"{per_core[-1]:.0f} req per CPU-second; {result.failed} failed; "
                f"p50 {fmt_ms(result.total.median if result.total else None)}",
                flush=True,
            )
    finally:
        server.terminate()
        server.join(5)
    if walls:
        print(
            f"runner throughput: median {statistics.median(walls):.0f} req/s "
            f"(min {min(walls):.0f}, max {max(walls):.0f}); per core: median "
            f"{statistics.median(per_core):.0f} req/CPU-s (n={len(walls)}); files in {workdir}"
        )


def cluster_run(args: argparse.Namespace) -> None:
    """Deploy, load, and time the first scale-up of each HPA; always delete the namespace."""
    from kubernetes import client

    from pytest_codelab.clients.timeline import Timeline, event_source, first_time, hpa_sampler
    from pytest_codelab.deploy.fit import fitted
    from pytest_codelab.deploy.manifests import apply_order, load_manifests, render
    from pytest_codelab.deploy.secrets import generate_secrets
    from pytest_codelab.k8s import kube, namespaces, stack
    from pytest_codelab.resources import bundled_path

    api = kube.new_client(args.kubeconfig, args.context)
    core = client.CoreV1Api(api)
    run_id = namespaces.new_run_id()
    name = namespaces.namespace_name(run_id, "main")
    namespaces.create(core, name, run_id, timeout=60)
    print(f"namespace {name}: deploying the stack ({args.profile} profile)", flush=True)
    try:
        objects = fitted(
            render(
                load_manifests(bundled_path("manifests")),
                namespace=name,
                values=None,
                ingress_host=args.ingress_host,
                ingress_class=args.ingress_class,
            ),
            args.profile,
        )
        secrets = generate_secrets(None, ingress_host=args.ingress_host, namespace=name)
        stack.deploy(api, apply_order(secrets + objects), name)
        stack.wait_ready(api, name, timeout=600)
        secret = base64.b64decode(
            core.read_namespaced_secret("oauth-secret", name).data["client-secret"]
        ).decode()
        timeline = Timeline(hpa_sampler(api, name), events=event_source(core, name), interval=1)
        with timeline:
            settled = time.monotonic() + 180
            while time.monotonic() < settled:
                latest = [s for s in timeline.samples() if s.t > time.time() - 3]
                if latest and all(s.cpu is not None and s.current == s.min for s in latest):
                    break
                time.sleep(2)
            spec = LoadSpec(
                args.ingress_url,
                users=int(SUITE_LOAD["users"]),  # type: ignore[call-overload]
                spawn_rate=float(SUITE_LOAD["spawn_rate"]),  # type: ignore[arg-type]
                run_time=90,
                name="bench-scale-out",
                env={
                    **SUITE_LOAD["env"],  # type: ignore[dict-item]
                    "CODELAB_INGRESS_HOST": args.ingress_host,
                    SECRET_ENV: secret,
                },
            )
            out = Path(tempfile.mkdtemp(prefix="codelab-load-bench-"))
            with LocustRun(spec, out) as locust:
                t0 = locust.started or time.time()
                while locust.running and time.time() - t0 < 90:
                    scaled = [
                        first_time(timeline.samples(h), lambda s: s.t >= t0 and s.current > s.min)
                        for h in SCALED
                    ]
                    if all(scaled):
                        break
                    time.sleep(1)
            data = timeline.stop()
        result = locust.result()
        print(result.describe())
        for hpa in data.hpas():
            own = [s for s in data.of(hpa) if s.t >= t0]
            seen = first_time(own, lambda s: s.current > s.min)
            event = next(
                (
                    e.t
                    for e in data.events
                    if e.kind == "scale" and e.source.endswith(hpa) and e.t >= t0
                ),
                None,
            )
            print(
                f"{hpa}: first scale-up event "
                + (f"{event - t0:.0f}s" if event else "none")
                + " after load start; replicas above minReplicas from "
                + (f"{seen - t0:.0f}s" if seen else "never")
                + f" (peak {max((s.current for s in own), default=0)} of max "
                f"{own[-1].max if own else '?'})",
                flush=True,
            )
    finally:
        namespaces.delete(core, name, timeout=300)
        api.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="local runs (0: none)")
    parser.add_argument("--seconds", type=float, default=10.0, help="run time of a local run")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--workers", type=int, default=0, help="local Locust worker processes")
    parser.add_argument("--cluster", action="store_true", help="time the first scale-up")
    parser.add_argument(
        "--kubeconfig", type=Path, default=Path("/var/lib/pytest-codelab/kubeconfig")
    )
    parser.add_argument("--context", default="codelab")
    parser.add_argument("--profile", default=BY_NAME["profile"].default)
    parser.add_argument("--ingress-url", default="https://172.31.254.2")
    parser.add_argument("--ingress-host", default="load-bench.codelab.example.com")
    parser.add_argument("--ingress-class", default=BY_NAME["ingress_class"].default)
    args = parser.parse_args()
    if args.runs:
        local_runs(args)
    if args.cluster:
        cluster_run(args)


if __name__ == "__main__":
    main()
