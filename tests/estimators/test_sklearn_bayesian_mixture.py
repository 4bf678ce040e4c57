"""scikit-learn's own BayesianGaussianMixture tests, run against daskem.BayesianGaussianMixture.

The module is taken from the installed scikit-learn, its import of
``BayesianGaussianMixture`` swapped for daskem's, and executed here, so that
pytest collects its tests as ours.  The tests that cannot pass are listed
below, each with its reason.
"""

from __future__ import annotations

from tests.estimators.sklearn_suites import run_into

EXPECTED_FAILURES = {
    # daskem's own message: "degrees_of_freedom_prior must be > n_features - 1 = 1, got 1.0"; the defaults and
    # given priors it goes on to check are checked step by step in tests/estimators/test_bayesian.py.
    "test_bayesian_mixture_precisions_prior_initialisation": "daskem words this error differently",
    "test_compare_covar_type": "uses scikit-learn's private API (_check_parameters, _initialize_parameters)",
}

run_into(globals(), "test_bayesian_mixture", "BayesianGaussianMixture", EXPECTED_FAILURES)
