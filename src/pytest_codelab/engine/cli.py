"""``codelab-cluster``: build, start, stop and inspect the local cluster by hand."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_codelab.engine.errors import EngineError


def cmd_build(args: argparse.Namespace) -> None:
    from pytest_codelab.engine import build, images_load

    build.build(args.only or None, addons=args.with_addons)
    if not args.only:
        images_load.build_engine_images()
    if "velero" in args.with_addons:
        from pytest_codelab.engine import velero

        velero.build_images()


def cmd_up(args: argparse.Namespace) -> None:
    from pytest_codelab.engine import up

    up.up(with_addons=not args.no_addons, extras=args.with_addons)


def cmd_down(args: argparse.Namespace) -> None:
    from pytest_codelab.engine import down

    down.main_down()


def cmd_status(args: argparse.Namespace) -> int:
    from pytest_codelab.engine import status

    return status.print_status()


def cmd_load_image(args: argparse.Namespace) -> None:
    from pytest_codelab.engine import images_load

    images_load.load_archive(Path(args.archive), name=args.name)


def _with_addons(p: argparse.ArgumentParser, verb: str) -> None:
    from pytest_codelab.engine.versions import OPTIONAL_ADDONS

    p.add_argument(
        "--with",
        dest="with_addons",
        action="append",
        default=[],
        choices=OPTIONAL_ADDONS,
        help=f"{verb} an optional add-on (velero: Velero + MinIO for backup and restore)",
    )


def parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per verb."""
    p = argparse.ArgumentParser(
        prog="codelab-cluster",
        description="The embedded single-node Kubernetes of pytest-codelab.",
    )
    sub = p.add_subparsers(dest="verb", required=True)
    b = sub.add_parser("build", help="build the engine from upstream Go modules (idempotent)")
    b.add_argument("--only", nargs="*", metavar="COMPONENT", help="build only these components")
    _with_addons(b, "also build")
    b.set_defaults(func=cmd_build)
    u = sub.add_parser("up", help="start the cluster and print the kubeconfig path")
    u.add_argument("--no-addons", action="store_true", help="skip DNS, metrics, volumes, ingress")
    _with_addons(u, "also install")
    u.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop the cluster and remove everything it made").set_defaults(
        func=cmd_down
    )
    sub.add_parser(
        "status", help="say whether the cluster runs; print the kubeconfig path"
    ).set_defaults(func=cmd_status)
    li = sub.add_parser("load-image", help="import an image archive into the cluster's containerd")
    li.add_argument("archive", help="docker-archive or OCI tarball")
    li.add_argument("--name", help="import under this name (like `kind load`)")
    li.set_defaults(func=cmd_load_image)
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
