"""Pictures: each plot command writes a PNG; bad requests get a clear message."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import daskem
from daskem.cli import main
from daskem.plots import projection

from conftest import make_mixture_data, write_zarr

pytest.importorskip("matplotlib", reason="matplotlib is part of the test install")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plots")
    X = make_mixture_data(n_samples=3000, n_features=4, n_components=3, seed=7, separation=5.0)
    write_zarr(folder / "data.zarr", X, 1000)
    daskem.GaussianMixture(3, random_state=0).fit(X).save(folder / "model.zarr")
    daskem.select(X, [1, 2, 3, 4], ["full", "diag"], random_state=0).save(folder / "selection")
    return folder


@pytest.mark.parametrize(
    "arguments",
    [
        ["convergence", "{f}/model.zarr"],
        ["selection", "{f}/selection"],
        ["selection", "{f}/selection/table.csv"],
        ["components", "{f}/model.zarr", "{f}/data.zarr", "-v", "X"],
        ["components", "{f}/model.zarr", "{f}/data.zarr", "-v", "X", "--features", "0,2", "--sample", "500"],
    ],
)
def test_each_picture_is_a_png(folder, arguments, tmp_path):
    out = tmp_path / "picture.png"
    result = CliRunner().invoke(main, ["plot", *[a.format(f=folder) for a in arguments], "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == PNG and out.stat().st_size > 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["picture.png"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["selection", "{f}/model.zarr"], "no selection table"),
        (["components", "{f}/model.zarr", "{f}/data.zarr", "-v", "X", "--features", "0,9"], "out of range"),
        (["components", "{f}/model.zarr", "{f}/data.zarr", "-v", "X", "--features", "x"], "two feature indices"),
        (["convergence", "{f}/nothing.zarr"], "no such file"),
    ],
)
def test_bad_plot_requests(folder, arguments, message, tmp_path):
    result = CliRunner().invoke(main, ["plot", *[a.format(f=folder) for a in arguments], "--out",
                                       str(tmp_path / "p.png")])
    assert result.exit_code == 1 and message in result.stderr
    assert not (tmp_path / "p.png").exists()


def test_principal_directions_come_from_the_parameters(folder):
    model = daskem.load(folder / "model.zarr")
    basis, _ = projection(model, None)
    X, _ = model.sample(200_000)
    top = np.linalg.eigh(np.cov(X.T))[1][:, ::-1][:, :2].T
    np.testing.assert_allclose(np.abs(basis @ top.T), np.eye(2), atol=0.02)
