"""The ``local`` cluster provider: the embedded engine, as the gate's default cluster.

It reuses a cluster someone started with ``codelab-cluster up`` (and leaves it running),
or builds what is missing and starts one, which it then takes down at the end of the run.
The only module that turns the gate's Settings into engine calls: the engine takes plain
arguments (a layout, add-on names, a timeout scale) and raises EngineError, which becomes
the gate's ProviderUnavailable here.
"""

from __future__ import annotations

from pytest_codelab.engine import build, status, up, versions
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


class LocalCluster:
    """Start (or reuse) the local single-node cluster; stop it only if this run started it."""

    def __init__(self, settings: Settings, layout: Layout | None = None) -> None:
        self.settings = settings
        self.layout = layout or Layout.default()
        self.created = False

    def start(self) -> ClusterHandle:
        scale = self.settings.timeout_scale
        timeouts = Timeouts().scaled(scale)
        try:
            extras = ["velero"] if self.settings.local_velero else []
            if status.running_cluster(self.layout) is None:
                build.build(addons=extras)
                recipes.build_engine_images(timeouts=timeouts)
                up.up(self.layout, extras=extras, timeout_scale=scale)
                self.created = True
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
        )

    def stop(self) -> None:
        if self.created:
            down(self.layout, timeout_scale=self.settings.timeout_scale)
            self.created = False
