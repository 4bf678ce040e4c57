"""Pictures: each plot command writes a PNG; bad requests get a clear message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import daskem
from daskem.app import plots
from daskem.app.cli import main
from daskem.app.plots import projection
from tests.helpers import make_mixture_data, write_zarr

imread = pytest.importorskip("matplotlib.image", reason="matplotlib is part of the test install").imread
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
    assert out.read_bytes()[:8] == PNG
    assert [p.name for p in tmp_path.iterdir()] == ["picture.png"]
    # the picture asked for: its size (inches at 120 dpi) and more than a blank canvas
    pixels = imread(out)
    assert pixels.shape[:2] == {"components": (660, 1020)}.get(arguments[0], (456, 960))
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 10


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


def test_colours_never_repeat():
    from matplotlib.colors import to_hex

    for count in (3, 8, 20, 40):
        assert len({to_hex(c) for c in plots.colours(count)}) == count


def test_twenty_components_stay_readable(tmp_path):
    """K=20: twenty colours, and names and weights in a legend whose entries do not overlap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    X = make_mixture_data(n_samples=4000, n_features=2, n_components=20, seed=3, separation=4.0)
    model = daskem.GaussianMixture(20, covariance_type="diag", random_state=0, max_iter=20).fit(X)
    figure = plots.components(model, X, sample_rows=2000)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    legend = figure.axes[0].get_legend()
    texts = legend.get_texts()
    assert len(texts) == 20 and len({h.get_color() for h in legend.legend_handles}) == 20
    boxes = [t.get_window_extent(canvas.get_renderer()) for t in texts]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_selection_plot_shows_differences_from_the_best(folder):
    table = pd.read_csv(folder / "selection" / "table.csv")
    figure = plots.selection(table)
    for ax, criterion in zip(figure.axes, ("bic", "aic")):
        assert ax.get_yscale() == "symlog"
        lines = [line for line in ax.get_lines() if line.get_label() in set(table["covariance_type"])]
        lowest = min(line.get_ydata().min() for line in lines)
        assert lowest == 0.0  # the best candidate sits at Δ = 0, whatever the criterion's size
        spread = table[criterion].max() - table[criterion].min()
        assert max(line.get_ydata().max() for line in lines) == pytest.approx(spread)
