"""Kernels (layer 1) against direct formulas on small arrays."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from daskem.exceptions import CovarianceError, NonFiniteDataError
from daskem.families.gaussian import GaussianFamily, GaussianStatistics
from daskem.kernels import block_kernels, estep, fused, gaussian, scans
from daskem.kernels.gaussian import GaussianParams
from daskem.kernels.kmeans import kmeans_plusplus, lloyd, squared_distances
from tests.helpers import make_mixture_data


def random_params(n_components: int, n_features: int, seed: int = 0, shift: float = 0.0) -> GaussianParams:
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n_components, n_features, n_features))
    covariances = factors @ np.swapaxes(factors, 1, 2) + np.eye(n_features)
    weights = rng.dirichlet(np.ones(n_components))
    means = rng.normal(scale=2.0, size=(n_components, n_features)) + shift
    return GaussianParams.from_covariances(weights, means, covariances)


def direct_log_densities(X: np.ndarray, params: GaussianParams) -> np.ndarray:
    return np.column_stack(
        [
            np.log(w) + multivariate_normal(mean=m, cov=c).logpdf(X)
            for w, m, c in zip(params.weights, params.means, params.covariances)
        ]
    )


def test_e_step_matches_scipy_densities():
    X = make_mixture_data(n_samples=200, n_features=4)
    params = random_params(3, 4)
    log_prob_norm, log_resp = estep.e_step(X, params)
    expected = direct_log_densities(X, params)
    np.testing.assert_allclose(log_prob_norm, np.logaddexp.reduce(expected, axis=1), rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_resp).sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(log_resp, expected - log_prob_norm[:, None], rtol=1e-10, atol=1e-10)


def test_compiled_exp_is_within_an_ulp_of_numpy():
    """The responsibilities' exp: 1 ulp of NumPy's above −708, 0 at and below, NaN kept."""
    x = np.concatenate([np.linspace(-707.999, 0.0, 20_001), -np.logspace(-300, 2.8, 2_001), [0.0, -0.5 * np.log(2)]])
    found = np.array([fused._exp(v) for v in x])
    expected = np.exp(x)
    # 2 ulps of the result (one from each of the reduction and the polynomial, measured: 1.0)
    np.testing.assert_allclose(found, expected, rtol=2 * np.finfo(float).eps, atol=0)
    assert fused._exp(-708.0) == fused._exp(-708.5) == fused._exp(-np.inf) == 0.0
    assert np.isnan(fused._exp(np.nan))


def test_compiled_float32_exp_is_within_an_ulp_of_the_exact_value():
    """The float32 path's exp: within 1 ulp of float32 (the exact value from float64) above −87,
    0 at and below, NaN kept."""
    x = np.concatenate([np.linspace(-86.999, 0.0, 20_001), -np.logspace(-30, 1.9, 2_001)]).astype(np.float32)
    found = np.array([fused._exp32(v) for v in x], dtype=np.float64)
    exact = np.exp(x.astype(np.float64))
    ulps = np.abs(found - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert ulps.max() <= 1.0  # measured 0.87: the reduction's and the polynomial's rounding together
    minus = np.float32
    assert fused._exp32(minus(-87.0)) == fused._exp32(minus(-100.0)) == fused._exp32(minus(-np.inf)) == 0.0
    assert np.isnan(fused._exp32(minus(np.nan)))


def test_e_step_stays_finite_for_far_rows():
    params = random_params(2, 3)
    X = np.full((5, 3), 1e3)  # densities underflow to 0 in linear space
    log_prob_norm, log_resp = estep.e_step(X, params)
    assert np.isfinite(log_prob_norm).all() and np.isfinite(log_resp).all()
    np.testing.assert_allclose(np.exp(log_resp).sum(axis=1), 1.0)


# float64: the same sums in another order (rounding of 150 terms, far below 1e-10 of scale).
# float32 rows with full covariances are computed in float32 inside blocks: ~1e-7 relative
# rounding per product and per sum of 150 terms; 1e-5 of scale leaves a wide margin.
@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_chunk_statistics_are_the_direct_sums(dtype, rtol):
    X = make_mixture_data(n_samples=150, n_features=3).astype(dtype)
    params = random_params(2, 3)
    stats = estep.chunk_statistics(X, params)
    loglik, n_rows, nk, s1, s2 = stats.log_likelihood, stats.n_samples, stats.nk, stats.s1, stats.s2
    X64 = X.astype(np.float64)
    expected = direct_log_densities(X64, params)
    resp = np.exp(expected - np.logaddexp.reduce(expected, axis=1)[:, None])
    diffs = X64[:, None, :] - stats.reference[None]
    assert n_rows == 150
    assert nk.dtype == s1.dtype == s2.dtype == np.float64
    assert stats.reference.shape == params.means.shape  # the moments below are about these points
    np.testing.assert_allclose(loglik, np.logaddexp.reduce(expected, axis=1).sum(), rtol=rtol)
    np.testing.assert_allclose(nk, resp.sum(axis=0), rtol=rtol)
    direct_s1 = np.einsum("nk,nkd->kd", resp, diffs)
    direct_s2 = np.einsum("nk,nkd,nke->kde", resp, diffs, diffs)
    np.testing.assert_allclose(s1, direct_s1, rtol=0, atol=rtol * np.abs(direct_s2).max() ** 0.5 * nk.max() ** 0.5)
    np.testing.assert_allclose(s2, direct_s2, rtol=0, atol=rtol * np.abs(direct_s2).max())


def test_m_step_is_the_weighted_mean_and_covariance():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(100, 3))
    resp = rng.dirichlet(np.ones(2), size=100)
    reference = rng.normal(size=(2, 3))
    params = gaussian.m_step(*gaussian.weighted_moments(X, resp, reference), reference, reg_covar=0.1)
    for k in range(2):
        r = resp[:, k]
        mean = (r[:, None] * X).sum(axis=0) / r.sum()
        covariance = np.cov(X.T, aweights=r, bias=True) + 0.1 * np.eye(3)
        np.testing.assert_allclose(params.means[k], mean, rtol=1e-12)
        np.testing.assert_allclose(params.covariances[k], covariance, rtol=1e-12)
    np.testing.assert_allclose(params.weights, resp.sum(axis=0) / 100, rtol=1e-12)
    precisions = np.linalg.inv(params.covariances)
    np.testing.assert_allclose(params.precisions, precisions, rtol=1e-10)


def test_moments_about_the_means_survive_a_shift_of_1e8():
    """Raw moments would lose every digit of the variance here; centred ones keep them."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(1000, 2))
    resp = np.ones((1000, 1))
    truth = np.cov(X.T, bias=True)
    shifted = X + 1e8
    reference = shifted[:1]  # any point near the data will do
    params = gaussian.m_step(*gaussian.weighted_moments(shifted, resp, reference), reference, 0.0)
    np.testing.assert_allclose(params.covariances[0], truth, rtol=1e-6)
    raw = gaussian.m_step_arrays(*gaussian.weighted_moments(shifted, resp, np.zeros((1, 2))), np.zeros((1, 2)), 0.0,
                                 "full")[2]
    assert not np.allclose(raw[0], truth, rtol=1e-2)  # the failure this design avoids


def test_precision_cholesky_inverts_the_covariance():
    params = random_params(3, 4)
    u = params.precisions_cholesky
    np.testing.assert_allclose(u @ np.swapaxes(u, 1, 2) @ params.covariances, np.eye(4)[None].repeat(3, 0), atol=1e-10)
    assert np.allclose(np.tril(u, -1), 0.0)


def test_non_positive_definite_covariance_names_the_component():
    covariances = np.stack([np.eye(2), np.array([[1.0, 2.0], [2.0, 1.0]])])
    with pytest.raises(CovarianceError, match="component 1.*reg_covar"):
        gaussian.precision_cholesky(covariances)


def test_collapsed_component_asks_for_reg_covar():
    X = np.zeros((10, 2))
    X[:, 0] = np.arange(10)  # all rows on a line: the second feature has no variance
    resp = np.ones((10, 1))
    with pytest.raises(CovarianceError, match="component 0.*reg_covar"):
        gaussian.m_step(*gaussian.weighted_moments(X, resp, X[:1]), X[:1], reg_covar=0.0)


def test_from_precisions_round_trips_with_from_covariances():
    params = random_params(2, 3)
    again = GaussianParams.from_precisions(params.weights, params.means, params.precisions)
    np.testing.assert_allclose(again.covariances, params.covariances, rtol=1e-10)
    with pytest.raises(CovarianceError, match="precision matrix of component 0"):
        GaussianParams.from_precisions(params.weights, params.means, -params.precisions)


def test_non_finite_rows_are_reported_with_the_first_row_and_their_chunk():
    X = make_mixture_data(n_samples=20, n_features=3)
    X[4, 1] = np.nan
    X[7, 0] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from NumPy on the way
        with pytest.raises(NonFiniteDataError,
                           match=r"first at row 104 \(2 value\(s\) in 2 row\(s\) among rows 100–119\)"):
            estep.chunk_statistics(X, random_params(2, 3), first_row=100)


def test_n_parameters_matches_scikit_learn():
    from sklearn.mixture import GaussianMixture

    model = GaussianMixture(n_components=5)
    model.means_ = np.zeros((5, 7))
    assert gaussian.n_parameters(5, 7) == model._n_parameters()


def test_sample_draws_from_the_mixture():
    params = random_params(2, 2)
    X, labels = gaussian.sample(params, 20000, np.random.default_rng(0))
    assert X.shape == (20000, 2) and labels.shape == (20000,)
    np.testing.assert_allclose(np.bincount(labels) / 20000, params.weights, atol=0.02)
    for k in range(2):
        np.testing.assert_allclose(X[labels == k].mean(axis=0), params.means[k], atol=0.15)


def test_kmeans_plusplus_and_lloyd_find_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    X = np.vstack([c + rng.normal(size=(200, 2)) for c in centres])
    seeds = kmeans_plusplus(X, 3, rng)
    assert all(any(np.array_equal(s, row) for row in X) for s in seeds)  # seeds are rows
    found, labels, inertia = lloyd(X, seeds, max_iter=20)
    order = np.argsort(found[:, 0] + 2 * found[:, 1])
    np.testing.assert_allclose(found[order], centres, atol=0.3)
    assert len(np.unique(labels)) == 3
    np.testing.assert_allclose(inertia, squared_distances(X, found).min(axis=1).sum())


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_compiled_seeding_costs_are_the_direct_ones(dtype, rtol):
    """Within the rounding of the rows' dtype: sums of 500 terms in another order stay far below
    1e-12 of their size in float64; float32 distances of O(1) values round at ~1e-7 each."""
    rng = np.random.default_rng(4)
    X, candidates = rng.normal(size=(500, 3)).astype(dtype), rng.normal(size=(5, 3)).astype(dtype)
    closest, weights = rng.uniform(0, 4, size=500), rng.uniform(size=500)
    costs = np.empty(5)
    scans.seeding_costs(np.ascontiguousarray(X.T), candidates, closest, weights, costs)
    distances = ((X[:, np.newaxis, :].astype(float) - candidates) ** 2).sum(axis=2)  # (500, 5)
    np.testing.assert_allclose(costs, weights @ np.minimum(closest[:, np.newaxis], distances), rtol=rtol)
    before = closest.copy()
    scans.lower_closest(np.ascontiguousarray(X.T), candidates[2], closest)
    np.testing.assert_allclose(closest, np.minimum(before, distances[:, 2]), rtol=rtol)


def test_lloyd_gives_the_same_bits_on_any_number_of_threads(monkeypatch):
    """Each thread labels its own rows, so how the rows are shared cannot change the result."""
    import daskem.kernels.kmeans as kmeans

    rng = np.random.default_rng(6)
    X, seeds = rng.normal(size=(3001, 4)), rng.normal(size=(20, 4))
    results = []
    for threads in (1, 2, 5):
        monkeypatch.setattr(kmeans, "LLOYD_THREADS", threads)
        results.append(lloyd(X, seeds, max_iter=5))
    for centres, labels, inertia in results[1:]:
        assert np.array_equal(centres, results[0][0]) and np.array_equal(labels, results[0][1])
        assert inertia == results[0][2]
    # Labels come from float32 distances: each row's is the least to within float32's rounding.
    distances = squared_distances(X, results[0][0])
    np.testing.assert_allclose(distances[np.arange(len(X)), results[0][1]], distances.min(axis=1), rtol=1e-5)


def test_kmeans_plusplus_copes_with_fewer_distinct_rows_than_clusters():
    X = np.zeros((10, 2))
    centres = kmeans_plusplus(X, 4, np.random.default_rng(0))
    assert centres.shape == (4, 2) and np.all(centres == 0)


@pytest.mark.parametrize(
    ("covariances", "covariance_type"),
    [(np.array([np.eye(2), [[np.nan, 0.0], [0.0, 1.0]]]), "full"), (np.array([[1.0, 1.0], [np.inf, 1.0]]), "diag")],
)
def test_a_covariance_that_is_not_finite_is_named_not_passed_to_scipy(covariances, covariance_type):
    with pytest.raises(CovarianceError, match="component 1"):
        gaussian.precision_cholesky(covariances, covariance_type)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("separation", [3.0, 30.0, 300.0, 1e4, 1e6])
def test_moments_stay_accurate_however_far_apart_the_components(covariance_type, separation):
    """Moments come from the expanded terms about one point while their amplification stays
    within the kernel's limit, from whitened products beyond (full and tied), and from exact
    differences further still."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(3000, 4)) - separation, rng.normal(size=(3000, 4)) + separation])
    means = np.array([[-separation] * 4, [separation] * 4]) + 0.1
    variances = {"full": np.stack([np.eye(4)] * 2), "tied": np.eye(4), "diag": np.ones((2, 4)),
                 "spherical": np.ones(2)}[covariance_type]
    params = GaussianParams.from_covariances(np.array([0.4, 0.6]), means, variances, covariance_type)
    # The means lie 1.2 × separation from c in each of 4 features: an expanded amplification of
    # 5.76 × separation² (limit 1e4), a whitened one of 2.4 × separation (limit 1e4).
    expected_kernel = (block_kernels.ExpandedKernel if separation < 40 else
                       block_kernels.WhitenedKernel if separation < 4000 and covariance_type in ("full", "tied") else
                       block_kernels.DifferencesKernel)
    assert type(block_kernels.kernel_for(params)) is expected_kernel
    fitted, _ = GaussianFamily(covariance_type, reg_covar=0.0).m_step(GaussianStatistics.from_chunk(X, params))
    # The exact M-step, two passes over the rows in float64.
    resp = np.exp(estep.e_step(X, params)[1])
    nk = resp.sum(axis=0)
    mu = resp.T @ X / nk[:, None]
    covariance = np.stack([(resp[:, k, None] * (X - mu[k])).T @ (X - mu[k]) / nk[k] for k in range(2)])
    expected = {"full": covariance, "tied": (nk[:, None, None] * covariance).sum(axis=0) / nk.sum(),
                "diag": np.diagonal(covariance, axis1=1, axis2=2),
                "spherical": np.diagonal(covariance, axis1=1, axis2=2).mean(axis=1)}[covariance_type]
    # 1e-9 of scale: the expanded terms lose up to ~1e-10 at their limit (see the kernels);
    # the whitened products and the exact path ~1e-14.
    np.testing.assert_allclose(fitted.covariances, expected, rtol=0, atol=1e-9 * np.abs(expected).max())
    np.testing.assert_allclose(fitted.means, mu, rtol=0, atol=1e-9 * (separation + 1))


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("separation", [3.0, 1e4])
def test_float32_kernels_agree_with_float64_on_the_same_rows(covariance_type, separation):
    """Every kernel in float32 (expanded near, differences far apart) against float64 arithmetic."""
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(size=(3000, 4)) - separation, rng.normal(size=(3000, 4)) + separation])
    X = X.astype(np.float32)
    means = np.array([[-separation] * 4, [separation] * 4]) + 0.1
    variances = {"full": np.stack([np.eye(4)] * 2), "tied": np.eye(4), "diag": np.ones((2, 4)),
                 "spherical": np.ones(2)}[covariance_type]
    params = GaussianParams.from_covariances(np.array([0.4, 0.6]), means, variances, covariance_type)
    assert type(block_kernels.kernel_for(params, np.float32)) is (
        block_kernels.ExpandedKernel if separation < 40 else block_kernels.DifferencesKernel)
    family = GaussianFamily(covariance_type, reg_covar=0.0)
    fast, _ = family.m_step(GaussianStatistics.from_chunk(X, params))
    exact, _ = family.m_step(GaussianStatistics.from_chunk(X.astype(np.float64), params))
    # float32 rounding of the terms and of per-block sums, ~1e-7 of scale; 1e-5 is the float32
    # path's promise.
    np.testing.assert_allclose(fast.covariances, exact.covariances, rtol=0, atol=1e-5 * np.abs(exact.covariances).max())
    np.testing.assert_allclose(fast.means, exact.means, rtol=0, atol=1e-5 * (separation + 1))


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_component_far_off_leaves_the_others_on_expanded_terms(covariance_type, dtype):
    """A component far from the rest in units of its own spread (a narrow one; for tied, one 2e4
    spreads away, of small weight, so that c stays near the others) gets exact differences, the
    others keep their expanded terms, and one log-sum-exp joins them: log-likelihoods, moments
    and ranges are the exact kernel's."""
    rng = np.random.default_rng(7)
    tied = covariance_type == "tied"
    means = np.vstack([rng.normal(size=(3, 4)), np.full((1, 4), 2e4 if tied else 50.0)])
    spreads = np.array([1.0, 1.5, 0.7, 1.0 if tied else 1e-3])
    variances = {"full": spreads[:, None, None] ** 2 * np.eye(4), "tied": np.eye(4),
                 "diag": np.repeat(spreads[:, None] ** 2, 4, axis=1), "spherical": spreads**2}[covariance_type]
    params = GaussianParams.from_covariances(np.array([0.33333, 0.33333, 0.33333, 1e-5]), means, variances,
                                             covariance_type)
    X = np.vstack([means[k] + spreads[k] * rng.normal(size=(n, 4)) for k, n in enumerate([2000, 2000, 2000, 700])])
    X, weights = X.astype(dtype), rng.uniform(size=len(X))
    kernel = block_kernels.kernel_for(params, dtype)
    assert type(kernel) is block_kernels.SplitKernel and kernel.far_index.tolist() == [3]
    kernel.block_rows = 1000  # several blocks, the last one short
    exact = block_kernels.DifferencesKernel(params, dtype)
    found, expected = kernel.accumulate(X, weights), exact.accumulate(X, weights)
    # A row's log-likelihood: the near components' expanded terms lose up to their kernel's limit
    # of 1e4 ulps (here c lies within 0.2 of their means: far fewer), 2e-12 in float64, 1e-3 in float32.
    limit = block_kernels.ExpandedKernel.MAX_AMPLIFICATION[dtype] * np.finfo(dtype).eps
    np.testing.assert_allclose(found, expected, rtol=0, atol=limit * np.abs(expected).max())
    np.testing.assert_allclose(kernel.log_prob(X), exact.log_prob(X), rtol=0,  # per component, unnormalised
                               atol=limit * np.abs(exact.log_prob(X)[:3]).max())
    # The sums: float64 ~1e-12 of scale; float32 ~1e-7, the per-row errors averaging out, inside
    # the float32 path's promise of 1e-5.
    tolerance = 1e-10 if dtype == np.float64 else 1e-5
    # Statistics about different points: compare N_k, N_k μ_k and N_k Σ_k, each relative to its scale.
    ours = gaussian.m_step_arrays(*kernel.sums(), kernel.reference, 0.0, covariance_type)
    theirs = gaussian.m_step_arrays(*exact.sums(), exact.reference, 0.0, covariance_type)
    nk = exact.sums()[0]
    scaled = [(weights_ * nk.sum(), (means_.T * nk).T, covariances if tied else (covariances.T * nk).T)
              for weights_, means_, covariances in (ours, theirs)]
    for name, a, b in zip(("nk", "nk·means", "nk·covariances"), *scaled):
        np.testing.assert_allclose(a, b, rtol=0, atol=tolerance * np.abs(b).max(), err_msg=name)
    np.testing.assert_array_equal(kernel.ranges(X)[0], X.min(axis=0).astype(np.float64))
    np.testing.assert_array_equal(kernel.ranges(X)[1], X.max(axis=0).astype(np.float64))


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_assignment_moments_equal_one_hot_weighted_moments(covariance_type):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 3)) + 1e3
    labels = rng.integers(-1, 4, size=500)  # −1: a row that belongs to no component
    weights = rng.uniform(size=500)
    reference = X[:4] + 0.5
    one_hot = np.zeros((500, 4))
    assigned = labels >= 0
    one_hot[np.flatnonzero(assigned), labels[assigned]] = weights[assigned]
    expected = gaussian.weighted_moments(X, one_hot, reference, covariance_type)
    found = gaussian.assignment_moments(X, labels, weights, reference, covariance_type)
    for name, a, b in zip(("nk", "s1", "s2"), found, expected):
        # The same sums in another order: rounding of 500 terms of order 1e6 (the moments are about
        # points 1e3 away from the rows' own clusters' centres), far below 1e-12 of their scale.
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max(), err_msg=name)


@pytest.mark.parametrize("weighted", [False, True])
def test_worst_rows_and_column_ranges_are_the_direct_ones(weighted):
    """The compiled helpers of chunk_statistics against a sort and NumPy's min and max."""
    rng = np.random.default_rng(5)
    values = rng.integers(0, 6, size=300).astype(float)  # many ties: the earlier row goes first
    weights = rng.choice([0.0, 1.0, 2.5], size=300) if weighted else np.empty(0)
    rows = np.arange(300) if not weighted else np.flatnonzero(weights > 0)
    expected = rows[np.lexsort((rows, values[rows]))][:7]
    np.testing.assert_array_equal(fused.worst_rows(values, weights, 7), expected)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    low, high = fused.column_ranges(X)
    assert low.dtype == high.dtype == np.float64
    np.testing.assert_array_equal(low, X.min(axis=0))
    np.testing.assert_array_equal(high, X.max(axis=0))


@pytest.mark.parametrize("spread", [1.0, 1e4])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_chunk_ranges_are_numpys_whichever_kernel_finds_them(spread, dtype):
    """The expanded kernel finds the columns' ranges in its own pass over the rows (several blocks
    here); the others (components far apart in units of their spread) in a separate one: both are
    NumPy's min and max."""
    rng = np.random.default_rng(6)
    X = (rng.normal(size=(5000, 5)) * rng.uniform(1, 100, size=5) + 50).astype(dtype)
    params = random_params(3, 5, seed=2, shift=50.0)
    params = GaussianParams.from_covariances(params.weights, params.means * spread, params.covariances)
    expanded = isinstance(block_kernels.kernel_for(params, dtype), block_kernels.ExpandedKernel)
    assert expanded == (spread == 1.0)
    stats = estep.chunk_statistics(X, params)
    np.testing.assert_array_equal(stats.minimum, X.min(axis=0).astype(np.float64))
    np.testing.assert_array_equal(stats.maximum, X.max(axis=0).astype(np.float64))
