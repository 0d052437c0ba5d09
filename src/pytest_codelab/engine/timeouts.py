"""Every deadline of the engine, as base seconds scaled by one factor.

The engine runs on machines of very different speed (a laptop, a two-core CI runner that
is also building images). Instead of literal seconds spread over the modules, each wait
names its base value here; ``Timeouts().scaled(f)`` multiplies them all, the way the gate's
``--codelab-timeout-scale`` scales the gate's own deadlines. ``codelab-cluster`` takes
``--timeout-scale``; the local provider passes the gate's scale.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Timeouts:
    """Base deadline in seconds per kind of engine wait; ``scaled`` multiplies them all."""

    # up: each component's readiness
    #: etcd, containerd, controller-manager, scheduler and kube-proxy answer their probes.
    component: float = 30.0
    #: The API server's /readyz (it waits for etcd and its own post-start hooks).
    apiserver: float = 60.0
    #: The node is Ready and the default service account exists.
    node: float = 60.0
    #: One HTTP request of a readiness probe.
    probe: float = 2.0

    # add-ons, through the engine's kubectl
    #: One kubectl call (apply, get, delete).
    kubectl: float = 120.0
    #: Each add-on's ready condition (``kubectl wait``).
    addon_ready: float = 120.0
    #: Each kubectl call that gathers what a stuck add-on looks like.
    diagnose: float = 20.0
    #: How much longer than kubectl's own ``--timeout`` the engine lets kubectl run.
    slack: float = 15.0

    # the velero add-on
    #: MinIO, the Velero server and node-agent rolled out; the storage location Available.
    velero_ready: float = 300.0
    #: The velero binary printing its CRDs; the CRDs Established.
    velero_crds: float = 60.0
    #: One server-side apply of the add-on's objects.
    velero_apply: float = 180.0
    #: Reading the credentials of an earlier install.
    velero_secret: float = 30.0
    #: Uninstall: the namespace (MinIO's data with it) and the CRDs deleted.
    velero_delete: float = 180.0

    # the cert-manager and vpa add-ons
    #: Their Deployments rolled out; the ClusterIssuer Ready; the CRDs Established.
    extra_ready: float = 300.0
    #: One server-side apply of an add-on's objects (the webhook may still be starting).
    extra_apply: float = 180.0

    # down
    #: kubelet, kube-proxy, scheduler and controller-manager: SIGTERM until SIGKILL.
    stop_grace: float = 5.0
    #: The rest of the engine's processes (their state is deleted anyway).
    engine_stop_grace: float = 0.5
    #: SIGKILL until the processes are gone.
    kill_wait: float = 5.0
    #: Listing containerd's containers while tearing down.
    ctr_list: float = 30.0
    #: Removing containerd's tasks and containers while tearing down.
    ctr_remove: float = 60.0

    # images
    #: mmdebstrap making one Debian root filesystem.
    debootstrap: float = 1800.0
    #: The build script of one chroot layer (e.g. pip installing LiteLLM).
    chroot_script: float = 3600.0
    #: pip's network timeout inside a chroot layer (``PIP_DEFAULT_TIMEOUT``).
    pip_socket: float = 180.0
    #: ``apt-get update`` or ``apt-get download`` of one .deb.
    apt: float = 600.0
    #: ``apt-get install`` of a missing host tool.
    apt_install: float = 900.0
    #: ``ctr images import`` of one archive.
    image_import: float = 900.0
    #: ``ctr images tag`` of one imported image.
    image_tag: float = 120.0

    def scaled(self, factor: float) -> Timeouts:
        """Every deadline multiplied by ``factor`` (greater than 0)."""
        if not factor > 0:
            raise ValueError(f"timeout scale must be greater than 0, not {factor}")
        return Timeouts(**{f.name: getattr(self, f.name) * factor for f in fields(self)})


def seconds_flag(seconds: float) -> str:
    """A deadline as a Go duration flag value (``--timeout=120s``), whole seconds, at least 1."""
    return f"{max(1, round(seconds))}s"
