"""The engine (layer 3): one read of the data per iteration, exact iteration
counts, convergence, callbacks, and the same answer on any scheduler."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest

import daskem
from daskem.engine.em import remaining_gain
from daskem.engine.passes import Blocks
from tests.helpers import CountingArray, initial_parameters, make_mixture_data, write_zarr


@pytest.fixture
def data() -> np.ndarray:
    return make_mixture_data(n_samples=1000, n_features=3, n_components=3, seed=1, separation=1.0)


def test_each_iteration_reads_each_chunk_once(data):
    source = CountingArray(data, chunk_rows=100)
    X = da.from_array(source, chunks=(100, 3), asarray=True)
    with pytest.warns(daskem.ConvergenceWarning, match="did not converge in 7 iterations"):
        model = daskem.GaussianMixture(3, tol=0, max_iter=7, **initial_parameters(data, 3)).fit(X)
    assert model.n_iter_ == 7 and len(model.history_) == 7
    assert source.reads == {chunk: 7 for chunk in range(10)}


def test_initialisation_reads_the_data_at_most_once_more(data):
    source = CountingArray(data, chunk_rows=100)
    X = da.from_array(source, chunks=(100, 3), asarray=True)
    with pytest.warns(daskem.ConvergenceWarning):
        daskem.GaussianMixture(3, tol=0, max_iter=3, random_state=0).fit(X)
    assert sorted(source.reads.values()) == [4] * 10


def test_converges_when_the_change_is_below_tol(data):
    model = daskem.GaussianMixture(3, tol=1e-4, max_iter=500, random_state=0, acceleration="none").fit(data)
    assert model.converged_
    assert abs(model.history_[-1] - model.history_[-2]) < 1e-4
    assert all(abs(step) >= 1e-4 for step in np.diff(model.history_)[:-1])
    assert model.lower_bound_ == model.history_[-1]


def test_callbacks_see_every_iteration(data):
    seen = []
    with pytest.warns(daskem.ConvergenceWarning):
        model = daskem.GaussianMixture(3, tol=0, max_iter=4, random_state=0).fit(data, callbacks=[seen.append])
    assert [info.iteration for info in seen] == [1, 2, 3, 4]
    np.testing.assert_array_equal([info.mean_log_likelihood for info in seen], model.history_)
    assert seen[0].change == np.inf and all(info.seconds >= 0 for info in seen)
    np.testing.assert_array_equal(seen[-1].params.means, model.means_)


def test_logs_one_line_per_iteration(data, caplog):
    caplog.set_level("INFO", logger="daskem")
    with pytest.warns(daskem.ConvergenceWarning):
        daskem.GaussianMixture(3, tol=0, max_iter=3, random_state=0).fit(data)
    lines = [r.getMessage() for r in caplog.records if r.name == "daskem"]
    assert len(lines) == 3 and lines[2].startswith("iteration    3  mean log-likelihood")
    assert lines[0].split("change ")[1].startswith("inf")


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_same_bits_on_every_local_scheduler(data, scheduler):
    X = da.from_array(data, chunks=(128, 3))
    inits = initial_parameters(data, 3)
    with dask.config.set(scheduler="threads"), pytest.warns(daskem.ConvergenceWarning):
        reference = daskem.GaussianMixture(3, tol=0, max_iter=5, **inits).fit(X)
    with dask.config.set(scheduler=scheduler), pytest.warns(daskem.ConvergenceWarning):
        other = daskem.GaussianMixture(3, tol=0, max_iter=5, **inits).fit(X)
    np.testing.assert_array_equal(other.covariances_, reference.covariances_)
    np.testing.assert_array_equal(other.history_, reference.history_)


def test_runs_on_a_distributed_cluster_with_the_same_bits(tmp_path, data):
    distributed = pytest.importorskip("distributed")
    path = str(write_zarr(tmp_path / "data.zarr", data, chunk_rows=128))
    with pytest.warns(daskem.ConvergenceWarning):
        local = daskem.GaussianMixture(3, tol=0, max_iter=5, random_state=0).fit(path, variable="X")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        with pytest.warns(daskem.ConvergenceWarning):
            remote = daskem.GaussianMixture(3, tol=0, max_iter=5, random_state=0).fit(path, variable="X")
        labels = remote.predict(path, variable="X").compute()
    np.testing.assert_array_equal(remote.means_, local.means_)
    np.testing.assert_array_equal(remote.covariances_, local.covariances_)
    np.testing.assert_array_equal(labels, local.predict(data))


def test_blocks_refuse_feature_chunks(data):
    with pytest.raises(ValueError, match="chunked along rows only"):
        Blocks.of(da.from_array(data, chunks=(100, 1)))


# ------------------------------------------------------------ how far a fit still is


def test_aitkens_estimate_is_exact_for_geometric_convergence():
    rate, gap, optimum = 0.8, 0.5, -1.25
    history = [optimum - gap * rate**t for t in range(10)]
    # The changes shrink by exactly `rate`, so the estimate is the remaining gap, up to rounding of sums
    # near 1.25 (a few ulps of it, far below 1e-12 of the gap).
    assert remaining_gain(history) == pytest.approx(gap * rate**9, rel=1e-9)


@pytest.mark.parametrize("history, expected", [
    ([-3.0, -2.0], "nan"),                   # two values: one change, no rate
    ([-3.0, -2.0, -1.0], "nan"),             # changes that do not shrink
    ([-3.0, -2.0, -2.5], "nan"),             # a fall (after a restart)
    ([-3.0, -2.9, -2.5], "nan"),             # a change that grows
    ([-3.0, -2.0, -2.0], 0.0),               # converged to the last bit
])
def test_aitkens_estimate_says_when_it_cannot_tell(history, expected):
    found = remaining_gain(history)
    assert np.isnan(found) if expected == "nan" else found == expected


def test_each_iteration_tells_how_much_the_fit_may_still_gain():
    X = make_mixture_data(n_samples=3000, n_features=2, n_components=3, seed=1, separation=2.0)
    infos = []
    model = daskem.GaussianMixture(3, tol=1e-14, max_iter=2000, acceleration="none", **initial_parameters(X, 3, seed=2))
    model.fit(X, callbacks=[infos.append])
    assert model.converged_
    for info in infos:  # the estimate of the history so far, as the log line prints it
        history = model.history_[: info.iteration]
        assert np.isnan(info.remaining) if np.isnan(remaining_gain(history)) else (
            info.remaining == remaining_gain(history))
    true = model.history_[-1] - np.array([info.mean_log_likelihood for info in infos])
    estimate = np.array([info.remaining for info in infos])
    near = (true > 1e-9) & (true < 1e-3)  # the linear phase, above the rounding of the last bits
    ratio = estimate[near] / true[near]
    # EM converges linearly here, its rate drifting slowly: the estimate is then nearly the truth
    # (median 1.00 on this data; 1.25 leaves room for another BLAS's rounding), never off by 3x.
    assert near.sum() >= 20 and 0.8 < np.median(ratio) < 1.25 and ((ratio > 1 / 3) & (ratio < 3)).all()
