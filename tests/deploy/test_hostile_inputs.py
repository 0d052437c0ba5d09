"""Hostile input: malformed manifests and values files, generated from the valid ones.

The property: whatever the operator's files hold, the loader (``load_manifests``,
``load_values``) and the renderer (``render`` over the manifests, then the fit of a deployed
stack) either work or raise the gate's own error kind (:class:`GateError`: ManifestError,
ValuesError) with one line naming the file; never a traceback of another kind. Cases are
mutations of the bundled manifests and of the guide's values-prod.yaml: keys dropped, values
swapped for other types (null, numbers, strings, huge strings, lists of scalars, mappings),
documents that are not mappings. The README states the number of cases each property tries
(:data:`EXAMPLES`).
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from pytest_codelab.deploy.fit import apply_fit, fit_for
from pytest_codelab.deploy.manifests import RenderWarning, load_manifests, render
from pytest_codelab.deploy.profiles import load_values
from pytest_codelab.deploy.values import Values
from pytest_codelab.errors import GateError
from pytest_codelab.resources import bundled_path

#: Generated cases per property (stated in the README).
EXAMPLES = 200
CASES = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases each run: a failure is reproducible, CI stays stable
    # Reported as found, unshrunk: shrinking takes minutes at tens of ms per case.
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Values that replace a node: every YAML type, wrong-sized ones included.
HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.just("x" * 20_000),
    st.lists(st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=4),
    st.dictionaries(st.text(max_size=6), st.one_of(st.integers(), st.text(max_size=6)), max_size=3),
)


def _manifest_files() -> dict[str, list[Any]]:
    """The bundled manifests as YAML documents, per file name."""
    folder = bundled_path("manifests")
    return {
        path.name: [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        for path in sorted(folder.glob("*.yaml"))
    }


MANIFESTS = _manifest_files()
#: The bundled files as written, for those a case leaves alone.
TEXTS = {p.name: p.read_text() for p in bundled_path("manifests").glob("*.yaml")}
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
VALUES = yaml.safe_load((bundled_path("profiles") / "prod.yaml").read_text())
PROD = load_values(bundled_path("profiles") / "prod.yaml")


def _mutate(data: st.DataObject, root: Any) -> Any:
    """``root`` with one node deleted or replaced: a random walk from the top picks it."""
    if not isinstance(root, (dict, list)) or not root or data.draw(st.integers(0, 4)) == 0:
        return data.draw(HOSTILE)
    key = data.draw(
        st.sampled_from(list(root.keys()) if isinstance(root, dict) else range(len(root)))
    )
    if data.draw(st.booleans()):
        root[key] = _mutate(data, root[key])
    elif isinstance(root, dict) and data.draw(st.booleans()):
        del root[key]
    else:
        root[key] = data.draw(HOSTILE)
    return root


def _mutated(data: st.DataObject, docs: list[Any]) -> list[Any]:
    """A copy of ``docs`` with one to three mutations (a document may become a scalar)."""
    docs = copy.deepcopy(docs)
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(docs) - 1))
        docs[index] = _mutate(data, docs[index])
    return docs


def _one_line_naming(exc: GateError, name: str) -> None:
    text = str(exc)
    event(f"rejected: {type(exc).__name__}")
    assert "\n" not in text and text.strip() == text, text
    assert name in text, f"{text!r} does not name {name}"


def _render_and_fit(folder: Path, values: Values | None) -> None:
    objects = load_manifests(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RenderWarning)
        rendered = render(
            objects,
            namespace="codelab",
            values=values,
            image_registry="registry.example.com",
            image_tag="9.9",
            ingress_host="h.example.com",
            ingress_class="nginx",
            ingress_namespace="ingress",
        )
    fit = fit_for("small")
    assert fit is not None
    apply_fit(rendered, fit)


@CASES
@given(st.data())
def test_malformed_manifests_raise_only_one_line_gate_errors(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(MANIFESTS)))
    docs = _mutated(data, MANIFESTS[name])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for file, text in TEXTS.items():
            (folder / file).write_text(text)
        (folder / name).write_text(yaml.dump_all(docs, Dumper=_DUMPER, sort_keys=False))
        try:
            _render_and_fit(folder, PROD)
            event("accepted")
        except GateError as exc:
            _one_line_naming(exc, name)


@CASES
@given(st.data())
def test_malformed_values_files_raise_only_one_line_gate_errors(data: st.DataObject) -> None:
    doc = _mutated(data, [VALUES])[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "values.yaml"
        path.write_text(yaml.dump(doc, Dumper=_DUMPER, sort_keys=False))
        try:
            values = load_values(path)
            _render_and_fit(bundled_path("manifests"), values)
            event("accepted")
        except GateError as exc:
            _one_line_naming(exc, str(path))
