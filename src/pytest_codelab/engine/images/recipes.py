"""The recipes: every image the local cluster runs, and the engine's own images.

CodeLab's reference images (the services, PostgreSQL, Redis, LiteLLM, Locust, busybox)
are made from Debian packages and the files in the repository's images/ folder; the
engine's own images (pod sandbox, add-ons) are each one static binary from the engine's
bin folder. A recipe's contents are its cache key: changing a tag, layer or config here
rebuilds that image (and only that image).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from pytest_codelab.engine import versions
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.images.archive import Entry, directory, file, host_file
from pytest_codelab.engine.images.builder import (
    Builder,
    ImageConfig,
    Log,
    Recipe,
    build_recipe,
    env,
    stderr_log,
)
from pytest_codelab.engine.images.commands import ImageError
from pytest_codelab.engine.images.layers import (
    DEFAULT_PATH,
    BusyboxLayer,
    CaCertificatesLayer,
    ChrootLayer,
    DebianLayer,
    FilesLayer,
    Layer,
    passwd_entries,
)
from pytest_codelab.engine.paths import bin_dir
from pytest_codelab.engine.timeouts import Timeouts

SERVICE_VERSIONS = ("1.0.0", "1.1.0")
#: name -> (module file, port) of the reference CodeLab services (images/services/).
SERVICES = {
    "gateway": ("gateway.py", 8000),
    "agent-runtime": ("agent_runtime.py", 8001),
    "auth-service": ("auth_service.py", 8003),
}
SERVICE_UID = 10001  # manifests run the services with runAsUser/runAsGroup 10001
PYTHON_PACKAGES = (
    "python3",
    "python3-venv",
    "python3-psycopg2",
    "python3-redis",
    "curl",
    "procps",
    "ca-certificates",
)


def source_dir() -> Path:
    """The images/ folder (service code, entrypoint scripts): ``$CODELAB_IMAGES_DIR`` or the
    checkout's, or the copy bundled in the wheel."""
    env = os.environ.get("CODELAB_IMAGES_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for candidate in (here.parents[4] / "images", here.parents[2] / "_bundled" / "images"):
        if candidate.is_dir():
            return candidate
    return here.parents[4] / "images"


def debian_layer(
    name: str,
    packages: Sequence[str],
    *,
    essential_hooks: Sequence[str] = (),
    customize_hooks: Sequence[str] = (),
    excludes: Sequence[str] = (),
) -> DebianLayer:
    """A Debian bookworm minbase root filesystem with ``packages`` (no recommends, no docs;
    ``excludes`` are more dpkg path-exclude patterns)."""
    return DebianLayer(
        name, tuple(packages), tuple(essential_hooks), tuple(customize_hooks), tuple(excludes)
    )


def _system_user(name: str, uid: int, home: str, shell: str = "/usr/sbin/nologin") -> str:
    """An essential hook creating a system user/group with a fixed id before the packages
    that would create it with a random one (so securityContext ids are predictable)."""
    return (
        f'echo "{name}:x:{uid}:" >> "$1/etc/group"; '
        f'echo "{name}:!::" >> "$1/etc/gshadow"; '
        f'echo "{name}:x:{uid}:{uid}:{name}:{home}:{shell}" >> "$1/etc/passwd"; '
        f'echo "{name}:!:19000:0:99999:7:::" >> "$1/etc/shadow"'
    )


def python_layer() -> DebianLayer:
    """Python base: Debian python3 + psycopg2 + redis + venv + curl + procps, user 10001."""
    return debian_layer(
        "python",
        PYTHON_PACKAGES,
        essential_hooks=[
            _system_user("codelab", SERVICE_UID, "/app"),
        ],
    )


def static_base_layers() -> tuple[Layer, ...]:
    """What a single static binary needs: passwd/group (root, nonroot 65532, nobody), /tmp,
    nsswitch.conf and the Mozilla CA bundle."""
    files = FilesLayer(
        "static-base",
        tuple(
            [
                *passwd_entries([("nonroot", 65532, "/home/nonroot")]),
                directory("home/nonroot", 0o700, 65532, 65532),
                file("etc/nsswitch.conf", "hosts: files dns\n"),
                directory("var/run"),
            ]
        ),
    )
    return (CaCertificatesLayer(), files)


def static(
    name: str,
    binary: Path | str,
    entrypoint: Sequence[str] | None = None,
    *,
    tags: Sequence[str] | None = None,
    path: str | None = None,
    cmd: Sequence[str] | None = None,
    user: str = "",
    env_vars: Mapping[str, str] | None = None,
    ports: Sequence[str] = (),
    extra: Sequence[Entry] = (),
) -> Recipe:
    """An image of one static binary (distroless-like): CA bundle, passwd, /tmp, the binary.

    ``name`` names the archive and is the tag unless ``tags`` are given; the binary goes to
    ``path`` (default ``/<basename>``) and is the entrypoint unless one is given.
    """
    src = Path(binary)
    dest = path or f"/{src.name}"
    code = FilesLayer(f"{name}-binary", (host_file(dest, src, 0o755), *extra), role="layer")
    return Recipe(
        name=name.replace("/", "_").replace(":", "_"),
        tags=tuple(tags) if tags else (name,),
        layers=(*static_base_layers(), code),
        config=ImageConfig(
            entrypoint=tuple(entrypoint) if entrypoint else (dest,),
            cmd=tuple(cmd) if cmd is not None else None,
            env=env(**dict(env_vars or {})),
            user=user,
            ports=tuple(ports),
        ),
        description=f"static binary {src.name}",
    )


def busybox_recipe() -> Recipe:
    """busybox:<versions.BUSYBOX> / busybox:latest (Debian's busybox-static; see
    images/README.md)."""
    return Recipe(
        "busybox",
        (f"busybox:{versions.BUSYBOX}", "busybox:latest"),
        (BusyboxLayer(),),
        ImageConfig(cmd=("sh",)),
        "busybox-static with applet symlinks",
    )


def debian_base_recipe() -> Recipe:
    """codelab/debian-base:bookworm: minbase + ca-certificates, for ad-hoc tools."""
    return Recipe(
        "debian-base",
        ("codelab/debian-base:bookworm",),
        (debian_layer("debian-base", ["ca-certificates"]),),
        ImageConfig(cmd=("bash",)),
        "Debian bookworm minbase",
    )


def python_recipe() -> Recipe:
    """codelab/python-base:bookworm: the layer every Python service image starts from."""
    return Recipe(
        "python",
        ("codelab/python-base:bookworm",),
        (python_layer(),),
        ImageConfig(cmd=("python3",), env=env(LANG="C.UTF-8")),
        "Python base",
    )


def service_code_layer(service: str, src: Path | None = None) -> FilesLayer:
    """The code layer of one service: the shared module and the service's own module."""
    services = (src or source_dir()) / "services"
    module, _port = SERVICES[service]
    return FilesLayer(
        f"{service}-code",
        (
            directory("app", 0o755),
            host_file("app/codelab_common.py", services / "codelab_common.py", 0o644),
            host_file(f"app/{module}", services / module, 0o644),
        ),
        role="code layer",
    )


def service_recipe(service: str, version: str, src: Path | None = None) -> Recipe:
    """ghcr.io/codelab/<service>:<version>: python base + code; the version is in the env."""
    module, port = SERVICES[service]
    return Recipe(
        name=f"{service}-{version}",
        tags=(f"ghcr.io/codelab/{service}:{version}",),
        layers=(python_layer(), service_code_layer(service, src)),
        config=ImageConfig(
            entrypoint=("python3", "-u", f"/app/{module}"),
            env=env(
                LANG="C.UTF-8",
                PYTHONUNBUFFERED="1",
                PYTHONDONTWRITEBYTECODE="1",
                SERVICE_NAME=service,
                SERVICE_VERSION=version,
                PORT=str(port),
            ),
            workdir="/app",
            ports=(f"{port}/tcp",),
            user=f"{SERVICE_UID}:{SERVICE_UID}",
            labels=(
                ("org.opencontainers.image.title", service),
                ("org.opencontainers.image.version", version),
            ),
            stop_signal="SIGTERM",
        ),
        description=f"CodeLab {service} {version} (reference implementation)",
    )


def postgres_recipe(src: Path | None = None) -> Recipe:
    """postgres:15-alpine: Debian postgresql-15 behind the official image's entrypoint
    contract (POSTGRES_USER/PASSWORD/DB, PGDATA, initdb on first start, uid 999)."""
    scripts = (src or source_dir()) / "postgres"
    base = debian_layer(
        "postgres",
        ["postgresql-15"],
        essential_hooks=[_system_user("postgres", 999, "/var/lib/postgresql", "/bin/bash")],
        customize_hooks=[
            'chroot "$1" pg_dropcluster 15 main || true',
            'rm -rf "$1/etc/postgresql/15/main" "$1/var/lib/postgresql/15"',
            "sed -ri \"s!^#?(listen_addresses)\\s*=\\s*\\S+.*!\\1 = '*'!\" "
            '"$1/usr/share/postgresql/15/postgresql.conf.sample"',
            'mkdir -p "$1/var/run/postgresql" "$1/var/lib/postgresql/data" '
            '"$1/docker-entrypoint-initdb.d"',
            'chown -R 999:999 "$1/var/run/postgresql" "$1/var/lib/postgresql"',
            'chmod 3777 "$1/var/run/postgresql"; chmod 1777 "$1/var/lib/postgresql/data"',
            'sed -ri "s!^#?(jit)\\s*=\\s*\\S+.*!\\1 = off!" '
            '"$1/usr/share/postgresql/15/postgresql.conf.sample"',
        ],
        # LLVM (JIT only) is 130 MB of the 370: without llvmjit.so PostgreSQL skips JIT.
        excludes=[
            "/usr/lib/x86_64-linux-gnu/libLLVM-*",
            "/usr/lib/x86_64-linux-gnu/libz3.so*",
            "/usr/lib/postgresql/15/lib/llvmjit*",
            "/usr/lib/postgresql/15/lib/bitcode/*",
        ],
    )
    entry = FilesLayer(
        "postgres-entrypoint",
        (host_file("usr/local/bin/docker-entrypoint.sh", scripts / "docker-entrypoint.sh", 0o755),),
    )
    return Recipe(
        "postgres",
        ("postgres:15-alpine",),
        (base, entry),
        ImageConfig(
            entrypoint=("docker-entrypoint.sh",),
            cmd=("postgres",),
            env=env(
                PATH="/usr/lib/postgresql/15/bin:" + DEFAULT_PATH,
                LANG="C.UTF-8",
                PG_MAJOR="15",
                PGDATA="/var/lib/postgresql/data",
            ),
            ports=("5432/tcp",),
            stop_signal="SIGINT",
            volumes=("/var/lib/postgresql/data",),
        ),
        "Debian postgresql-15 with the official entrypoint contract",
    )


def redis_recipe(src: Path | None = None) -> Recipe:
    """redis:7-alpine: Debian redis-server 7 on 6379, /data, protected mode off, uid 999."""
    scripts = (src or source_dir()) / "redis"
    base = debian_layer(
        "redis",
        ["redis-server"],
        essential_hooks=[_system_user("redis", 999, "/var/lib/redis")],
        customize_hooks=[
            'mkdir -p "$1/data" && chown 999:999 "$1/data"',
            'rm -f "$1/etc/redis/redis.conf.dpkg-dist"',
        ],
    )
    entry = FilesLayer(
        "redis-entrypoint",
        (host_file("usr/local/bin/docker-entrypoint.sh", scripts / "docker-entrypoint.sh", 0o755),),
    )
    return Recipe(
        "redis",
        ("redis:7-alpine",),
        (base, entry),
        ImageConfig(
            entrypoint=("docker-entrypoint.sh",),
            cmd=("redis-server",),
            env=env(LANG="C.UTF-8"),
            workdir="/data",
            ports=("6379/tcp",),
            volumes=("/data",),
        ),
        "Debian redis-server 7 with the official entrypoint contract",
    )


def litellm_recipe(
    image: str = versions.LITELLM_IMAGE,
    version: str = versions.LITELLM,
    src: Path | None = None,
) -> Recipe:
    """The LiteLLM proxy: real ``litellm[proxy]`` from PyPI in a venv layer, offline (local
    cost map; models answer with ``mock_response``). Needs LITELLM_MASTER_KEY to start."""
    config = (src or source_dir()) / "litellm" / "config.yaml"
    venv = ChrootLayer(
        "litellm-venv",
        (python_layer(),),
        script=(
            "python3 -m venv /opt/litellm\n"
            f"/opt/litellm/bin/pip install -q 'litellm[proxy]=={version}'\n"
            "LITELLM_LOCAL_MODEL_COST_MAP=True "
            "/opt/litellm/bin/python -c 'import litellm.proxy.proxy_server'\n"
        ),
        capture=("opt/litellm",),
        role="venv layer",
        hint="pip install litellm[proxy], ~2 min",
    )
    conf = FilesLayer("litellm-config", (host_file("app/config.yaml", config, 0o644),))
    return Recipe(
        "litellm",
        (image,),
        (python_layer(), venv, conf),
        ImageConfig(
            entrypoint=("/opt/litellm/bin/litellm",),
            cmd=("--config", "/app/config.yaml", "--port", "4000"),
            env=env(
                PATH="/opt/litellm/bin:" + DEFAULT_PATH,
                LANG="C.UTF-8",
                PYTHONUNBUFFERED="1",
                LITELLM_LOCAL_MODEL_COST_MAP="True",
                LITELLM_TELEMETRY="False",
            ),
            workdir="/app",
            ports=("4000/tcp",),
        ),
        f"LiteLLM proxy {version} (PyPI) for offline use",
    )


def locust_recipe(image: str = versions.LOCUST_IMAGE, version: str = versions.LOCUST) -> Recipe:
    """Locust worker pods for distributed load (``--codelab-load-workers``): the locustfile
    comes from the master, so the image is only Python and ``locust`` from PyPI."""
    venv = ChrootLayer(
        "locust-venv",
        (python_layer(),),
        script=(
            "python3 -m venv /opt/locust\n"
            f"/opt/locust/bin/pip install -q 'locust=={version}'\n"
            "/opt/locust/bin/locust --version\n"
        ),
        capture=("opt/locust",),
        role="venv layer",
        hint="pip install locust, ~1 min",
    )
    return Recipe(
        "locust",
        (image,),
        (python_layer(), venv),
        ImageConfig(
            entrypoint=("/opt/locust/bin/locust",),
            env=env(PATH="/opt/locust/bin:" + DEFAULT_PATH, LANG="C.UTF-8", PYTHONUNBUFFERED="1"),
            workdir="/tmp",
            user="10001",
        ),
        f"Locust {version} (PyPI) for load worker pods",
    )


def gate_recipe(
    wheel: Path, kubectl: Path | None = None, image: str = "codelab/gate:dev"
) -> Recipe:
    """The gate itself as an image, to run it as a Job in the cluster it checks (in-cluster
    configuration, rbac/gate-job.yaml): Python, the given pytest-codelab wheel in a venv
    (its dependencies from PyPI) and, if given, a kubectl for the rerunnable commands."""
    staged = FilesLayer("gate-wheel", (host_file(f"tmp/gate/{wheel.name}", wheel, 0o644),))
    venv = ChrootLayer(
        "gate-venv",
        (python_layer(), staged),
        script=(
            "python3 -m venv /opt/gate\n"
            f"/opt/gate/bin/pip install -q /tmp/gate/{wheel.name}\n"
            "/opt/gate/bin/codelab-cluster --help >/dev/null\n"
        ),
        capture=("opt/gate",),
        role="venv layer",
        hint="pip install the pytest-codelab wheel, ~2 min",
    )
    layers: tuple[Layer, ...] = (python_layer(), venv)
    if kubectl is not None:
        layers += (
            FilesLayer("gate-kubectl", (host_file("usr/local/bin/kubectl", kubectl, 0o755),)),
        )
    return Recipe(
        "gate",
        (image,),
        layers,
        ImageConfig(
            entrypoint=("/opt/gate/bin/codelab-gate",),
            env=env(PATH="/opt/gate/bin:" + DEFAULT_PATH, LANG="C.UTF-8", PYTHONUNBUFFERED="1"),
            workdir="/tmp",
            user=str(SERVICE_UID),
        ),
        f"pytest-codelab gate from {wheel.name}",
    )


def recipe_table(src: Path | None = None, *, litellm_image: str | None = None) -> dict[str, Recipe]:
    """The recipe table: every image the local cluster runs besides the add-ons' binaries."""
    table: dict[str, Recipe] = {
        "busybox": busybox_recipe(),
        "debian-base": debian_base_recipe(),
        "python": python_recipe(),
    }
    for service in SERVICES:
        for version in SERVICE_VERSIONS:
            table[f"{service}-{version}"] = service_recipe(service, version, src)
    table["postgres"] = postgres_recipe(src)
    table["redis"] = redis_recipe(src)
    image = litellm_image or os.environ.get("CODELAB_LITELLM_IMAGE") or versions.LITELLM_IMAGE
    table["litellm"] = litellm_recipe(image, src=src)
    table["locust"] = locust_recipe()
    return table


#: Names build_all() builds by default (debian-base and python are only helpers).
DEFAULT_SET = (
    "busybox",
    *(f"{s}-{v}" for s in SERVICES for v in SERVICE_VERSIONS),
    "postgres",
    "redis",
    "litellm",
    "locust",
)
#: Group names accepted by build()/the CLI.
GROUPS = {
    "services": tuple(f"{s}-{v}" for s in SERVICES for v in SERVICE_VERSIONS),
    "data": ("postgres", "redis"),
    "all": DEFAULT_SET,
    **{s: tuple(f"{s}-{v}" for v in SERVICE_VERSIONS) for s in SERVICES},
}


def expand(names: Iterable[str], table: Mapping[str, Recipe]) -> list[str]:
    """Recipe names with groups expanded, in order, without duplicates."""
    out: list[str] = []
    for n in names:
        for m in GROUPS.get(n, (n,)):
            if m not in table:
                raise ImageError(
                    f"unknown image recipe {m!r}; known: {', '.join(table)}, "
                    f"groups: {', '.join(GROUPS)}"
                )
            if m not in out:
                out.append(m)
    return out


def build(
    name: str,
    *,
    cache: Path | None = None,
    force: bool = False,
    log: Log | None = None,
    timeouts: Timeouts | None = None,
) -> Path:
    """Build the named recipe (see :func:`recipe_table`) and return its docker-archive path."""
    table = recipe_table()
    names = expand([name], table)
    if len(names) != 1:
        raise ImageError(f"{name!r} is a group of {len(names)} images: use build_all([...])")
    return build_recipe(table[names[0]], cache=cache, force=force, log=log, timeouts=timeouts)


def build_all(
    names: Iterable[str] | None = None,
    *,
    cache: Path | None = None,
    force: bool = False,
    log: Log | None = None,
    litellm_image: str | None = None,
    timeouts: Timeouts | None = None,
) -> dict[str, Path]:
    """Build recipes (default :data:`DEFAULT_SET`; groups allowed) sharing cached layers;
    returns recipe name -> archive path."""
    table = recipe_table(litellm_image=litellm_image)
    builder = Builder(cache, log or stderr_log, force, timeouts or Timeouts())
    return {n: builder.build(table[n]) for n in expand(names or DEFAULT_SET, table)}


# --------------------------------------------------------------------------- the engine's own

#: image name -> (binary in the engine's bin folder, entrypoint): the pod sandbox and the
#: add-ons, each a static binary built from its upstream Go module.
STATIC_IMAGES = {
    versions.PAUSE_IMAGE: ("pause", ["/pause"]),
    versions.COREDNS_IMAGE: ("coredns", ["/coredns"]),
    versions.METRICS_SERVER_IMAGE: ("metrics-server", ["/metrics-server"]),
    versions.LOCAL_PATH_IMAGE: ("local-path-provisioner", ["/local-path-provisioner"]),
    versions.TRAEFIK_IMAGE: ("traefik", ["/traefik"]),
    versions.KUBE_NETWORK_POLICIES_IMAGE: ("kube-network-policies", ["/kube-network-policies"]),
}


def build_engine_images(
    only_pause: bool = False, timeouts: Timeouts | None = None
) -> dict[str, Path]:
    """Build (or find cached) archives of the pod sandbox image and the add-ons' images."""
    archives: dict[str, Path] = {}
    for name, (binary, entrypoint) in STATIC_IMAGES.items():
        if only_pause and name != versions.PAUSE_IMAGE:
            continue
        path = bin_dir() / binary
        if not path.exists():
            raise EngineError(f"{path} missing: run `codelab-cluster build` first")
        archives[name] = build_recipe(static(name, path, entrypoint), timeouts=timeouts)
    if not only_pause:
        archives[versions.BUSYBOX_IMAGE] = build("busybox", timeouts=timeouts)
    return archives
