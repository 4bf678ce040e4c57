"""Model selection: every candidate in shared passes, a table, the best model."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import daskem
from daskem.app.cli import main
from daskem.estimators.selection import select
from daskem.exceptions import InputError
from tests.helpers import CountingArray, make_mixture_data, write_zarr


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return make_mixture_data(n_samples=2400, n_features=2, n_components=3, seed=6, separation=6.0)


def test_candidates_share_every_pass(data):
    source = CountingArray(data, chunk_rows=400)
    X = da.from_array(source, chunks=(400, 2), asarray=True)
    selection = select(X, [1, 2, 3, 4], ["full", "diag", "spherical"], n_init=2, random_state=0, tol=1e-4)
    iterations = selection.table["n_iter"]
    assert len(selection.table) == 12
    assert selection.n_passes >= iterations.max()
    # one read for the shared initialisation sample, then one per iteration of the longest run
    assert source.reads == {chunk: 1 + selection.n_passes for chunk in range(6)}
    # fits one after another would each have read a sample and then the data once per iteration
    assert 1 + selection.n_passes < len(iterations) + iterations.sum()


def test_table_and_best_model(data):
    selection = select(data, range(1, 6), ["full", "tied"], random_state=0)
    table = selection.table
    assert list(table.columns) == ["n_components", "family", "covariance_type", "log_likelihood",
                                   "n_parameters", "bic", "aic", "n_iter", "converged"]
    assert set(table["family"]) == {"gaussian"}
    assert table["bic"].is_monotonic_increasing
    best = selection.best_
    assert (best.n_components, best.covariance_type) == (3, "full")
    assert (table.loc[0, "n_components"], table.loc[0, "covariance_type"]) == (3, "full")
    row = table.iloc[0]
    n = len(data)
    expected_bic = -2 * row["log_likelihood"] * n + row["n_parameters"] * np.log(n)
    np.testing.assert_allclose(row["bic"], expected_bic)
    by_aic = select(data, range(1, 6), ["full", "tied"], random_state=0, criterion="aic")
    assert by_aic.table["aic"].is_monotonic_increasing


def test_a_candidate_equals_its_own_fit(data):
    """Sharing passes changes nothing: the first candidate starts from the same random
    numbers as a fit of its own, and ends with the same bits."""
    selection = select(data, [2, 3], ["diag", "full"], random_state=0, tol=1e-6)
    first = next(m for m in selection.models if (m.n_components, m.covariance_type) == (2, "diag"))
    alone = daskem.GaussianMixture(2, covariance_type="diag", tol=1e-6, random_state=0).fit(data)
    np.testing.assert_array_equal(first.means_, alone.means_)
    np.testing.assert_array_equal(first.covariances_, alone.covariances_)
    np.testing.assert_array_equal(first.history_, alone.history_)


def test_select_refuses_bad_settings(data):
    with pytest.raises(InputError, match="criterion must be one of"):
        select(data, [1, 2], criterion="likelihood")
    with pytest.raises(InputError, match="covariance_type='banded' is not supported"):
        select(data, [1, 2], ["banded"])
    with pytest.raises(InputError, match="n_components must be an integer >= 1"):
        select(data, [0, 2])
    with pytest.raises(InputError, match="give at least one"):
        select(data, [])
    with pytest.raises(InputError, match="fewer than n_components=5000"):
        select(data, [5000])
    with pytest.raises(InputError, match="n_components lists more than 1000 numbers"):
        select(data, range(1, 10**9))  # refused before the range is expanded
    with pytest.raises(InputError, match="n_components must be integers"):
        select(data, [1.5, 2])


def test_cli_select_writes_the_table_and_the_best_model(tmp_path, data):
    path = write_zarr(tmp_path / "data.zarr", data, 600)
    out = tmp_path / "selection"
    result = CliRunner().invoke(main, ["select", str(path), "--variable", "X", "--n-components", "1-4",
                                       "--covariance-types", "full,diag", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "table.csv")
    assert len(table) == 8 and table["bic"].is_monotonic_increasing
    best = daskem.load(out / "best.zarr")
    assert best.n_components == table.loc[0, "n_components"] == 3
    assert "best: 3 components, full covariance" in result.stdout
    again = CliRunner().invoke(main, ["select", str(path), "-v", "X", "--n-components", "2", "--out", str(out)])
    assert again.exit_code == 1 and "(--overwrite) to replace it" in again.stderr


@pytest.mark.parametrize("text", ["1-x", "0-3", "3-1", "", "a,b", "1-1000000000", "1-600,700-1100"])
def test_cli_select_refuses_bad_ranges(tmp_path, data, text):
    path = write_zarr(tmp_path / "data.zarr", data, 600)
    result = CliRunner().invoke(main, ["select", str(path), "-v", "X", "--n-components", text])
    assert result.exit_code == 2 and "--n-components" in result.stderr
    if "000" in text:  # a billion, or more than a thousand: counted before anything is expanded
        assert "holds more than 1000 integers" in result.stderr


@pytest.fixture(scope="module")
def few_rows() -> np.ndarray:
    return make_mixture_data(n_samples=400, n_features=2, n_components=3, seed=6, separation=4.0)


def test_select_passes_acceleration_to_every_candidate(few_rows):
    settings = dict(random_state=0, tol=1e-5)
    textbook = select(few_rows, [3, 4], ["full", "diag"], acceleration="none", **settings)
    default = select(few_rows, [3, 4], ["full", "diag"], **settings)
    assert [m.acceleration for m in textbook.models] == ["none"] * 4
    assert [m.acceleration for m in default.models] == ["squarem"] * 4
    # the first candidate starts from the random numbers of a fit of its own (test_a_candidate_equals_its_own_fit)
    for selection, acceleration in ((textbook, "none"), (default, "squarem")):
        first = next(m for m in selection.models if (m.n_components, m.covariance_type) == (3, "full"))
        alone = daskem.GaussianMixture(3, acceleration=acceleration, **settings).fit(few_rows)
        np.testing.assert_array_equal(first.history_, alone.history_)
        np.testing.assert_array_equal(first.means_, alone.means_)
    for shared, accelerated in zip(textbook.models, default.models):
        assert not np.array_equal(shared.history_, accelerated.history_)  # the setting reaches every candidate
    # a selection of one candidate is its textbook fit
    for k, covariance_type in [(3, "diag"), (3, "tied")]:
        only = select(few_rows, [k], [covariance_type], acceleration="none", **settings).best_
        alone = daskem.GaussianMixture(k, covariance_type=covariance_type, acceleration="none", **settings)
        np.testing.assert_array_equal(only.history_, alone.fit(few_rows).history_)


def test_select_refuses_an_unknown_acceleration(few_rows):
    with pytest.raises(InputError, match=r"acceleration='fast' is not supported; choose one of \('squarem', 'none'\)"):
        select(few_rows, [2], acceleration="fast")


def test_cli_select_acceleration_selects_as_the_library_does(tmp_path, few_rows):
    path = write_zarr(tmp_path / "data.zarr", few_rows, 100)
    settings = dict(random_state=0, tol=1e-5)
    for acceleration in ("none", "squarem"):
        out = tmp_path / acceleration
        result = CliRunner().invoke(main, ["select", str(path), "-v", "X", "-k", "3,4", "--covariance-types",
                                           "full,diag", "--tol", "1e-5", "--acceleration", acceleration,
                                           "--out", str(out)])
        assert result.exit_code == 0, result.output
        library = select(str(path), [3, 4], ["full", "diag"], variable="X", acceleration=acceleration, **settings)
        pd.testing.assert_frame_equal(pd.read_csv(out / "table.csv"), library.table, check_exact=True)
        np.testing.assert_array_equal(daskem.load(out / "best.zarr").history_, library.best_.history_)
    assert not pd.read_csv(tmp_path / "none" / "table.csv").equals(pd.read_csv(tmp_path / "squarem" / "table.csv"))


@pytest.mark.parametrize("family", ["gaussian", "bernoulli", "poisson"])
def test_select_honours_missing_for_every_family(family):
    """missing="error" refuses NaN for every family, as fit does; the default fits around it."""
    from daskem.exceptions import NonFiniteDataError

    X = (np.random.default_rng(0).random((300, 4)) > 0.5).astype(float)
    X[3, 1] = np.nan
    with pytest.raises(NonFiniteDataError, match="first seen at row 3"):
        select(X, [2], families=[family], missing="error", random_state=0)
    selection = select(X, [2], families=[family], random_state=0)
    assert selection.best_.missing == "nan" and np.isfinite(selection.table["log_likelihood"]).all()
