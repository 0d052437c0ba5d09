"""Label selectors in the string form the list calls take."""

from __future__ import annotations

from kubernetes import client

from pytest_codelab.k8s.stack import label_selector


def test_label_selector_string() -> None:
    selector = client.V1LabelSelector.from_dict(
        {
            "matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["api", "web"]},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        }
    )
    assert label_selector(selector) == "a=1,b=2,tier in (api,web),!legacy"
