"""pytest configuration: the hypothesis profile, and the kernels compiled once before any test."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

from tests.helpers import make_mixture_data

settings.register_profile("daskem", deadline=None, max_examples=25, derandomize=True)
settings.load_profile("daskem")


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels() -> None:
    """Compile (or load from numba's cache) the kernels once, before any test.

    A cold cache costs ~10 s of compilation inside whichever test fits first,
    long enough for the command line's progress bar to appear in its output.
    """
    from daskem.kernels import estep
    from daskem.kernels.gaussian import GaussianParams

    X = make_mixture_data(n_samples=200, n_features=3)
    far = np.array([[-300.0] * 3, [300.0] * 3])  # components too far apart for the expanded kernel
    for covariance_type, means in (("full", X[:2]), ("diag", X[:2]), ("full", far)):
        params = GaussianParams.from_covariances(
            np.full(2, 0.5), means, np.ones((2, 3)) if covariance_type == "diag" else np.stack([np.eye(3)] * 2),
            covariance_type,
        )
        for dtype in (np.float64, np.float32):
            estep.chunk_statistics(X.astype(dtype), params)
        estep.e_step(X, params)
