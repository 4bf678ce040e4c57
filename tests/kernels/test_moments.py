"""The data's weighted moments, chunk by chunk: equal to NumPy's on the whole, in any chunking, far from the origin."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from daskem.kernels.moments import chunk_moments


@given(cuts=st.sets(st.integers(1, 199), max_size=8), full=st.booleans(), weighted=st.booleans())
def test_moments_of_chunks_add_to_those_of_the_whole(cuts, full, weighted):
    """Summed in any chunking, 1e8 from the origin, the mean and covariance equal NumPy's on the rows shifted
    back to the origin: the covariance to 1e-9 of its scale (a sum of squares about the origin would lose it
    all), the mean to a few float64 spacings at 1e8."""
    rng = np.random.default_rng(len(cuts))
    X = rng.normal(size=(200, 3)) @ np.array([[2.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.5]])
    w = rng.integers(0, 4, size=200).astype(float) if weighted else None
    X = (X + 1e8) - 1e8  # the values the rows at 1e8 hold, shifted back exactly
    bounds = [0, *sorted(cuts), 200]
    parts = [chunk_moments(X[a:b] + 1e8, None if w is None else w[a:b], full) for a, b in zip(bounds, bounds[1:])]
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    expected = np.cov(X.T, fweights=None if w is None else w.astype(int))
    assert total.weight_sum == (200 if w is None else w.sum())
    # the mean itself lies at 1e8, where float64 spaces numbers 1.5e-8 apart: within a few spacings
    np.testing.assert_allclose(total.mean - 1e8, np.average(X, axis=0, weights=w), rtol=0,
                               atol=4 * np.spacing(1e8))
    covariance = total.covariance()
    np.testing.assert_allclose(covariance, expected if full else np.diagonal(expected), rtol=0,
                               atol=1e-9 * np.abs(expected).max())
