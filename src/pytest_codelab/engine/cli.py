"""``codelab-cluster``: build, start, stop and inspect the local cluster by hand.

The engine's one command line: the cluster's verbs (build, up, down, status, load-image)
and ``images`` (build, list or import CodeLab's images without a cluster).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_codelab.engine.errors import EngineError


def cmd_build(args: argparse.Namespace) -> None:
    from pytest_codelab.engine import build, certmanager, velero, vpa
    from pytest_codelab.engine.images.builder import build_recipe
    from pytest_codelab.engine.images.recipes import build_engine_images
    from pytest_codelab.engine.timeouts import Timeouts

    timeouts = Timeouts().scaled(args.timeout_scale)
    build.build(args.only or None, addons=args.with_addons)
    if not args.only:
        build_engine_images(timeouts=timeouts)
    if "velero" in args.with_addons:
        velero.build_images(timeouts=timeouts)
    for name, module in (("cert-manager", certmanager), ("vpa", vpa)):
        if name in args.with_addons:
            for recipe in module.image_recipes().values():
                build_recipe(recipe, timeouts=timeouts)


def cmd_up(args: argparse.Namespace) -> None:
    from pytest_codelab.engine import up

    up.up(
        with_addons=not args.no_addons,
        extras=args.with_addons,
        timeout_scale=args.timeout_scale,
        workers=args.workers,
    )


def cmd_down(args: argparse.Namespace) -> None:
    from pytest_codelab.engine import down

    down.main_down(args.timeout_scale)


def cmd_node(args: argparse.Namespace) -> None:
    from pytest_codelab.engine import nodes

    nodes.main_node(args.node_verb, args.name, args.timeout_scale)


def cmd_status(args: argparse.Namespace) -> int:
    from pytest_codelab.engine import status

    return status.print_status()


def cmd_load_image(args: argparse.Namespace) -> None:
    from pytest_codelab.engine.images import loading
    from pytest_codelab.engine.timeouts import Timeouts

    loading.load_archive(
        Path(args.archive), name=args.name, timeouts=Timeouts().scaled(args.timeout_scale)
    )


def cmd_images_build(args: argparse.Namespace) -> None:
    from pytest_codelab.engine.images import recipes
    from pytest_codelab.engine.timeouts import Timeouts

    paths = recipes.build_all(
        args.names or None,
        force=args.force,
        litellm_image=args.litellm_image,
        timeouts=Timeouts().scaled(args.timeout_scale),
    )
    for n, p in paths.items():
        print(f"{n}\t{p}")


def cmd_images_list(args: argparse.Namespace) -> None:
    from pytest_codelab.engine.images import builder, recipes

    root = builder.images_dir() / "archives"
    for n, r in recipes.recipe_table().items():
        p = root / f"{n}.tar"
        where = str(p) if p.is_file() else "(not built)"
        print(f"{n:22} {' '.join(r.tags):48} {where}")


def cmd_images_load(args: argparse.Namespace) -> None:
    from pytest_codelab.engine.images import loading
    from pytest_codelab.engine.timeouts import Timeouts

    for a in args.archives:
        names = loading.load_image(
            a,
            containerd_address=args.address,
            namespace=args.namespace,
            name=args.name,
            ctr=args.ctr,
            timeouts=Timeouts().scaled(args.timeout_scale),
        )
        print(f"{a}: {' '.join(names)}")


def _with_addons(p: argparse.ArgumentParser, verb: str) -> None:
    from pytest_codelab.engine.versions import OPTIONAL_ADDONS

    p.add_argument(
        "--with",
        dest="with_addons",
        action="append",
        default=[],
        choices=OPTIONAL_ADDONS,
        help=f"{verb} an optional add-on (velero: Velero + MinIO for backup and restore; "
        "cert-manager: cert-manager + Pebble, ClusterIssuer letsencrypt-prod; vpa: the VPA)",
    )


def _workers(value: str) -> int:
    from pytest_codelab.engine.layout import MAX_WORKERS

    try:
        count = int(value)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"{value!r}: a whole number from 1 to {MAX_WORKERS}")
    return count


def _scale(value: str) -> float:
    try:
        factor = float(value)
    except ValueError:
        factor = 0.0
    if not factor > 0 or factor == float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r}: a number greater than 0")
    return factor


def _timeout_scale(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--timeout-scale",
        type=_scale,
        default=1.0,
        metavar="FACTOR",
        help="multiply every deadline of the engine (engine/timeouts.py) by FACTOR "
        "(default: 1.0; e.g. 2 on a slow machine)",
    )


def _images_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from pytest_codelab.engine.images.recipes import GROUPS
    from pytest_codelab.engine.versions import LITELLM_IMAGE

    im = sub.add_parser("images", help="build, list or import CodeLab's images (no cluster)")
    isub = im.add_subparsers(dest="images_verb", required=True)
    b = isub.add_parser("build", help="build recipes (default: all) into the cache")
    b.add_argument("names", nargs="*", help=f"recipes or groups ({', '.join(GROUPS)})")
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    b.add_argument("--litellm-image", help=f"name of the LiteLLM image ({LITELLM_IMAGE})")
    _timeout_scale(b)
    b.set_defaults(func=cmd_images_build)
    isub.add_parser("list", help="list recipes, tags and cached archives").set_defaults(
        func=cmd_images_list
    )
    ld = isub.add_parser("load", help="import archives into a containerd")
    ld.add_argument("archives", nargs="+", type=Path)
    ld.add_argument("--address", required=True, help="containerd socket")
    ld.add_argument("--namespace", default="k8s.io")
    ld.add_argument("--ctr", default="ctr")
    ld.add_argument("--name", help="extra reference for the (single) image")
    _timeout_scale(ld)
    ld.set_defaults(func=cmd_images_load)


def parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per verb."""
    from pytest_codelab.engine.layout import DEFAULT_WORKERS

    p = argparse.ArgumentParser(
        prog="codelab-cluster",
        description="The embedded local Kubernetes of pytest-codelab (a control plane, N workers).",
    )
    sub = p.add_subparsers(dest="verb", required=True)
    b = sub.add_parser("build", help="build the engine from upstream Go modules (idempotent)")
    b.add_argument("--only", nargs="*", metavar="COMPONENT", help="build only these components")
    _with_addons(b, "also build")
    _timeout_scale(b)
    b.set_defaults(func=cmd_build)
    u = sub.add_parser("up", help="start the cluster and print the kubeconfig path")
    u.add_argument("--no-addons", action="store_true", help="skip DNS, metrics, volumes, ingress")
    u.add_argument(
        "--workers",
        type=_workers,
        default=DEFAULT_WORKERS,
        metavar="N",
        help=f"worker nodes beside the control plane (default: {DEFAULT_WORKERS})",
    )
    _with_addons(u, "also install")
    _timeout_scale(u)
    u.set_defaults(func=cmd_up)
    d = sub.add_parser("down", help="stop the cluster and remove everything it made")
    _timeout_scale(d)
    d.set_defaults(func=cmd_down)
    sub.add_parser(
        "status", help="say whether the cluster runs; print the kubeconfig path"
    ).set_defaults(func=cmd_status)
    li = sub.add_parser("load-image", help="import an image archive into the cluster's containerd")
    li.add_argument("archive", help="docker-archive or OCI tarball")
    li.add_argument("--name", help="import under this name (like `kind load`)")
    _timeout_scale(li)
    li.set_defaults(func=cmd_load_image)
    nd = sub.add_parser("node", help="lose a worker node or bring it back (like docker stop/start)")
    nd.add_argument("node_verb", choices=("stop", "start"))
    nd.add_argument("name", help="a worker's name (codelab-w1...)")
    _timeout_scale(nd)
    nd.set_defaults(func=cmd_node)
    _images_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; an EngineError prints one line (and its detail below), exit 1."""
    args = parser().parse_args(argv)
    try:
        code = args.func(args)
    except EngineError as exc:
        print(f"codelab-cluster: error: {exc}", file=sys.stderr)
        if exc.detail:
            print("\n".join("    " + line for line in exc.detail.splitlines()), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("codelab-cluster: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
