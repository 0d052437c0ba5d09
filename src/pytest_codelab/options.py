"""The one table of the gate's options.

Every option exists as a command-line flag, a ``CODELAB_*`` environment variable and a
``codelab_*`` ini key, all derived from its name, so they cannot drift apart. Values are
parsed and validated by :mod:`pytest_codelab.settings`, not by argparse, so that a bad
value gives the same one-line message whichever way it was given.

Help texts follow one rule: what the option is, its values, then ``Default: ...``; the
env var and ini key are appended automatically.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pytest


class Kind(StrEnum):
    """How an option's raw text is parsed."""

    STR = "str"
    PATH = "path"
    BOOL = "bool"
    FLOAT = "float"
    INT = "int"
    CHOICE = "choice"
    LIST = "list"  # comma-separated names, parsed into a tuple


@dataclass(frozen=True)
class OptionSpec:
    """One option: its name fixes the flag, dest, env var and ini key."""

    name: str
    kind: Kind
    help: str
    default: str | None = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    #: The smallest value of an INT option.
    minimum: int = 0

    @property
    def flag(self) -> str:
        return "--codelab-" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        return "codelab_" + self.name

    @property
    def env(self) -> str:
        return "CODELAB_" + self.name.upper()

    @property
    def ini(self) -> str:
        return "codelab_" + self.name

    @property
    def help_text(self) -> str:
        return f"{self.help} Env: {self.env}. Ini: {self.ini}."

    @property
    def display_metavar(self) -> str:
        if self.metavar:
            return self.metavar
        if self.choices:
            return "{" + ",".join(self.choices) + "}"
        return self.name.upper()


CLUSTER_CHOICES = ("existing", "local")
PROFILE_CHOICES = ("prod", "small")
#: The engine's optional add-ons (engine/versions.py OPTIONAL_ADDONS; a test keeps them equal).
LOCAL_ADDON_CHOICES = ("velero", "cert-manager", "vpa")

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "cluster",
        Kind.CHOICE,
        "Cluster to test: existing (a kubeconfig context) or local (the embedded "
        "cluster: a control plane and --codelab-local-workers workers). Default: none, cluster "
        "suites skip.",
        choices=CLUSTER_CHOICES,
    ),
    OptionSpec(
        "kubeconfig",
        Kind.PATH,
        "Kubeconfig file of the existing cluster. Default: $KUBECONFIG, else ~/.kube/config.",
        default="~/.kube/config",
        metavar="FILE",
    ),
    OptionSpec(
        "context",
        Kind.STR,
        "Kubeconfig context to use. Default: the kubeconfig's current context.",
    ),
    OptionSpec(
        "namespace",
        Kind.STR,
        "Namespace where CodeLab already runs; nothing is deployed there, only its "
        "readiness is checked. Default: none, the stack is deployed into an ephemeral "
        "namespace per worker.",
    ),
    OptionSpec(
        "keep_namespace",
        Kind.BOOL,
        "Keep the ephemeral namespaces after the run, for debugging; the command that "
        "deletes them is printed. Default: false.",
        default="false",
    ),
    OptionSpec(
        "manifests",
        Kind.PATH,
        "Folder of CodeLab manifests to deploy and check. Default: the bundled manifests.",
        metavar="DIR",
    ),
    OptionSpec(
        "profile",
        Kind.CHOICE,
        "Fit of the stack the gate deploys: small (lowers the requests, limits, replicas, "
        "HPA bounds and volume sizes the manifests have, to fit one node; adds nothing) or "
        "prod (none: deployed as rendered). The offline checks and the guide comparison "
        "always judge the unfitted manifests. Default: small.",
        default="small",
        choices=PROFILE_CHOICES,
    ),
    OptionSpec(
        "values",
        Kind.PATH,
        "Values file (the schema of the guide's values-prod.yaml) rendered over the "
        "manifests like helm install -f: only what it states changes them. Default: none, "
        "the manifests as written.",
        metavar="FILE",
    ),
    OptionSpec(
        "expect",
        Kind.PATH,
        "Expected-values file: what the deployment must have (a values file, plus an "
        "expect: section merged over the guide's for probes, Services, Ingress paths and "
        "the like), compared offline and live. Default: the guide's (values-prod.yaml and "
        "manifests/expected/guide.yaml).",
        metavar="FILE",
    ),
    OptionSpec(
        "image_registry",
        Kind.STR,
        "Registry that replaces the registry of the CodeLab images. Default: none, "
        "images as in the manifests.",
        metavar="REGISTRY",
    ),
    OptionSpec(
        "image_tag",
        Kind.STR,
        "Tag that replaces the tag of the CodeLab images. Default: none, tags as in the manifests.",
        metavar="TAG",
    ),
    OptionSpec(
        "ingress_url",
        Kind.STR,
        "Base URL where the cluster's ingress answers. Default: given by the cluster "
        "provider, none for an existing cluster.",
        metavar="URL",
    ),
    OptionSpec(
        "ingress_host",
        Kind.STR,
        "Host name of the CodeLab Ingress; a stack the gate deploys serves "
        "<namespace>.<HOST>, one per namespace. Default: codelab.example.com.",
        default="codelab.example.com",
        metavar="HOST",
    ),
    OptionSpec(
        "ingress_class",
        Kind.STR,
        "IngressClass of the CodeLab Ingress. Default: nginx.",
        default="nginx",
        metavar="CLASS",
    ),
    OptionSpec(
        "ca_file",
        Kind.PATH,
        "PEM file of CA certificates (roots or intermediates, several allowed) trusted for "
        "HTTPS to CodeLab, besides the system CAs and the issuer root in the TLS Secret's "
        "ca.crt; verification is never turned off. Default: none.",
        metavar="FILE",
    ),
    OptionSpec(
        "report_dir",
        Kind.PATH,
        "Folder for the gate report (HTML, JSON, JUnit XML), load-test results and the "
        "diagnostics of failed tests. Default: codelab-report.",
        default="codelab-report",
        metavar="DIR",
    ),
    OptionSpec(
        "allow_disruptive",
        Kind.BOOL,
        "Allow disruptive tests in a namespace the gate did not create. Default: false, "
        "they run only in ephemeral namespaces.",
        default="false",
    ),
    OptionSpec(
        "timeout_scale",
        Kind.FLOAT,
        "Factor applied to every timeout, for slow clusters; greater than 0. Default: 1.0.",
        default="1.0",
        metavar="FACTOR",
    ),
    OptionSpec(
        "local_velero",
        Kind.BOOL,
        "With --codelab-cluster=local: install Velero and MinIO, so the backup and restore "
        "suite runs (their first build takes about 20 minutes). Default: false.",
        default="false",
    ),
    OptionSpec(
        "local_workers",
        Kind.INT,
        "With --codelab-cluster=local: worker nodes beside the (tainted) control plane, "
        "each with its own kubelet, containerd and zone; 1 or more. A running cluster "
        "with another count is reused as it is. Default: 3, as the guide asks.",
        default="3",
        metavar="N",
        minimum=1,
    ),
    OptionSpec(
        "local_addons",
        Kind.LIST,
        "With --codelab-cluster=local: optional add-ons to install, separated by commas: "
        "cert-manager (cert-manager + Pebble, so codelab-tls is issued over ACME and the "
        "TLS suite checks the issuance), vpa (the Vertical Pod Autoscaler), velero (as "
        "--codelab-local-velero). Default: none.",
        choices=LOCAL_ADDON_CHOICES,
        metavar="ADDON[,ADDON...]",
    ),
    OptionSpec(
        "load_workers",
        Kind.INT,
        "Locust worker pods of the load tests, in the test namespace; 0 or more. "
        "Default: 0, load runs in the gate's process.",
        default="0",
        metavar="N",
    ),
    OptionSpec(
        "load_image",
        Kind.STR,
        "Image of the Locust worker pods, pulled by the cluster. Default: the cluster's "
        "own (the local cluster builds and loads one with the gate's Locust); none on "
        "other clusters.",
        metavar="IMAGE",
    ),
    OptionSpec(
        "load_master_host",
        Kind.STR,
        "Address at which worker pods reach the gate's Locust master. Default: this "
        "host's address on the route to the ingress.",
        metavar="HOST",
    ),
    OptionSpec(
        "offline",
        Kind.BOOL,
        "Offline run: only the checks that need no cluster run, cluster tests are deselected "
        "and the report names the promises they check as not checked; not with "
        "--codelab-cluster. Default: false (codelab-gate then needs --codelab-cluster).",
        default="false",
    ),
    OptionSpec(
        "require_all",
        Kind.BOOL,
        "Every promise of the deployment guide must be checked: one not checked (its tests "
        "skipped, deselected or absent) and not waived fails the run. Default: false, the "
        "verdict is then incomplete.",
        default="false",
    ),
    OptionSpec(
        "waive",
        Kind.LIST,
        "Promises of the deployment guide the operator accepts not checking, as ids "
        "separated by commas (the ids are in the report); shown as waived, not as not "
        "checked. Default: none.",
        metavar="ID[,ID...]",
    ),
)

BY_NAME: dict[str, OptionSpec] = {spec.name: spec for spec in OPTIONS}
#: Why a cluster test skips when no cluster was asked for.
NO_CLUSTER = (
    f"no cluster: pass {BY_NAME['cluster'].flag}={'|'.join(CLUSTER_CHOICES)} "
    f"(or {BY_NAME['cluster'].env})"
)


def register(parser: pytest.Parser) -> None:
    """Add every option as a flag (in the ``codelab`` group) and an ini key."""
    group = parser.getgroup("codelab", "CodeLab conformance gate")
    for spec in OPTIONS:
        if spec.kind is Kind.BOOL:
            group.addoption(
                spec.flag, action="store_true", default=None, dest=spec.dest, help=spec.help_text
            )
        else:
            group.addoption(
                spec.flag,
                action="store",
                default=None,
                dest=spec.dest,
                metavar=spec.display_metavar,
                help=spec.help_text,
            )
        parser.addini(spec.ini, spec.help_text, type="string", default="")


def markdown_table() -> str:
    """The options as the Markdown table shown in README.md."""
    rows = ["| flag | env | ini | meaning |", "|---|---|---|---|"]
    for spec in OPTIONS:
        flag = spec.flag if spec.kind is Kind.BOOL else f"{spec.flag} {spec.display_metavar}"
        rows.append(f"| `{flag}` | `{spec.env}` | `{spec.ini}` | {spec.help} |")
    return "\n".join(rows)


if __name__ == "__main__":  # regenerate README.md's table: python -m pytest_codelab.options
    print(markdown_table())
