"""Every pinned version of the local engine, in one place.

The engine is built from upstream Go modules; changing a version here is the only
edit needed to move a component (the build stamps notice and rebuild it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

KUBERNETES = "v1.37.2"
#: The official Python client's major version tracks the Kubernetes minor.
PYTHON_CLIENT_MAJOR = 37
ETCD = "v3.6.16"
CONTAINERD = "v2.2.9"
RUNC = "v1.3.6"
CNI_PLUGINS = "v1.9.1"
COREDNS = "v1.14.7"
METRICS_SERVER = "v0.9.0"
LOCAL_PATH_PROVISIONER = "v0.0.30"
TRAEFIK = "v3.6.12"
#: The NetworkPolicy enforcer kind ships (nftables + nfqueue, one per node).
KUBE_NETWORK_POLICIES = "v0.8.0"
#: Optional add-on (``--with velero``): backup and restore, MinIO as its S3 store.
VELERO = "v1.18.3"
VELERO_PLUGIN_AWS = "v1.14.3"
MINIO = "v0.0.0-20260212201848-7aac2a2c5b7c"
#: Optional add-on (``--with cert-manager``): cert-manager issuing codelab-tls through ACME
#: HTTP-01 from Pebble, Let's Encrypt's own ACME test server. v1.21.1: the newest release
#: whose binaries' main packages (nested modules the proxy does not serve) are in
#: patches/cert-manager-binaries.patch, taken verbatim from that tag.
CERT_MANAGER = "v1.21.1"
PEBBLE = "v2.10.3"
#: Optional add-on (``--with vpa``): the Vertical Pod Autoscaler (recommender, updater,
#: admission controller).
VPA = "v1.8.1"
#: PyPI releases in CodeLab's images: LiteLLM's proxy (the version of the tag the bundled
#: manifests use, manifests/20-llm-proxy.yaml) and Locust (the load worker pods; it must
#: match the Locust the gate runs as their master).
LITELLM = "1.80.11"
LOCUST = "2.47.0"
BUSYBOX = "1.36"

#: Image names the add-ons run as; built locally and imported, never pulled.
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
COREDNS_IMAGE = f"registry.k8s.io/coredns/coredns:{COREDNS}"
METRICS_SERVER_IMAGE = f"registry.k8s.io/metrics-server/metrics-server:{METRICS_SERVER}"
LOCAL_PATH_IMAGE = f"docker.io/rancher/local-path-provisioner:{LOCAL_PATH_PROVISIONER}"
TRAEFIK_IMAGE = f"docker.io/library/traefik:{TRAEFIK}"
BUSYBOX_IMAGE = f"docker.io/library/busybox:{BUSYBOX}"
KUBE_NETWORK_POLICIES_IMAGE = (
    f"registry.k8s.io/networking/kube-network-policies:{KUBE_NETWORK_POLICIES}"
)
VELERO_IMAGE = f"docker.io/velero/velero:{VELERO}"
VELERO_PLUGIN_AWS_IMAGE = f"docker.io/velero/velero-plugin-for-aws:{VELERO_PLUGIN_AWS}"
MINIO_IMAGE = f"docker.io/minio/minio:{MINIO}"
CERT_MANAGER_CONTROLLER_IMAGE = f"quay.io/jetstack/cert-manager-controller:{CERT_MANAGER}"
CERT_MANAGER_WEBHOOK_IMAGE = f"quay.io/jetstack/cert-manager-webhook:{CERT_MANAGER}"
CERT_MANAGER_CAINJECTOR_IMAGE = f"quay.io/jetstack/cert-manager-cainjector:{CERT_MANAGER}"
CERT_MANAGER_ACMESOLVER_IMAGE = f"quay.io/jetstack/cert-manager-acmesolver:{CERT_MANAGER}"
PEBBLE_IMAGE = f"ghcr.io/letsencrypt/pebble:{PEBBLE}"
VPA_RECOMMENDER_IMAGE = f"registry.k8s.io/autoscaling/vpa-recommender:{VPA.lstrip('v')}"
VPA_UPDATER_IMAGE = f"registry.k8s.io/autoscaling/vpa-updater:{VPA.lstrip('v')}"
VPA_ADMISSION_IMAGE = f"registry.k8s.io/autoscaling/vpa-admission-controller:{VPA.lstrip('v')}"
#: CodeLab's images built from PyPI releases (images/README.md).
LITELLM_IMAGE = f"ghcr.io/berriai/litellm:v{LITELLM}-stable.1"
LOCUST_IMAGE = f"codelab/locust:{LOCUST}"

#: Debian packages the engine needs on the host (bookworm names).
HOST_PACKAGES = (
    "iptables",
    "conntrack",
    "iproute2",
    "util-linux",
    "libseccomp-dev",
    "pkg-config",
    "mmdebstrap",
    "busybox-static",
    "ca-certificates",
    "patch",
)


@dataclass(frozen=True)
class GoComponent:
    """One upstream Go build: which module, which packages, how.

    ``wrapper`` builds from a generated module that requires the upstream one, for
    modules whose own go.mod carries replace lines (Kubernetes, etcd, Traefik).
    ``patches`` (file names under ``engine/patches``) are applied to a copy of the module
    that the wrapper replaces it with: small upstream fixes the pinned release lacks.
    """

    name: str
    module: str
    version: str
    packages: tuple[str, ...]
    wrapper: bool = False
    cgo: bool = False
    tags: tuple[str, ...] = ()
    extra_requires: tuple[str, ...] = field(default=())
    patches: tuple[str, ...] = ()
    #: Optional add-on this component belongs to: built only when it is asked for.
    addon: str | None = None
    #: "module version" requirements of the wrapper beyond the upstream go.mod's, for a
    #: dependency version that the module proxy here does not serve.
    pins: tuple[str, ...] = ()
    #: The binary's name when its package's last path element is not (``.../cmd``).
    binary: str | None = None


_K8S_CMDS = tuple(
    f"k8s.io/kubernetes/cmd/{c}"
    for c in (
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
        "kubectl",
    )
)

COMPONENTS: tuple[GoComponent, ...] = (
    GoComponent("kubernetes", "k8s.io/kubernetes", KUBERNETES, _K8S_CMDS, wrapper=True),
    GoComponent(
        "etcd",
        "go.etcd.io/etcd/server/v3",
        ETCD,
        (".",),
        wrapper=True,
        extra_requires=(
            "go.etcd.io/etcd/api/v3",
            "go.etcd.io/etcd/client/pkg/v3",
            "go.etcd.io/etcd/client/v3",
            "go.etcd.io/etcd/pkg/v3",
        ),
    ),
    GoComponent(
        "containerd",
        "github.com/containerd/containerd/v2",
        CONTAINERD,
        tuple(
            f"github.com/containerd/containerd/v2/cmd/{c}"
            for c in ("containerd", "containerd-shim-runc-v2", "ctr")
        ),
        tags=("no_btrfs", "no_devmapper", "no_zfs"),
    ),
    GoComponent(
        "runc",
        "github.com/opencontainers/runc",
        RUNC,
        ("github.com/opencontainers/runc",),
        cgo=True,
        tags=("seccomp",),
    ),
    GoComponent(
        "cni-plugins",
        "github.com/containernetworking/plugins",
        CNI_PLUGINS,
        tuple(
            f"github.com/containernetworking/plugins/plugins/{p}"
            for p in ("main/bridge", "main/loopback", "ipam/host-local", "meta/portmap")
        ),
    ),
    GoComponent("coredns", "github.com/coredns/coredns", COREDNS, ("github.com/coredns/coredns",)),
    GoComponent(
        "metrics-server",
        "sigs.k8s.io/metrics-server",
        METRICS_SERVER,
        ("sigs.k8s.io/metrics-server/cmd/metrics-server",),
    ),
    GoComponent(
        "local-path-provisioner",
        "github.com/rancher/local-path-provisioner",
        LOCAL_PATH_PROVISIONER,
        ("github.com/rancher/local-path-provisioner",),
    ),
    GoComponent(
        "traefik",
        "github.com/traefik/traefik/v3",
        TRAEFIK,
        ("github.com/traefik/traefik/v3/cmd/traefik",),
        wrapper=True,
        # What 3.7 fixed and cannot be built here: terminating pods out of rotation at
        # once, and proxy-body-size enforced, with ingress-nginx's 1m default, as
        # ingress-nginx does. In this order: the default reuses the annotation's code.
        patches=(
            "traefik-ingress-nginx-fenced.patch",
            "traefik-ingress-nginx-proxy-body-size.patch",
            "traefik-ingress-nginx-default-proxy-body-size.patch",
        ),
    ),
    GoComponent(
        "kube-network-policies",
        "sigs.k8s.io/kube-network-policies",
        KUBE_NETWORK_POLICIES,
        ("sigs.k8s.io/kube-network-policies/cmd",),
        wrapper=True,
        binary="kube-network-policies",
        # Queues packets through the xtables NFQUEUE target: kernels built without the
        # nftables queue expression (CONFIG_NFT_QUEUE, this one) refuse upstream's rules.
        patches=("kube-network-policies-xt-nfqueue.patch",),
    ),
    GoComponent(
        "velero",
        "github.com/vmware-tanzu/velero",
        VELERO,
        tuple(
            f"github.com/vmware-tanzu/velero/cmd/{c}"
            for c in ("velero", "velero-restore-helper", "velero-helper")
        ),
        wrapper=True,
        addon="velero",
        # v1.18.3 requires k8s.io/cli-runtime v0.33.12, which the module proxy refuses.
        pins=("k8s.io/cli-runtime v0.33.13",),
        # The pod-volume exposer must honour the node-agent's subPathExpr (each node's
        # kubelet has its own folder under one host folder).
        patches=("velero-host-pods-subpath.patch",),
    ),
    GoComponent(
        "velero-plugin-for-aws",
        "github.com/vmware-tanzu/velero-plugin-for-aws",
        VELERO_PLUGIN_AWS,
        (
            "github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws",
            "github.com/vmware-tanzu/velero-plugin-for-aws/hack/cp-plugin",
        ),
        addon="velero",
    ),
    GoComponent(
        "minio", "github.com/minio/minio", MINIO, ("github.com/minio/minio",), addon="velero"
    ),
    GoComponent(
        "cert-manager",
        "github.com/cert-manager/cert-manager",
        CERT_MANAGER,
        tuple(
            f"github.com/cert-manager/cert-manager/{c}-binary"
            for c in ("controller", "webhook", "cainjector", "acmesolver")
        ),
        wrapper=True,
        addon="cert-manager",
        # The binaries' main packages, verbatim from the tag (nested modules the proxy does
        # not serve); Venafi's issuer left out: its client module is not served either.
        patches=("cert-manager-binaries.patch", "cert-manager-no-venafi.patch"),
    ),
    GoComponent(
        "pebble",
        "github.com/letsencrypt/pebble/v2",
        PEBBLE,
        tuple(
            f"github.com/letsencrypt/pebble/v2/cmd/{c}" for c in ("pebble", "pebble-challtestsrv")
        ),
        addon="cert-manager",
    ),
    GoComponent(
        "vpa",
        "k8s.io/autoscaler/vertical-pod-autoscaler",
        VPA,
        tuple(
            f"k8s.io/autoscaler/vertical-pod-autoscaler/pkg/{c}"
            for c in ("recommender", "updater", "admission-controller")
        ),
        wrapper=True,  # its go.mod carries exclude lines
        addon="vpa",
    ),
)

#: Optional add-ons: ``codelab-cluster build|up --with NAME``.
OPTIONAL_ADDONS = ("velero", "cert-manager", "vpa")
