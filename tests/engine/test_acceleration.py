"""Accelerated EM (SQUAREM, daskem/engine/acceleration.py): the extrapolation, the cycle, the passes, the stop.

The monotone log-likelihood of SQUAREM fits is checked with hypothesis in
tests/engine/test_properties.py (Gaussians, every covariance type) and
tests/families/test_families.py (Bernoulli, Poisson), which run the default.
"""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

import daskem
from daskem.engine.acceleration import extrapolate, remaining_after
from daskem.engine.em import run_em
from daskem.engine.passes import Blocks
from daskem.exceptions import ConvergenceWarning, CovarianceError
from daskem.families.bernoulli import BernoulliFamily
from daskem.families.gaussian import GaussianFamily
from daskem.families.poisson import PoissonFamily
from daskem.kernels.gaussian import COVARIANCE_TYPES
from tests.strategies import FAMILIES


def overlapping(n: int = 3000, seed: int = 0, spacing: float = 1.0) -> np.ndarray:
    """Rows from four unit 2-D Gaussians ``spacing`` standard deviations apart: EM needs hundreds of
    passes (at 1, it crawls for a thousand; at 2.5, it converges in a few hundred)."""
    rng = np.random.default_rng(seed)
    centres = spacing * np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    return centres[rng.integers(4, size=n)] + rng.normal(size=(n, 2))


def first_within(history: np.ndarray, target: float, within: float) -> int:
    """Passes after which ``history`` first comes within ``within`` of ``target`` (a large number if never)."""
    hits = np.flatnonzero(history >= target - within)
    return int(hits[0]) + 1 if hits.size else 10**9


def fit(X, acceleration="squarem", **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return daskem.GaussianMixture(4, random_state=0, acceleration=acceleration, **settings).fit(X)


def three_points(family, seed=0):
    """A start and its two EM steps on small data of ``family``."""
    rng = np.random.default_rng(seed)
    if isinstance(family, GaussianFamily):
        X = overlapping(400, seed)
        start = GaussianFamily(family.covariance_type).with_given(None, {
            "weights_init": np.full(3, 1 / 3), "means_init": X[:3],
            "precisions_init": {"full": np.stack([np.eye(2)] * 3), "tied": np.eye(2),
                                "diag": np.ones((3, 2)), "spherical": np.ones(3)}[family.covariance_type]})
    else:
        name = "bernoulli" if isinstance(family, BernoulliFamily) else "poisson"
        _, rows, starts = FAMILIES[name]
        X, start = rows(rng, 400, 3, 3), starts(rng, 3, 3)
    (result,) = run_em(Blocks.of(da.from_array(X, chunks=(100, -1))), [(family, start)], tol=0.0, max_iter=2,
                       acceleration="none")
    one = family.m_step(family.chunk_statistics(X, start, 0, None), np.zeros(3, bool))[0]
    return start, one, result.params


ALL_FAMILIES = [GaussianFamily(kind) for kind in COVARIANCE_TYPES] + [BernoulliFamily(), PoissonFamily()]


@pytest.mark.parametrize("family", ALL_FAMILIES, ids=lambda f: f.label)
def test_expectations_round_trip_and_a_unit_step_is_plain_em(family):
    theta0, theta1, theta2 = three_points(family)
    for theta in (theta0, theta1, theta2):  # parameters ↔ expected statistics about θ₀, exactly enough
        back = family.from_expectations(family.expectations(theta, theta0), theta0)
        for name in family.dims():
            np.testing.assert_allclose(getattr(back, name), getattr(theta, name), rtol=1e-12, atol=1e-14)
    point, alpha = extrapolate(family, theta0, theta1, theta2, step_max=1.0)
    assert alpha == 1.0 and point is theta2


@pytest.mark.parametrize("family", ALL_FAMILIES, ids=lambda f: f.label)
def test_the_extrapolated_point_is_the_squarem_combination_of_the_statistics(family):
    theta0, theta1, theta2 = three_points(family)
    point, alpha = extrapolate(family, theta0, theta1, theta2, step_max=1e6)
    assert alpha > 1.0 and point is not None
    e0, e1, e2 = (family.expectations(theta, theta0) for theta in (theta0, theta1, theta2))
    expected = family.expectations(point, theta0)
    for name in e0:  # θ′ = θ₀ + 2αr + α²v, in the statistics
        r, v = e1[name] - e0[name], e2[name] - 2 * e1[name] + e0[name]
        wanted = e0[name] + 2 * alpha * r + alpha**2 * v
        if isinstance(family, (BernoulliFamily, PoissonFamily)) and name == "means":
            continue  # means are kept within the family's floor, as an M-step keeps them
        np.testing.assert_allclose(expected[name], wanted, rtol=1e-9, atol=1e-12 * np.abs(wanted).max())


def test_a_point_outside_the_parameter_space_is_never_taken():
    """A step so long that a weight turns negative gives no point (the cycle then goes on from the EM
    point θ₂); so does a covariance that stops being positive definite."""
    family = GaussianFamily("full")
    theta0, _, _ = three_points(family)
    moving = [type(theta0).from_covariances(w, theta0.means, theta0.covariances, "full")
              for w in ([0.3, 0.35, 0.35], [0.2, 0.4, 0.4], [0.1, 0.45, 0.45])]  # one weight falls steadily
    point, alpha = extrapolate(family, *moving, step_max=16.0)
    assert point is None and alpha == 16.0
    shrinking = [type(theta0).from_covariances(theta0.weights, theta0.means, theta0.covariances * c, "full")
                 for c in (1.0, 0.6, 0.2)]  # covariances shrink steadily towards (and past) zero
    point, alpha = extrapolate(family, *shrinking, step_max=16.0)
    assert point is None and alpha == 16.0
    point, alpha = extrapolate(family, *moving, step_max=1.0)  # a unit step is θ₂ itself
    assert point is moving[2]


def test_a_pass_is_a_pass_whatever_the_scheme():
    """n_iter_ counts passes, history_ has one value per pass (each callback's), and SQUAREM's first two
    passes are textbook EM's, bit for bit."""
    X = overlapping()
    fits = {}
    for scheme in ("none", "squarem"):
        seen = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits[scheme] = daskem.GaussianMixture(4, random_state=0, tol=0.0, max_iter=40,
                                                  acceleration=scheme).fit(X, callbacks=[seen.append])
        model = fits[scheme]
        assert model.n_iter_ == len(model.history_) == len(seen) == 40
        assert [info.iteration for info in seen] == list(range(1, 41))
        assert np.array_equal([info.mean_log_likelihood for info in seen], model.history_)
        assert np.array_equal(seen[-1].params.means, model.means_)
    assert np.array_equal(fits["squarem"].history_[:3], fits["none"].history_[:3])
    assert not np.array_equal(fits["squarem"].history_, fits["none"].history_)


def test_squarem_needs_fewer_passes_and_reaches_the_same_optimum():
    X = overlapping()
    textbook, squarem = fit(X, "none", tol=0.0, max_iter=1500), fit(X, tol=0.0, max_iter=1500)
    best = max(textbook.history_.max(), squarem.history_.max())
    # both end at the same optimum, to rounding (the log-likelihood is summed over 3000 rows)
    assert squarem.history_[-1] >= textbook.history_[-1] - 1e-10
    assert abs(squarem.history_[-1] - best) <= 1e-10
    passes = {name: first_within(model.history_, best, 1e-6) for name, model in
              (("none", textbook), ("squarem", squarem))}
    assert passes["squarem"] * 2 <= passes["none"], passes
    assert np.diff(squarem.history_).min() >= 0.0  # monotone; a refused step repeats the last value
    assert (np.diff(squarem.history_) == 0).any()


def test_the_default_stop_is_near_the_optimum_where_textbook_stops_short():
    """With tol=1e-3, scikit-learn's rule stops where the change per pass falls below tol — far short
    of the optimum where components overlap; SQUAREM's stop estimates what is left."""
    X = overlapping(spacing=2.5)
    best = fit(X, tol=0.0, max_iter=1500).history_.max()
    squarem, textbook = fit(X), fit(X, "none")
    assert squarem.converged_ and textbook.converged_
    assert best - squarem.lower_bound_ <= 1e-4 < best - textbook.lower_bound_


def test_each_pass_says_how_far_the_fit_still_is():
    """Under SQUAREM the estimate comes from the EM rate each cycle measures: NaN before the first
    cycle's second pass, and once the fit nears the optimum, within a factor of ten of the truth or under 1e-6."""
    X = overlapping(spacing=2.0)
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = daskem.GaussianMixture(4, random_state=0, tol=0.0, max_iter=300).fit(X, callbacks=[seen.append])
    best = model.history_.max()
    remaining = np.array([info.remaining for info in seen])
    assert np.isnan(remaining[0]) and np.isfinite(remaining[1])
    truth = best - model.history_
    late = np.flatnonzero((truth < 1e-3) & np.isfinite(remaining))
    assert late.size > 10
    ratio = remaining[late] / np.maximum(truth[late], 1e-300)
    good = (np.abs(np.log10(np.maximum(ratio, 1e-300))) <= 1) | ((remaining[late] < 1e-6) & (truth[late] < 1e-6))
    assert good.mean() >= 0.6, (remaining[late], truth[late])


def test_the_remaining_gain_of_a_geometric_sequence_is_exact():
    family = GaussianFamily("spherical")

    def point(weight):
        return family.with_given(None, {"weights_init": np.array([weight, 1 - weight]),
                                        "means_init": np.array([[0.0], [1.0]]), "precisions_init": np.ones(2)})

    # steps 0.1 then 0.05 in every statistic: c = 0.5, so after a gain g the gains to come add up to g/3
    assert remaining_after(0.3, -2.0, family, point(0.5), point(0.6), point(0.65)) == pytest.approx(0.1, rel=1e-9)
    assert remaining_after(0.0, -2.0, family, point(0.5), point(0.6), point(0.65)) == 0.0
    assert remaining_after(1e-16, -2.0, family, point(0.5), point(0.6), point(0.65)) == 0.0  # rounding
    assert remaining_after(0.3, -2.0, family, point(0.5), point(0.6), point(0.8)) == np.inf


def test_a_fit_far_from_the_origin_is_the_shifted_fit():
    """SQUAREM's statistics are taken about θ₀'s means and its norms do not move with the origin: a
    fit of data shifted by 10⁶ ends at the shifted optimum of the unshifted fit."""
    X = overlapping(seed=1, spacing=2.5)
    near, far = fit(X, tol=0.0, max_iter=300), fit(X + 1e6, tol=0.0, max_iter=300)
    # float64 rows at 1e6 hold ~1e-10 absolute: the optimum moves by about that, relative to unit spreads
    np.testing.assert_allclose(far.means_ - 1e6, near.means_, atol=1e-6)
    np.testing.assert_allclose(far.covariances_, near.covariances_, rtol=1e-6, atol=1e-9)
    assert abs(far.lower_bound_ - near.lower_bound_) <= 1e-8


def test_warm_starts_continue_the_cycle():
    """Under SQUAREM, warm-started fits of a few passes each add up to one fit, bit for bit."""
    X = overlapping()
    one = fit(X, tol=0.0, max_iter=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = daskem.GaussianMixture(4, random_state=0, tol=0.0, max_iter=4, warm_start=True)
        histories = [model.fit(X).history_ for _ in range(3)]
    assert np.array_equal(np.concatenate(histories), one.history_)
    assert np.array_equal(model.means_, one.means_)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_scikit_learns_monotone_likelihood_test_passes_with_textbook_em(covariance_type):
    """scikit-learn's test_monotonic_likelihood (its body, with acceleration="none"): fits of one pass
    each, warm-started, never lower the score and converge within 600 fits."""
    from sklearn.mixture.tests.test_gaussian_mixture import RandomData

    rng = np.random.RandomState(0)
    data = RandomData(rng, scale=7)
    model = daskem.GaussianMixture(data.n_components, covariance_type=covariance_type, reg_covar=0,
                                   warm_start=True, max_iter=1, random_state=rng, tol=1e-7, acceleration="none")
    current = -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(600):
            previous, current = current, model.fit(data.X[covariance_type]).score(data.X[covariance_type])
            assert current >= previous
            if model.converged_:
                break
    assert model.converged_


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), covariance_type=st.sampled_from(COVARIANCE_TYPES),
       n_components=st.integers(2, 5), chunk_rows=st.integers(40, 300))
def test_squarem_never_lowers_the_log_likelihood(seed, covariance_type, n_components, chunk_rows):
    """Exact EM (reg_covar=0) is monotone, and SQUAREM keeps an extrapolated point only when it is at least
    as good: its history never decreases (to rounding) from random starts, whatever the chunking — save
    where a collapsed component restarts (a new start, not a step)."""
    X = overlapping(300, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = daskem.GaussianMixture(n_components, covariance_type=covariance_type, random_state=seed,
                                           reg_covar=0.0, tol=0.0, max_iter=30, init_params="random",
                                           chunk_rows=chunk_rows).fit(X)
        except CovarianceError:
            reject()
    if model.reseeded_:
        reject()
    assert np.diff(model.history_).min() >= -1e-12 * np.abs(model.history_).max(), model.history_
