"""``codelab-cluster``: one command line for the cluster and the images."""

from __future__ import annotations

import pytest

from pytest_codelab.engine import cli


@pytest.mark.parametrize(
    "argv",
    [
        ["build"],
        ["up"],
        ["down"],
        ["load-image", "x.tar"],
        ["images", "build"],
        ["images", "load", "x.tar", "--address", "/run/c.sock"],
    ],
)
def test_timeout_scale_defaults_to_one(argv: list[str]) -> None:
    assert cli.parser().parse_args(argv).timeout_scale == 1.0
    assert cli.parser().parse_args([*argv, "--timeout-scale", "2.5"]).timeout_scale == 2.5


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "inf"])
def test_timeout_scale_must_be_a_positive_number(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["up", "--timeout-scale", value])
    assert "a number greater than 0" in capsys.readouterr().err


def test_images_list_names_every_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["images", "list"]) == 0
    out = capsys.readouterr().out
    assert "busybox" in out and "ghcr.io/codelab/gateway:1.0.0" in out and "locust" in out


def test_an_engine_error_is_one_line_and_its_detail(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["images", "build", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("codelab-cluster: error: unknown image recipe 'nope'; known: ")
