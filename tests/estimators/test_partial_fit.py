"""partial_fit: stepwise EM (Cappé & Moulines 2009) for every estimator.

Checked against the running average of textbook per-batch statistics written out in NumPy (decay=1), against
a batch fit on a stationary stream, for invariance to the order of rows within a batch, across save and load
(bitwise), from a fitted model's parameters, far from the origin, for every family, with missing values, with
Dask and Zarr batches, and for its errors.
"""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

import daskem
from daskem.exceptions import ConvergenceWarning, InputError, ModelFileError
from daskem.families.bernoulli import BernoulliFamily
from daskem.families.gaussian import GaussianFamily
from daskem.families.poisson import PoissonFamily
from daskem.kernels import variational
from daskem.kernels.gaussian import GaussianParams
from daskem.kernels.stepwise import blend_centred, centred_moments
from tests.helpers import make_mixture_data, write_zarr
from tests.strategies import bernoulli_rows, poisson_rows

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
BATCH = 150


def batches(X: np.ndarray, size: int = BATCH) -> list[np.ndarray]:
    return [X[i : i + size] for i in range(0, len(X), size)]


def gaussian_batches(n_batches: int = 5, shift: float = 0.0) -> list[np.ndarray]:
    return batches(make_mixture_data(n_batches * BATCH, n_features=3, n_components=3, seed=4, shift=shift))


def bernoulli_batches(n_batches: int = 5) -> list[np.ndarray]:
    return batches(bernoulli_rows(np.random.default_rng(5), n_batches * BATCH, 6, 3))


def poisson_batches(n_batches: int = 5) -> list[np.ndarray]:
    return batches(poisson_rows(np.random.default_rng(6), n_batches * BATCH, 5, 3))


#: Each family: a model of it and batches of its rows (one estimator setting per case).
CASES = {
    "full": (lambda **kw: daskem.GaussianMixture(3, covariance_type="full", random_state=0, **kw), gaussian_batches),
    "tied": (lambda **kw: daskem.GaussianMixture(3, covariance_type="tied", random_state=0, **kw), gaussian_batches),
    "diag": (lambda **kw: daskem.GaussianMixture(3, covariance_type="diag", random_state=0, **kw), gaussian_batches),
    "spherical": (lambda **kw: daskem.GaussianMixture(3, covariance_type="spherical", random_state=0, **kw),
                  gaussian_batches),
    "bernoulli": (lambda **kw: daskem.BernoulliMixture(3, random_state=0, **kw), bernoulli_batches),
    "poisson": (lambda **kw: daskem.PoissonMixture(3, random_state=0, **kw), poisson_batches),
    "bayesian-full": (lambda **kw: daskem.BayesianGaussianMixture(4, random_state=0, **kw), gaussian_batches),
    "bayesian-tied": (lambda **kw: daskem.BayesianGaussianMixture(4, covariance_type="tied", random_state=0, **kw),
                      gaussian_batches),
    "bayesian-spherical": (lambda **kw: daskem.BayesianGaussianMixture(
        4, covariance_type="spherical", weight_concentration_prior_type="dirichlet_distribution", random_state=0,
        **kw), gaussian_batches),
    "bayesian-bernoulli": (lambda **kw: daskem.BayesianBernoulliMixture(4, random_state=0, **kw), bernoulli_batches),
    "bayesian-poisson": (lambda **kw: daskem.BayesianPoissonMixture(
        4, weight_concentration_prior_type="dirichlet_distribution", random_state=0, **kw), poisson_batches),
}


def parameters(model) -> dict[str, np.ndarray]:
    """The fitted arrays of a model (those its model file stores)."""
    return {name: np.asarray(values) for name, (_, values) in model.family_.variables(model.params).items()}


def assert_close(a: dict[str, np.ndarray], b: dict[str, np.ndarray], rtol: float) -> None:
    """Each array equal to ``rtol`` of its own scale (its largest magnitude): entries near 0 of an array
    of larger ones carry the rounding of the larger."""
    assert a.keys() == b.keys()
    for name in a:
        scale = np.abs(b[name]).max()
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=rtol * scale, err_msg=name)


def assert_same(a, b) -> None:
    for name, array in parameters(a).items():
        np.testing.assert_array_equal(array, parameters(b)[name], err_msg=name)
    assert a.lower_bound_ == b.lower_bound_ and a.n_batches_ == b.n_batches_


def streamed(model, stream: list, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a first batch's fit may stop at max_iter
        for batch in stream:
            model.partial_fit(batch, **kwargs)
    return model


def copied(model):
    """A model as its model file would give it back, in memory."""
    return type(model).from_dataset(model.to_dataset())


# ------------------------------------------------------------------ the textbook running average


def textbook_gaussian(resp: np.ndarray, X: np.ndarray, kind: str) -> dict[str, np.ndarray]:
    """Per-unit-weight raw moments of a batch: N_k, Σ r x, Σ r x xᵀ (diag: Σ r x²), each / n."""
    n = len(X)
    second = np.einsum("ik,ij,il->kjl", resp, X, X) if kind in ("full", "tied") else resp.T @ X**2
    return {"n": resp.sum(axis=0) / n, "s1": resp.T @ X / n, "s2": second / n}


def textbook_gaussian_m_step(stats: dict[str, np.ndarray], kind: str, reg: float) -> dict[str, np.ndarray]:
    nk = stats["n"]
    means = stats["s1"] / nk[:, None]
    identity = np.eye(means.shape[1])
    if kind == "full":
        covariances = stats["s2"] / nk[:, None, None] - means[:, :, None] * means[:, None, :] + reg * identity
    elif kind == "tied":
        covariances = (stats["s2"].sum(axis=0) - np.einsum("k,ki,kj->ij", nk, means, means)) / nk.sum() + reg * identity
    else:
        covariances = stats["s2"] / nk[:, None] - means**2 + reg
        if kind == "spherical":
            covariances = covariances.mean(axis=1)
    return {"weights": nk / nk.sum(), "means": means, "covariances": covariances}


def textbook_product(resp: np.ndarray, X: np.ndarray) -> dict[str, np.ndarray]:
    """N_k, Σ r x over observed values, Σ r over missing ones, each / n (rows with nothing observed
    weigh 0)."""
    gaps = np.isnan(X)
    n = (~gaps.all(axis=1)).sum()
    return {"n": resp.sum(axis=0) / n, "s1": resp.T @ np.where(gaps, 0.0, X) / n, "unseen": resp.T @ gaps / n}


def textbook_product_m_step(stats: dict[str, np.ndarray], floor) -> dict[str, np.ndarray]:
    nk = stats["n"]
    return {"weights": nk / nk.sum(), "means": floor(stats["s1"] / (nk[:, None] - stats["unseen"]))}


@pytest.mark.parametrize("kind", [*COVARIANCE_TYPES, "bernoulli", "poisson", "bernoulli-nan", "poisson-nan"])
def test_decay_one_is_the_running_average_of_the_textbook_batch_statistics(kind):
    family = kind.split("-")[0]
    model, make = CASES[family]
    model = model(decay=1.0)
    stream = make(5)
    if kind.endswith("nan"):
        rng = np.random.default_rng(3)
        stream = [np.where(rng.random(b.shape) < 0.2, np.nan, b) for b in stream]
    running, log_likelihoods = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i, batch in enumerate(stream):
            seen = ~np.isnan(batch).all(axis=1)  # rows with nothing observed weigh 0
            if i:  # responsibilities at the parameters before this batch
                resp, log_p = model.predict_proba(batch), model.score_samples(batch)[seen].mean()
            model.partial_fit(batch)
            if not i:  # the first batch: its statistics at the fitted parameters
                resp, log_p = model.predict_proba(batch), model.score_samples(batch)[seen].mean()
            log_likelihoods.append(log_p)
            # the running mean log-likelihood: 1e-12 relative, a mean of a few hundred numbers either way
            assert model.lower_bound_ == pytest.approx(np.mean(log_likelihoods), rel=1e-12)
            if family in COVARIANCE_TYPES:
                running.append(textbook_gaussian(resp, batch, family))
            else:
                running.append(textbook_product(resp, batch))
            average = {name: np.mean([stats[name] for stats in running], axis=0) for name in running[0]}
            if family in COVARIANCE_TYPES:
                expected = textbook_gaussian_m_step(average, family, model.reg_covar)
            else:
                expected = textbook_product_m_step(average, model.family_.floor)
            if i:
                # 1e-12 of each array's scale: the model sums moments about the components' means and
                # blends them by Chan's update, the textbook raw moments (data within 10 of the origin,
                # variances near 1: rounding of order 1e-14 either way).
                assert_close(parameters(model), expected, 1e-12)
    assert model.n_batches_ == len(stream)


def test_a_second_batch_blends_in_by_half_under_decay_one_and_by_two_to_the_minus_decay_otherwise():
    stream = gaussian_batches(3)
    for decay in (1.0, 0.6):
        model = streamed(CASES["full"][0](decay=decay), stream[:1])
        family, params, start = model.family_, model.params, model._stream.running
        model.partial_fit(stream[1])
        batch = family.stepwise_statistics(family.chunk_statistics(stream[1], params, 0, None))
        gamma = 2.0**-decay
        expected = blend_centred(tuple(start.values()), tuple(batch.values()), gamma, "full")
        # 1e-15 of the scale: one blend, the same arithmetic but for the pass's chunking (one chunk).
        assert_close(model._stream.running, dict(zip(start, expected)), 1e-15)


def test_chans_update_equals_the_pooled_moments_of_the_rows():
    rng = np.random.default_rng(0)
    a, b = rng.normal(5.0, 2.0, (40, 3)), rng.normal(-3.0, 1.0, (60, 3))
    resp_a, resp_b = rng.dirichlet(np.ones(2), 40), rng.dirichlet(np.ones(2), 60)

    def centred(X, resp):
        nk, s1 = resp.sum(axis=0), resp.T @ X
        s2 = np.einsum("ik,ij,il->kjl", resp, X, X)
        w, mu, m = centred_moments(nk, s1, s2, np.zeros((2, 3)), "full")
        return w / len(X), mu, m / len(X)

    gamma = 0.3
    blended = blend_centred(centred(a, resp_a), centred(b, resp_b), gamma, "full")
    # Direct: rows of a weighted (1 − γ)/40, rows of b γ/60.
    X = np.vstack([a, b])
    resp = np.vstack([resp_a * (1 - gamma) / 40, resp_b * gamma / 60])
    w = resp.sum(axis=0)
    mu = resp.T @ X / w[:, None]
    scatter = np.einsum("ik,kij,kil->kjl", resp, X[None] - mu[:, None], X[None] - mu[:, None])
    # 1e-13 of each scale: a handful of roundings of numbers of order 10.
    assert_close(dict(zip("wms", blended)), {"w": w, "m": mu, "s": scatter}, 1e-13)


# ------------------------------------------------------------------ a stationary stream


def matched(means: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The order of ``means``' components that puts each next to the nearest of ``reference``'s."""
    cost = ((means[:, None] - reference[None]) ** 2).sum(axis=2)
    rows, columns = linear_sum_assignment(cost)
    return rows[np.argsort(columns)]


@pytest.mark.parametrize("decay", [0.7, 1.0])
def test_a_stationary_stream_approaches_the_batch_fit_on_all_its_rows(decay):
    truth = make_mixture_data(100 * 200 + 5000, n_features=2, n_components=3, seed=11, separation=4.0)
    held_out, rows = truth[:5000], truth[5000:]
    full = daskem.GaussianMixture(3, random_state=0).fit(rows)
    model = daskem.GaussianMixture(3, random_state=0, decay=decay)
    distances = {}
    for i, batch in enumerate(batches(rows, 200)):
        model.partial_fit(batch)
        if i + 1 in (20, 100):
            order = matched(model.means_, full.means_)
            distances[i + 1] = np.abs(model.means_[order] - full.means_).max() + np.abs(
                model.covariances_[order] - full.covariances_).max()
    assert model.n_batches_ == 100
    # The batch fit is the maximum likelihood of all 20,000 rows; the stream's estimate averages statistics
    # of about 100**decay batches' rows: its held-out mean log-likelihood per row differs by O(p / n) ~ 1e-3.
    assert abs(model.score(held_out) - full.score(held_out)) < 1e-2
    assert distances[100] < distances[20]
    assert abs(model.lower_bound_ - full.score(rows)) < 0.05  # the running mean log-likelihood tracks the data's


# ------------------------------------------------------------------ invariances


@given(seed=st.integers(0, 2**32 - 1), case=st.sampled_from(sorted(CASES)))
@settings(max_examples=12, deadline=None)
def test_the_order_of_rows_within_a_batch_does_not_matter(seed, case):
    model, make = CASES[case]
    stream = make(4)
    start = streamed(model(), stream[:1])  # the first batch's fit starts from a sample of rows: kept in order
    rng = np.random.default_rng(seed)
    straight = streamed(copied(start), stream[1:])
    shuffled = streamed(copied(start), [batch[rng.permutation(len(batch))] for batch in stream[1:]])
    # 1e-9 of each scale: only the order of the sums differs (rounding of order 1e-15 per step, over a few
    # M-steps that amplify it by the conditioning of the covariances).
    assert_close(parameters(shuffled), parameters(straight), 1e-9)


def test_integer_weights_are_repeated_rows():
    stream = gaussian_batches(3)
    start = streamed(CASES["full"][0](), stream[:1])
    counts = np.random.default_rng(2).integers(0, 3, size=BATCH)
    weighted = copied(start).partial_fit(stream[1], sample_weight=counts.astype(float))
    repeated = copied(start).partial_fit(np.repeat(stream[1], counts, axis=0))
    # 1e-12 of each scale: the same sums, weighted or repeated, in another order.
    assert_close(parameters(weighted), parameters(repeated), 1e-12)


# ------------------------------------------------------------------ model files


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_a_stream_saved_and_loaded_continues_bitwise(tmp_path, case, suffix):
    model, make = CASES[case]
    stream = make(5)
    model = streamed(model(decay=0.8), stream[:3])
    model.save(tmp_path / f"model{suffix}")
    loaded = daskem.load(tmp_path / f"model{suffix}")
    assert loaded.decay == 0.8 and loaded.n_batches_ == 3
    assert_same(loaded, model)
    assert_same(streamed(loaded, stream[3:]), streamed(model, stream[3:]))
    assert model.n_batches_ == 5


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_fitted_model_seeds_a_stream_from_its_parameters(tmp_path, case):
    model, make = CASES[case]
    stream = make(3)
    fitted = model().fit(stream[0])
    assert fitted.n_batches_ == 0
    family = fitted.family_
    # The running statistics of a fit are its parameters' expected statistics: their M-step gives them back
    # (1e-13 of each scale: a division and a product by the weights, and reg_covar taken off and put back).
    assert_close(parameters_of(family, family.stepwise_m_step(family.stepwise_start(fitted.params))),
                 parameters(fitted), 1e-13)
    fitted.save(tmp_path / "fit.zarr")
    loaded = daskem.load(tmp_path / "fit.zarr")
    assert_same(streamed(loaded, stream[1:]), streamed(fitted, stream[1:]))
    assert loaded.n_batches_ == 2


def parameters_of(family, params) -> dict[str, np.ndarray]:
    return {name: np.asarray(values) for name, (_, values) in family.variables(params).items()}


def test_a_seeded_stream_blends_the_parameters_expected_statistics_with_the_batch():
    stream = gaussian_batches(2)
    fitted = CASES["full"][0](decay=1.0).fit(stream[0])
    params, reg = fitted.params, fitted.reg_covar
    resp = fitted.predict_proba(stream[1])
    w, mu, cov = params.weights, params.means, params.covariances
    expected_stats = {"n": w, "s1": w[:, None] * mu,
                      "s2": w[:, None, None] * (cov - reg * np.eye(3) + mu[:, :, None] * mu[:, None, :])}
    batch = textbook_gaussian(resp, stream[1], "full")
    average = {name: (expected_stats[name] + batch[name]) / 2 for name in batch}
    fitted.partial_fit(stream[1])
    # 1e-12 of each scale, as for the running average of batches.
    assert_close(parameters(fitted), textbook_gaussian_m_step(average, "full", reg), 1e-12)


def test_fit_drops_the_running_statistics():
    stream = gaussian_batches(3)
    model = streamed(CASES["diag"][0](), stream)
    assert model.n_batches_ == 3 and "running_weights" in model.to_dataset()
    model.fit(stream[0])
    assert model.n_batches_ == 0 and "running_weights" not in model.to_dataset()


def test_a_model_file_with_part_of_the_running_statistics_or_a_bad_decay_is_refused(tmp_path):
    model = streamed(CASES["full"][0](), gaussian_batches(2))
    ds = model.to_dataset()
    with pytest.raises(ModelFileError, match="running_scatter"):
        daskem.GaussianMixture.from_dataset(ds.drop_vars("running_scatter"))
    with pytest.raises(ModelFileError, match="decay"):
        daskem.GaussianMixture.from_dataset(ds.assign_attrs(decay=0.4))
    with pytest.raises(ModelFileError, match="running_sums"):  # another family's running statistics
        daskem.GaussianMixture.from_dataset(ds.assign(running_sums=ds["running_means"]))


# ------------------------------------------------------------------ far from the origin


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_far_from_the_origin_the_stream_is_the_shifted_stream(kind):
    shift = 1e6
    stream = gaussian_batches(6)
    start = CASES[kind][0]().fit(stream[0])
    ds = start.to_dataset()
    moved = daskem.GaussianMixture.from_dataset(ds.assign(means=ds["means"] + shift))
    near = streamed(copied(start), stream[1:])
    far = streamed(moved, [batch + shift for batch in stream[1:]])
    scale = np.abs(stream[0]).max()
    # 1e-8 of the data's scale: rows 1e6 from the origin carry rounding of 1e6 × 1e-16 = 1e-10 each, which
    # moments about the components' means and Chan's update do not amplify (raw moments would lose all).
    np.testing.assert_allclose(far.means_ - shift, near.means_, rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(far.covariances_, near.covariances_, rtol=0,
                               atol=1e-8 * np.abs(near.covariances_).max())
    np.testing.assert_allclose(far.weights_, near.weights_, rtol=0, atol=1e-8)


# ------------------------------------------------------------------ inputs: missing values, Dask, Zarr


@pytest.mark.parametrize("case", ["full", "diag", "bernoulli", "poisson", "bayesian-bernoulli", "bayesian-poisson"])
def test_missing_values_rows_with_nothing_observed_change_nothing(case):
    model, make = CASES[case]
    rng = np.random.default_rng(8)
    stream = [np.where(rng.random(batch.shape) < 0.15, np.nan, batch) for batch in make(4)]
    start = streamed(model(), stream[:1])
    empty = np.full((30, stream[0].shape[1]), np.nan)
    plain = streamed(copied(start), stream[1:])
    padded = streamed(copied(start), [np.vstack([batch[:70], empty, batch[70:]]) for batch in stream[1:]])
    assert all(np.isfinite(array).all() for array in parameters(plain).values())
    assert plain.n_missing_values_ > 0 and padded.n_empty_rows_ == 30
    # 1e-12 of each scale: rows with nothing observed weigh 0; only the order of the sums may differ.
    assert_close(parameters(padded), parameters(plain), 1e-12)


@pytest.mark.parametrize("case", ["full", "spherical", "bernoulli", "poisson"])
def test_dask_and_zarr_batches_stream_as_numpy_batches(tmp_path, case):
    model, make = CASES[case]
    stream = make(4)
    start = streamed(model(), stream[:1])
    in_memory = streamed(copied(start), stream[1:])
    lazy = streamed(copied(start), [da.from_array(batch, chunks=(40, -1)) for batch in stream[1:]])
    stored = streamed(copied(start), [write_zarr(tmp_path / f"batch{i}.zarr", batch, 40)
                                      for i, batch in enumerate(stream[1:])], variable="X")
    # 1e-12 of each scale: chunks of 40 rows add their sums in another order than one chunk of 150.
    assert_close(parameters(lazy), parameters(in_memory), 1e-12)
    assert_close(parameters(stored), parameters(in_memory), 1e-12)


# ------------------------------------------------------------------ errors


def test_a_batch_of_other_features_an_empty_batch_or_one_without_weight_is_refused():
    stream = gaussian_batches(2)
    model = streamed(CASES["full"][0](), stream[:1])
    with pytest.raises(InputError, match="X has 2 features, but GaussianMixture is expecting 3"):
        model.partial_fit(stream[1][:, :2])
    with pytest.raises(InputError, match="empty"):
        model.partial_fit(stream[1][:0])
    with pytest.raises(InputError, match="sums to zero"):
        model.partial_fit(stream[1], sample_weight=np.zeros(BATCH))
    with pytest.raises(InputError, match="no weight"):  # every row with nothing observed
        model.partial_fit(np.full((10, 3), np.nan))
    assert model.n_batches_ == 1  # nothing was blended in


@pytest.mark.parametrize("decay", [0.5, 0.3, 1.5, float("nan"), "fast", None])
def test_a_decay_outside_half_to_one_is_refused(decay):
    with pytest.raises(InputError, match="decay must be a finite number > 0.5 and <= 1"):
        daskem.GaussianMixture(2, decay=decay).partial_fit(gaussian_batches(1)[0])


def test_families_take_their_running_statistics_in_their_own_shapes():
    params = GaussianParams.from_covariances(np.array([0.4, 0.6]), np.zeros((2, 3)), np.ones((2, 3)), "diag")
    assert GaussianFamily(covariance_type="spherical").stepwise_dims()["running_scatter"] == ("component", "feature")
    assert GaussianFamily(covariance_type="diag").stepwise_start(params)["running_scatter"].shape == (2, 3)
    assert BernoulliFamily().stepwise_dims() == PoissonFamily().stepwise_dims()


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_a_bayesian_stream_is_the_posterior_of_the_averaged_sums_times_the_rows_seen(kind):
    """Stepwise variational EM: under decay=1 the posterior after each batch is the variational M-step of the
    textbook running average of the batches' sums, scaled up to every row seen (the posterior of all of them)."""
    model = daskem.BayesianGaussianMixture(4, covariance_type=kind, random_state=0, decay=1.0)
    stream, running, seen = gaussian_batches(5), [], 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i, batch in enumerate(stream):
            if i:
                resp = model.predict_proba(batch)
            model.partial_fit(batch)
            if not i:
                resp = model.predict_proba(batch)
            seen += len(batch)
            running.append(textbook_gaussian(resp, batch, kind))
            average = {name: np.mean([stats[name] for stats in running], axis=0) for name in running[0]}
            point = textbook_gaussian_m_step(average, kind, model.reg_covar)
            expected = variational.posterior(average["n"] * seen, point["means"], point["covariances"],
                                             model.family_.prior, kind)
            if i:
                # 1e-11 of each array's scale: Chan's update and the undoing of the prior's terms against raw
                # moments, data within 10 of the origin (rounding of order 1e-14 per step either way)
                for name in ("means", "covariances", "mean_precision", "degrees_of_freedom", "weight_concentration"):
                    ours, theirs = getattr(model.params, name), getattr(expected, name)
                    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-11 * np.abs(theirs).max(), err_msg=name)


@pytest.mark.parametrize("case", ["bayesian-bernoulli", "bayesian-poisson"])
@pytest.mark.parametrize("holes", [0.0, 0.2], ids=["complete", "missing"])
def test_a_bayesian_product_stream_is_the_posterior_of_the_averaged_sums_times_the_rows_seen(case, holes):
    """As for Gaussians: under decay=1 the posterior after each batch is the variational M-step of the textbook
    running average of the batches' sums (observed values and counts of missing ones), times every row seen."""
    model, make = CASES[case]
    model, stream, running, seen = model(decay=1.0), make(5), [], 0
    rng = np.random.default_rng(4)
    stream = [np.where(rng.random(batch.shape) < holes, np.nan, batch) for batch in stream]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i, batch in enumerate(stream):
            if i:
                resp = model.predict_proba(batch)
            model.partial_fit(batch)
            if not i:
                resp = model.predict_proba(batch)
            seen += int((~np.isnan(batch).all(axis=1)).sum())
            running.append(textbook_product(resp * ~np.isnan(batch).all(axis=1)[:, None], batch))
            average = {name: np.mean([stats[name] for stats in running], axis=0) for name in running[0]}
            expected = model.family_.posterior(average["n"] * seen, average["s1"] * seen, average["unseen"] * seen)
            if i:
                # 1e-12 of each array's scale: linear blends against a plain average of the same sums
                for name in ("weight_concentration", "a", "b", "means", "weights"):
                    ours, theirs = getattr(model.params, name), getattr(expected, name)
                    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12 * np.abs(theirs).max(), err_msg=name)
