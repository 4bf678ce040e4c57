"""EM with missing values (``missing="nan"``) against EM written out row by row, and its properties.

The reference below is the textbook algorithm for one row at a time: the
E-step scores each row by the marginal density of its observed coordinates
(``Σ_oo`` inverted directly), completes it by the conditional mean of its
missing coordinates, and adds their conditional covariance to the second
moments.  daskem groups rows by missingness pattern and works from the
precision matrix (see daskem.kernels.missing); the two must agree.
"""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import gammaln, logsumexp
from sklearn.base import clone

import daskem
from daskem.engine.passes import Blocks, statistics_pass
from daskem.exceptions import ComponentCollapseWarning, ConvergenceWarning, NonFiniteDataError
from daskem.families.gaussian import GaussianFamily
from daskem.kernels import missing as missing_values
from daskem.kernels import patterns
from daskem.kernels.gaussian import COVARIANCE_TYPES, GaussianParams, sample
from tests.strategies import chunkings

REG_COVAR = 1e-6


def holed(seed: int, n_samples: int = 400, n_features: int = 4, fraction: float = 0.2) -> np.ndarray:
    """Rows of three clusters with ``fraction`` of the values missing completely at random (a few rows
    with every value missing)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(3, n_features))
    X = centres[rng.integers(3, size=n_samples)] + rng.normal(size=(n_samples, n_features))
    X[rng.random(X.shape) < fraction] = np.nan
    X[:2] = np.nan
    return X


def start(seed: int, covariance_type: str, n_features: int = 4, n_components: int = 3) -> GaussianParams:
    rng = np.random.default_rng(seed + 1)
    factors = rng.normal(size=(n_components, n_features, n_features))
    full = factors @ np.swapaxes(factors, 1, 2) / n_features + np.eye(n_features)
    covariances = {"full": full, "tied": full[0], "diag": np.diagonal(full, axis1=1, axis2=2).copy(),
                   "spherical": np.diagonal(full, axis1=1, axis2=2).mean(axis=1)}[covariance_type]
    return GaussianParams.from_covariances(rng.dirichlet(np.full(n_components, 5.0)),
                                           rng.normal(scale=3.0, size=(n_components, n_features)), covariances,
                                           covariance_type)


def textbook_em(X: np.ndarray, params: GaussianParams, iterations: int, weights=None):
    """EM with missing values, one row at a time: (weights, means, covariances, mean log-likelihoods)."""
    kind = params.covariance_type
    alpha, means, full = params.weights, params.means, params.full_covariances()
    n, d = X.shape
    w = np.ones(n) if weights is None else weights
    history = []
    for _ in range(iterations):
        k_count = len(alpha)
        nk, s1, s2 = np.zeros(k_count), np.zeros((k_count, d)), np.zeros((k_count, d, d))
        total, weight = 0.0, 0.0
        for i in range(n):
            o = ~np.isnan(X[i])
            if not o.any():
                continue
            m = ~o
            log_prob, completed, conditional = np.empty(k_count), np.empty((k_count, d)), np.zeros((k_count, d, d))
            for k in range(k_count):
                sigma = full[k]
                difference = X[i, o] - means[k, o]
                solved = np.linalg.solve(sigma[np.ix_(o, o)], difference)
                log_prob[k] = np.log(alpha[k]) - 0.5 * (o.sum() * np.log(2 * np.pi)
                                                        + np.linalg.slogdet(sigma[np.ix_(o, o)])[1]
                                                        + difference @ solved)
                completed[k] = X[i]
                completed[k, m] = means[k, m] + sigma[np.ix_(m, o)] @ solved
                conditional[k][np.ix_(m, m)] = sigma[np.ix_(m, m)] - sigma[np.ix_(m, o)] @ np.linalg.solve(
                    sigma[np.ix_(o, o)], sigma[np.ix_(o, m)])
            norm = logsumexp(log_prob)
            total, weight = total + w[i] * norm, weight + w[i]
            resp = w[i] * np.exp(log_prob - norm)
            centred = completed - means  # moments about the current means: exact far from the origin
            nk += resp
            s1 += resp[:, None] * centred
            s2 += resp[:, None, None] * (centred[:, :, None] * centred[:, None, :] + conditional)
        history.append(total / weight)
        shift = s1 / nk[:, None]
        alpha, means = nk / nk.sum(), means + shift
        full = s2 / nk[:, None, None] - shift[:, :, None] * shift[:, None, :]
        if kind == "tied":
            full = np.broadcast_to((s2.sum(0) - np.einsum("k,ki,kj->ij", nk, shift, shift)) / nk.sum(), full.shape)
        if kind in ("diag", "spherical"):
            variances = np.diagonal(full, axis1=1, axis2=2)
            if kind == "spherical":
                variances = np.repeat(variances.mean(axis=1, keepdims=True), d, axis=1)
            full = variances[:, :, None] * np.eye(d)
        full = full + REG_COVAR * np.eye(d)
    return alpha, means, full, np.array(history)


def fit(X, params: GaussianParams, chunks, iterations: int, weights=None, **settings) -> daskem.GaussianMixture:
    model = daskem.GaussianMixture(
        params.n_components, covariance_type=params.covariance_type, tol=0.0, max_iter=iterations,
        reg_covar=REG_COVAR, missing="nan", weights_init=params.weights, means_init=params.means,
        precisions_init=params.precisions, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ComponentCollapseWarning)  # starts drawn at random, not fitted
        return model.fit(da.from_array(X, chunks=(chunks, -1)),
                         sample_weight=None if weights is None else da.from_array(weights, chunks=(chunks,)))


def assert_close(actual, expected, what):
    # rounding of a few hundred rows' sums, relative to each array's scale
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-10 * np.abs(expected).max(), err_msg=what)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("chunks", [400, 57, 150])
def test_em_with_missing_values_is_textbook_em(covariance_type, chunks):
    X, params = holed(0), start(0, covariance_type)
    weights = np.random.default_rng(2).uniform(0.5, 2.0, size=len(X))
    alpha, means, full, history = textbook_em(X, params, 6, weights)
    model = fit(X, params, chunks, 6, weights, acceleration="none")
    assert_close(model.weights_, alpha, "weights")
    assert_close(model.means_, means, "means")
    assert_close(model.params.full_covariances(), full, "covariances")
    assert_close(model.history_, history, "history")


def test_components_far_apart_are_textbook_em_too():
    # Two overlapping components and one 100,000 standard deviations away: filling the holes with the
    # mixture's mean would lose ~1e10 ulps of the overlapping pair's densities to cancellation, and
    # their shares of each row with them; the pass masks each component's differences instead.
    params = start(4, "full")
    far = GaussianParams.from_covariances(params.weights, np.array([np.zeros(4), np.full(4, 0.8), np.full(4, 1e5)]),
                                          params.full_covariances(), "full")
    X, _ = sample(far, 400, np.random.default_rng(5))
    X[np.random.default_rng(6).random(X.shape) < 0.2] = np.nan
    assert missing_values.fill_amplification(far) > missing_values.MAX_FILL_AMPLIFICATION
    assert missing_values.fill_amplification(params) < missing_values.MAX_FILL_AMPLIFICATION  # the other path
    alpha, means, full, history = textbook_em(X, far, 3)
    model = fit(X, far, 150, 3)
    assert_close(model.weights_, alpha, "weights")
    assert_close(model.means_, means, "means")
    assert_close(model.params.full_covariances(), full, "covariances")
    assert_close(model.history_, history, "history")


@pytest.mark.parametrize("n_features", [3, 20])
def test_rows_in_any_order_give_the_same_statistics(monkeypatch, n_features):
    # The pass groups rows by pattern (beyond 16 features, patterns may share a bucket of the sort);
    # rows of one pattern that are not next to each other cost factorisations, not exactness.
    X, params = holed(7, n_samples=300, n_features=n_features), start(7, "full", n_features)
    grouped = missing_values.statistics(X, params, params.means, None)

    grouping = patterns.pattern_order

    def shuffled(rows, order, n_missing, patterns):  # the rows' counts and buckets, rows in a random order
        grouping(rows, order, n_missing, patterns)
        permutation = np.random.default_rng(8).permutation(len(rows))
        order[:], n_missing[:], patterns[:] = order[permutation], n_missing[permutation], patterns[permutation]

    np.testing.assert_array_equal(grouped.low, np.nanmin(X, axis=0))  # the observed values' range
    np.testing.assert_array_equal(grouped.high, np.nanmax(X, axis=0))
    monkeypatch.setattr(patterns, "pattern_order", shuffled)
    mixed = missing_values.statistics(X, params, params.means, None)
    np.testing.assert_allclose(mixed.log_prob_norm, grouped.log_prob_norm, rtol=1e-13)
    for name in ("nk", "s1", "s2"):  # sums in another order: rounding, relative to each array's scale
        a, b = getattr(mixed, name), getattr(grouped, name)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max(), err_msg=name)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_scores_are_the_marginal_densities_of_the_observed_values(covariance_type):
    X, params = holed(3), start(3, covariance_type)
    model = fit(X, params, 100, 3)
    observed = ~np.isnan(X).all(axis=1)
    _, _, _, history = textbook_em(X[observed], model.params, 1)
    # the mean of the rows' scores is the textbook mean log-likelihood under the fitted parameters
    scores = model.score_samples(X)
    np.testing.assert_allclose(scores[observed].mean(), history[0], rtol=1e-12)
    assert np.all(scores[~observed] == 0.0)  # nothing observed: probability 1
    np.testing.assert_allclose(model.predict_proba(X)[~observed], np.tile(model.weights_, ((~observed).sum(), 1)), rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_without_missing_values_the_fit_is_the_complete_data_fit_bitwise(covariance_type):
    X = holed(1, fraction=0.0)[2:]
    complete = daskem.GaussianMixture(3, covariance_type=covariance_type, tol=0, max_iter=4, random_state=0)
    holed_model = clone(complete).set_params(missing="nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        complete.fit(X)
        holed_model.fit(X)
    for name in ("weights_", "means_", "covariances_", "history_"):
        np.testing.assert_array_equal(getattr(holed_model, name), getattr(complete, name), err_msg=name)


def test_nan_is_refused_unless_it_marks_missing_values_and_infinity_always():
    X = holed(4)
    assert daskem.GaussianMixture(3, random_state=0).missing == "nan"  # the default
    with pytest.raises(NonFiniteDataError, match="missing='nan'"):
        daskem.GaussianMixture(3, random_state=0, missing="error").fit(X)
    X[10, 1] = np.inf
    with pytest.raises(NonFiniteDataError, match="infinite"):
        daskem.GaussianMixture(3, random_state=0, missing="nan").fit(X)


@pytest.mark.parametrize("init_params", ["k-means++", "k-means||", "kmeans", "random_from_data"])
def test_every_start_clusters_rows_with_missing_values(init_params):
    X = holed(5, n_samples=3000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = daskem.GaussianMixture(3, random_state=0, missing="nan", max_iter=200, init_params=init_params,
                                       n_init=2, chunk_rows=700).fit(X)
    assert model.converged_ and np.isfinite(model.means_).all()
    rng = np.random.default_rng(5)  # the centres holed() drew
    centres = rng.normal(scale=3.0, size=(3, 4))
    # each true centre is found, within a few standard errors of ~1000 rows of unit variance
    nearest = np.abs(model.means_[:, None] - centres[None]).max(axis=2).min(axis=0)
    assert np.all(nearest < 0.2)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), covariance_type=st.sampled_from(COVARIANCE_TYPES), data=st.data())
def test_statistics_do_not_depend_on_the_chunking(seed, covariance_type, data):
    X, params = holed(seed, n_samples=120, n_features=3), start(seed, covariance_type, n_features=3)
    family = GaussianFamily(covariance_type, REG_COVAR, "nan")

    def statistics(chunks):
        blocks = Blocks.of(da.from_array(X, chunks=(chunks, -1)))
        ((stats,),) = dask.compute(statistics_pass(blocks, 2)([(family, params)]))
        return stats

    one, other = statistics((120,)), statistics(data.draw(chunkings(120)))
    for name in ("nk", "s1", "s2"):
        a, b = getattr(other, name), getattr(one, name)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max(), err_msg=name)
    assert other.log_likelihood == pytest.approx(one.log_likelihood, rel=1e-12)
    observed = int((~np.isnan(X).all(axis=1)).sum())
    assert (other.weight_sum, other.n_samples) == (one.weight_sum, one.n_samples) == (observed, observed)
    np.testing.assert_array_equal(other.worst_index, one.worst_index)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), covariance_type=st.sampled_from(COVARIANCE_TYPES),
       fraction=st.sampled_from([0.05, 0.3, 0.6]))
def test_the_observed_data_log_likelihood_never_decreases(seed, covariance_type, fraction):
    X, params = holed(seed, n_samples=150, n_features=3, fraction=fraction), start(seed, covariance_type, 3)
    model = fit(X, params, 40, 12)
    steps = np.diff(model.history_)
    assert np.all(steps >= -1e-12 * np.abs(model.history_).max())


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), covariance_type=st.sampled_from(COVARIANCE_TYPES))
def test_permuting_the_rows_changes_nothing_beyond_rounding(seed, covariance_type):
    X, params = holed(seed, n_samples=150, n_features=3), start(seed, covariance_type, 3)
    order = np.random.default_rng(seed).permutation(len(X))
    a, b = fit(X, params, 50, 4), fit(X[order], params, 50, 4)
    for name in ("weights_", "means_", "covariances_", "history_"):
        assert_close(getattr(b, name), getattr(a, name), name)


def test_a_fit_counts_the_missing_values_and_leaves_empty_rows_out(tmp_path):
    X = holed(6)
    gaps = np.isnan(X)
    model = fit(X, start(6, "full"), 100, 3)
    expected = (int(gaps.sum()), int(gaps.any(axis=1).sum()), int(gaps.all(axis=1).sum()))
    assert (model.n_missing_values_, model.n_incomplete_rows_, model.n_empty_rows_) == expected
    assert expected[2] >= 2
    model.save(tmp_path / "model.zarr")
    loaded = daskem.load(tmp_path / "model.zarr")
    assert (loaded.n_missing_values_, loaded.n_incomplete_rows_, loaded.n_empty_rows_) == expected
    assert loaded.missing == "nan"
    # the rows with nothing observed change nothing
    without = fit(X[~gaps.all(axis=1)], start(6, "full"), 100, 3)
    for name in ("weights_", "means_", "covariances_", "history_"):
        assert_close(getattr(model, name), getattr(without, name), name)


def test_the_command_line_and_job_files_fit_data_with_holes(tmp_path):
    from click.testing import CliRunner

    from daskem.app.cli import main
    from daskem.app.jobs import run_job
    from tests.helpers import write_zarr

    X = holed(7, n_samples=2000)
    write_zarr(tmp_path / "data.zarr", X, chunk_rows=500)
    gaps = np.isnan(X)
    result = CliRunner().invoke(main, ["fit", str(tmp_path / "data.zarr"), "-v", "X", "-k", "3", "--missing", "nan",
                                       "--out", str(tmp_path / "model.zarr")])
    assert result.exit_code == 0, result.output
    assert f"{int(gaps.sum()):,} values missing in {int(gaps.any(axis=1).sum()):,} rows" in result.output
    refused = CliRunner().invoke(main, ["fit", str(tmp_path / "data.zarr"), "-v", "X", "-k", "3", "--missing",
                                        "error"])
    assert refused.exit_code == 1 and "missing='nan'" in refused.output
    (tmp_path / "job.yaml").write_text("data: {path: data.zarr, variable: X}\n"
                                       "fit: {n_components: 3, missing: nan}\n"
                                       "outputs: {model: job-model.zarr, report: report.json}\n")
    report = run_job(tmp_path / "job.yaml")
    assert report["stages"][0]["model"]["missing"][0] == int(gaps.sum())


def textbook_product_em(family: str, X: np.ndarray, weights0: np.ndarray, means0: np.ndarray, iterations: int,
                        low: float, high: float):
    """EM for Bernoulli or Poisson components with missing values, one row at a time: a missing
    feature's term drops out of the density, and each mean averages the rows where it is observed."""
    alpha, means, history = weights0, means0, []
    n, d = X.shape
    for _ in range(iterations):
        nk, s1, seen, total, count = np.zeros(len(alpha)), np.zeros(means.shape), np.zeros(means.shape), 0.0, 0
        for i in range(n):
            o = ~np.isnan(X[i])
            if not o.any():
                continue
            x, m = X[i, o], means[:, o]
            if family == "bernoulli":
                log_density = (x * np.log(m) + (1 - x) * np.log(1 - m)).sum(axis=1)
            else:
                log_density = (x * np.log(m) - m - gammaln(x + 1)).sum(axis=1)
            log_prob = np.log(alpha) + log_density
            norm = logsumexp(log_prob)
            total, count = total + norm, count + 1
            resp = np.exp(log_prob - norm)
            nk += resp
            s1[:, o] += resp[:, None] * x
            seen[:, o] += resp[:, None]
        history.append(total / count)
        alpha, means = nk / nk.sum(), np.clip(s1 / seen, low, high)
    return alpha, means, np.array(history)


@pytest.mark.parametrize("family", ["bernoulli", "poisson"])
@pytest.mark.parametrize("chunks", [400, 57])
def test_product_families_with_missing_values_are_textbook_em(family, chunks):
    from tests.strategies import ROWS

    rng = np.random.default_rng(8)
    X = ROWS[family][0](rng, 400, 5, 3)
    X[rng.random(X.shape) < 0.2] = np.nan
    X[:2] = np.nan
    means0 = rng.uniform(0.2, 0.8, (3, 5)) if family == "bernoulli" else rng.uniform(0.5, 5.0, (3, 5))
    weights0 = np.full(3, 1 / 3)
    estimator = daskem.BernoulliMixture if family == "bernoulli" else daskem.PoissonMixture
    floor = 1e-10
    alpha, means, history = textbook_product_em(family, X, weights0, means0, 6, floor,
                                                1 - floor if family == "bernoulli" else np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = estimator(3, tol=0, max_iter=6, acceleration="none", missing="nan", weights_init=weights0,
                          means_init=means0).fit(
            da.from_array(X, chunks=(chunks, -1)))
    assert_close(model.weights_, alpha, "weights")
    assert_close(model.means_, means, "means")
    assert_close(model.history_, history, "history")
    gaps = np.isnan(X)
    assert (model.n_missing_values_, model.n_empty_rows_) == (int(gaps.sum()), int(gaps.all(axis=1).sum()))
    scores = model.score_samples(X)
    assert np.isfinite(scores).all() and np.all(scores[gaps.all(axis=1)] == 0.0)


def test_a_fit_with_missing_values_resumes_bitwise(tmp_path):
    X = holed(9, n_samples=900)

    def crash(info):
        if info.iteration == 3:
            raise RuntimeError("killed")

    def model():
        return daskem.GaussianMixture(3, tol=0, max_iter=6, random_state=0, missing="nan", chunk_rows=300)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        uninterrupted = model().fit(X)
        with pytest.raises(RuntimeError, match="killed"):
            model().fit(X, checkpoint=tmp_path / "checkpoint", callbacks=[crash])
        resumed = model().fit(X, checkpoint=tmp_path / "checkpoint")
    for name in ("weights_", "means_", "covariances_", "history_"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(uninterrupted, name), err_msg=name)
    assert resumed.n_missing_values_ == uninterrupted.n_missing_values_ == int(np.isnan(X).sum())


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_impute_gives_each_missing_value_its_conditional_expectation(covariance_type):
    X, params = holed(10), start(10, covariance_type)
    model = fit(X, params, 100, 2)
    full, means, alpha = model.params.full_covariances(), model.means_, model.weights_
    expected = X.copy()
    for i in np.flatnonzero(np.isnan(X).any(axis=1)):
        o = ~np.isnan(X[i])
        m = ~o
        if not o.any():
            expected[i] = alpha @ means
            continue
        log_prob, completed = np.empty(3), np.empty((3, m.sum()))
        for k in range(3):
            sigma = full[k]
            solved = np.linalg.solve(sigma[np.ix_(o, o)], X[i, o] - means[k, o])
            log_prob[k] = np.log(alpha[k]) - 0.5 * (np.linalg.slogdet(sigma[np.ix_(o, o)])[1]
                                                    + (X[i, o] - means[k, o]) @ solved)
            completed[k] = means[k, m] + sigma[np.ix_(m, o)] @ solved
        expected[i, m] = np.exp(log_prob - logsumexp(log_prob)) @ completed
    imputed = model.impute(X)
    assert_close(imputed, expected, "imputed rows")
    assert np.array_equal(imputed[~np.isnan(X)], X[~np.isnan(X)])  # observed values untouched
    lazy = model.impute(da.from_array(X, chunks=(77, -1)))
    assert isinstance(lazy, da.Array)
    assert_close(lazy.compute(), expected, "imputed lazily")


@pytest.mark.parametrize("family", ["bernoulli", "poisson"])
def test_product_families_impute_the_expected_value(family):
    from tests.strategies import ROWS

    rng = np.random.default_rng(11)
    X = ROWS[family][0](rng, 300, 4, 2)
    X[rng.random(X.shape) < 0.2] = np.nan
    estimator = daskem.BernoulliMixture if family == "bernoulli" else daskem.PoissonMixture
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = estimator(2, missing="nan", random_state=0).fit(X)
    resp = model.predict_proba(X)  # given the observed values
    expected = np.where(np.isnan(X), resp @ model.means_, X)
    assert_close(model.impute(X), expected, "imputed rows")


def test_daskem_impute_writes_the_completed_rows(tmp_path):
    from click.testing import CliRunner

    from daskem.app.cli import main
    from tests.helpers import write_zarr

    X = holed(12, n_samples=1000)
    write_zarr(tmp_path / "data.zarr", X, chunk_rows=300)
    model = fit(X, start(12, "full"), 300, 3)
    model.save(tmp_path / "model.zarr")
    result = CliRunner().invoke(main, ["impute", str(tmp_path / "model.zarr"), str(tmp_path / "data.zarr"), "-v", "X",
                                       "--out", str(tmp_path / "imputed.zarr")])
    assert result.exit_code == 0, result.output
    import xarray as xr

    with xr.open_zarr(tmp_path / "imputed.zarr") as ds:
        np.testing.assert_array_equal(ds["X"].values, model.impute(X))
    again = CliRunner().invoke(main, ["impute", str(tmp_path / "model.zarr"), str(tmp_path / "data.zarr"), "-v", "X",
                                      "--out", str(tmp_path / "data.zarr")])
    assert again.exit_code != 0  # never into its input
    np.testing.assert_array_equal(np.isnan(np.asarray(zarr_array(tmp_path / "data.zarr"))), np.isnan(X))


def zarr_array(path):
    import zarr

    return zarr.open_group(path, mode="r")["X"][:]


def test_a_feature_never_observed_is_refused_by_name():
    X = holed(13)
    X[:, 2] = np.nan
    with pytest.raises(daskem.DaskemError, match="feature\\(s\\) 2 have no observed value in the 400 rows sampled"):
        daskem.GaussianMixture(3, missing="nan", random_state=0).fit(X)
    with pytest.raises(daskem.DaskemError, match="feature\\(s\\) 2 have no observed value \\(every"):
        daskem.GaussianMixture(3, missing="nan", random_state=0, init_params="k-means||").fit(X)
    with pytest.raises(daskem.DaskemError, match="feature\\(s\\) 2 have no observed value \\(every"):
        fit(X, start(13, "full"), 100, 2)


def test_pictures_of_data_with_holes(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    from daskem.app import plots
    from tests.helpers import write_zarr

    X = holed(14, n_samples=1000)
    write_zarr(tmp_path / "data.zarr", X, chunk_rows=250)
    model = fit(X, start(14, "full"), 250, 3)
    figure = plots.components(model, str(tmp_path / "data.zarr"), variable="X")
    plots.save(figure, tmp_path / "components.png")
    convergence = plots.convergence(model)
    plots.save(convergence, tmp_path / "convergence.png")
    # every row is drawn, its holes filled as the model fills them, in the colour of its component
    rows = model.impute(X)
    basis, _ = plots.projection(model, None)
    labels, points = model.predict(rows), rows @ basis.T
    ax = figure.axes[0]
    assert np.isfinite(points).all() and len(ax.collections) == 3 and len(ax.patches) == 2 * 3
    for k, collection in enumerate(ax.collections):
        np.testing.assert_allclose(collection.get_offsets(), points[labels == k], rtol=1e-12)
    assert ax.get_title() == "3 components (full) over 1,000 rows"
    np.testing.assert_array_equal(convergence.axes[0].get_lines()[0].get_ydata(), model.history_)
    for name in ("components.png", "convergence.png"):
        pixels = imread(tmp_path / name)
        assert pixels.ndim == 3 and len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 10, name
