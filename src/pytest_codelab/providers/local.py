"""The ``local`` cluster provider: the embedded engine, as the gate's default cluster.

It reuses a cluster someone started with ``codelab-cluster up`` (and leaves it running),
or builds what is missing and starts one, which it then takes down at the end of the run.
The only module that turns the gate's Settings into engine calls: the engine takes plain
arguments (a layout, add-on names, a timeout scale) and raises EngineError, which becomes
the gate's ProviderUnavailable here.
"""

from __future__ import annotations

from collections.abc import Callable

from pytest_codelab.engine import build, certmanager, nodes, status, up, versions
from pytest_codelab.engine.addons import INGRESS_GAPS
from pytest_codelab.engine.down import down
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.images import loading, recipes
from pytest_codelab.engine.layout import Layout
from pytest_codelab.engine.progress import step
from pytest_codelab.engine.timeouts import Timeouts
from pytest_codelab.errors import ProviderUnavailable
from pytest_codelab.providers.base import ClusterHandle
from pytest_codelab.settings import Settings


def local_extras(settings: Settings) -> list[str]:
    """The optional add-ons a run asks for: --codelab-local-addons, plus velero for
    --codelab-local-velero (kept as its shorthand)."""
    wanted = set(settings.local_addons) | ({"velero"} if settings.local_velero else set())
    return [name for name in versions.OPTIONAL_ADDONS if name in wanted]


class LocalCluster:
    """Start (or reuse) the local cluster (a control plane and --codelab-local-workers
    workers); stop it only if this run started it. Lose and bring back a worker node."""

    def __init__(self, settings: Settings, layout: Layout | None = None) -> None:
        self.settings = settings
        self.layout = layout or Layout.default()
        self.created = False

    def start(self) -> ClusterHandle:
        scale = self.settings.timeout_scale
        timeouts = Timeouts().scaled(scale)
        try:
            extras = local_extras(self.settings)
            running = status.running_cluster(self.layout)
            if running is None:
                build.build(addons=extras)
                recipes.build_engine_images(timeouts=timeouts)
                up.up(
                    self.layout,
                    extras=extras,
                    timeout_scale=scale,
                    workers=self.settings.local_workers,
                )
                self.created = True
            elif running.workers != self.settings.local_workers:
                print(
                    f"[codelab] reusing the running local cluster with {running.workers} "
                    f"workers (--codelab-local-workers={self.settings.local_workers} applies "
                    "to a cluster the gate starts)",
                    flush=True,
                )
            elif extras:  # a cluster started by hand: add what this run asks for
                build.build([c.name for c in versions.COMPONENTS if c.addon in extras])
                up.install_extras(self.layout, extras, timeout_scale=scale)
            with step("CodeLab reference images"):
                loading.load_codelab_images(self.layout, timeouts)
        except EngineError as exc:
            detail = f"\n{exc.detail}" if exc.detail else ""
            raise ProviderUnavailable(f"local cluster: {exc}{detail}") from None
        return ClusterHandle(
            kubeconfig=self.layout.kubeconfig,
            context="codelab",
            ingress_url=self.layout.ingress_url,
            name="local",
            created=self.created,
            ingress_gaps=dict(INGRESS_GAPS),
            load_image=versions.LOCUST_IMAGE,
            issuer_root_proxy=(
                certmanager.NAMESPACE,
                certmanager.ROOTS_SERVICE,
                certmanager.ROOTS_PATH,
            ),
        )

    def stop_node(self, name: str) -> None:
        """Lose worker ``name`` (kubelet, containerd, kube-proxy and its pods killed, its
        link down), as ``docker stop`` of a kind node."""
        self._node(nodes.stop_node, name)

    def start_node(self, name: str) -> None:
        """Bring worker ``name`` back and Ready."""
        self._node(nodes.start_node, name)

    def worker_names(self) -> list[str]:
        """The running cluster's worker nodes."""
        try:
            return nodes.worker_names(self.layout)
        except EngineError as exc:
            raise ProviderUnavailable(f"local cluster: {exc}") from None

    def _node(self, action: Callable[[Layout, str, Timeouts], None], name: str) -> None:
        try:
            action(self.layout, name, Timeouts().scaled(self.settings.timeout_scale))
        except EngineError as exc:
            detail = f"\n{exc.detail}" if exc.detail else ""
            raise ProviderUnavailable(f"local cluster: {exc}{detail}") from None

    def stop(self) -> None:
        if self.created:
            down(self.layout, timeout_scale=self.settings.timeout_scale)
            self.created = False
