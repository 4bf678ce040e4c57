"""hmmlearn's own tests of the models that correspond — GaussianHMM (four covariance types), PoissonHMM, and the
forward–backward tests of its base class — run against daskem's.

Each module is read from the installed hmmlearn and executed here with its ``hmm`` replaced by :data:`hmm` (and
``test_base``'s ``BaseHMM`` by :class:`_BaseHMM`), stand-ins whose classes are daskem's estimators taking
hmmlearn's keywords:

* ``n_iter`` is ``max_iter``; ``tol`` is hmmlearn's (default 1e-2, on the whole data's log-likelihood), given to
  daskem at each fit as ``tol / n_samples`` (its ``tol`` is per step), so the fit stops where hmmlearn's stops;
* ``implementation`` is taken and not used: daskem has one forward–backward, in log space with each step's
  largest log density taken out (hmmlearn's "log"), so only the ``[log]`` case of each test is run;
* the arguments daskem has no counterpart for — hmmlearn's emission priors and ``min_covar`` — are refused
  (TypeError), never silently dropped: no test below passes them;
* ``covariance_type`` defaults to hmmlearn's "diag"; hmmlearn's private ``_init`` and ``_check`` (which its tests
  call) are daskem's start (the parameters ``init_params`` names, set as ``fit`` starts them) and daskem's checks
  of the attributes that are set.

No ``monitor_`` is given: no test run here reads it (daskem's ``history_`` holds the log-likelihood per step).
Tests of hmmlearn's private API or of what daskem does otherwise are dropped (:data:`OUT_OF_SCOPE`, and whole
modules in :data:`OUT_OF_SCOPE_MODULES`) or expected to fail (:data:`EXPECTED_FAILURES`), each with its reason.
"""

from __future__ import annotations

import importlib
import types
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest

import daskem
from daskem.estimators.hmm import _distribution
from daskem.families.hmm import BernoulliHMMFamily

hmmlearn = pytest.importorskip("hmmlearn", reason="hmmlearn is part of the test install")
_errors = np.geterr()
importlib.import_module("hmmlearn.tests")  # it sets NumPy to warn on every floating-point error: set back
np.seterr(**_errors)

PRIVATE = "calls hmmlearn's private API"
SCALING = ("daskem has one forward–backward, in log space (hmmlearn's 'log' implementation, whose case of each "
           "test runs); the 'scaling' case would run the same daskem code again, and test_underflow_from_scaling"
           "[scaling] expects the scaled recursion's underflow on an outlier (ValueError), which daskem does not have")

#: Tests that do not apply to daskem, and why: a name alone drops that test from every class (and module level)
#: that has it; ``Class`` drops the class; ``test_*[scaling]`` stands for the dropped parametrisation.
OUT_OF_SCOPE = {
    "test_*[scaling]": SCALING,
    # test_gaussian_hmm.py
    "test_fit_ignored_init_warns": "expects hmmlearn's log message that attributes set by hand and named by "
                                   "init_params will be overwritten; daskem overwrites them without a message",
    "test_fit_too_little_data": PRIVATE + " (_init) and expects its 'degenerate solution' log message",
    "test_covar_is_writeable": PRIVATE + " (it reads hmmlearn's private _covars_ array)",
    "test_fit_with_priors": "sets hmmlearn's priors on the emissions (means_prior, means_weight, covars_prior, "
                            "covars_weight) and array priors on startprob_ and transmat_: daskem has no prior on "
                            "the emissions, and its priors on π and A are one concentration each",
    # test_base.py
    "TestMonitor": "tests hmmlearn's ConvergenceMonitor class (daskem's stop is per step, read from history_, "
                   "converged_ and n_iter_; tested in test_hmm.py)",
    "test_do_forward_scaling_pass": "tests hmmlearn's C kernels (_hmmc.forward_scaling) directly",
    "test_do_forward_pass": "tests hmmlearn's C kernels (_hmmc.forward_log) directly",
    "test_do_backward_scaling_pass": "tests hmmlearn's C kernels (_hmmc.backward_scaling) directly",
    "test_do_backward_log_pass": "tests hmmlearn's C kernels (_hmmc.backward_log) directly",
    "test_do_viterbi_pass": "tests hmmlearn's C kernels (_hmmc.viterbi) directly",
    "test_stationary_distribution": "daskem's HMMs have no get_stationary_distribution",
}

#: hmmlearn's test modules not run, and why.
OUT_OF_SCOPE_MODULES = {
    "test_categorical_hmm": "every test uses three symbols: daskem has no CategoricalHMM (its one-feature "
                            "BernoulliHMM is a two-symbol one, tested step by step in test_hmm.py), and its "
                            "test__check_and_set_categorical_n_features calls hmmlearn's private API",
    "test_multinomial_hmm": "daskem has no MultinomialHMM",
    "test_gmm_hmm": "daskem has no GMMHMM",
    "test_gmm_hmm_multisequence": "daskem has no GMMHMM",
    "test_gmm_hmm_new": "daskem has no GMMHMM",
    "test_variational_categorical": "daskem has no variational HMMs",
    "test_variational_gaussian": "daskem has no variational HMMs",
    "test_kl_divergence": "tests hmmlearn's private KL divergences of the variational HMMs' distributions",
    "test_utils": "tests hmmlearn's utility functions (normalize, log_normalize, fill_covars)",
}

#: Tests that apply but that daskem fails, and why (none at present).
EXPECTED_FAILURES: dict[str, str] = {}


class _HmmlearnKeywords:
    """hmmlearn's ``n_iter`` as daskem's ``max_iter``, its ``tol`` on the whole data as daskem's per step, and its
    private ``_init`` and ``_check`` (which its tests call) as daskem's start and daskem's checks."""

    hmmlearn_tol = 1e-2

    def fit(self, X: Any, lengths: Any = None, **kwargs: Any) -> Any:
        self.tol = self.hmmlearn_tol / max(np.shape(X)[0], 1)
        return super().fit(X, lengths, **kwargs)

    def _init(self, X: np.ndarray, lengths: Any = None) -> None:
        X = np.asarray(X, dtype=np.float64)
        family = self._family()
        given = self._given(family, X.shape[1])
        self._set_params(self._starts(family, da.from_array(X), given)[0])
        self.n_features_in_ = X.shape[1]

    def _check(self) -> None:
        """daskem's checks of the settings and of each attribute that is set (ValueError where one fails)."""
        family, k = self._family(), self.n_components
        if getattr(self, "startprob_", None) is not None:
            _distribution(self.startprob_, (k,), "startprob_")
        if getattr(self, "transmat_", None) is not None:
            _distribution(self.transmat_, (k, k), "transmat_")
        emissions = [getattr(self, name, None) for name in self.EMISSION_ATTRIBUTES]
        if all(value is not None for value in emissions):
            n_features = getattr(self, "n_features_in_", None) or np.shape(emissions[0])[-1]
            self._emission_from_attributes(family.emission, n_features)

    @property
    def n_iter(self) -> int:
        return self.max_iter

    @n_iter.setter
    def n_iter(self, value: int) -> None:
        self.max_iter = value


class _GaussianHMM(_HmmlearnKeywords, daskem.GaussianHMM):
    pass


class _PoissonHMM(_HmmlearnKeywords, daskem.PoissonHMM):
    pass


class _FramesFamily(BernoulliHMMFamily):
    """An HMM family whose emission log-probabilities are a given function's of the rows: hmmlearn's
    ``_compute_log_likelihood`` hook, by which its ``StubHMM`` gives fixed frame log-probabilities."""

    frames: Any = None

    def log_emission(self, X: np.ndarray, params: Any, first_row: int) -> np.ndarray:
        log = np.asarray(self.frames(X), dtype=np.float64)
        if len(log) != len(X):  # the stub's frames are the whole sequence's, whatever X
            log = log[first_row:first_row + len(X)]
        return np.ascontiguousarray(log)


class _BaseHMM(_HmmlearnKeywords, daskem.BernoulliHMM):
    """hmmlearn's ``BaseHMM`` as its tests use it: a subclass gives ``_compute_log_likelihood(X)`` (n, K); daskem's
    forward–backward, Viterbi and sampling of states run on them.  The stub's rows are its K frame
    log-probabilities, so its (unused) Bernoulli emissions have K features of probability 1/2: :meth:`sample`'s
    rows are draws of those (hmmlearn's base class draws none), its states are the chain's."""

    def _compute_log_likelihood(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def means_(self) -> np.ndarray:
        return np.full((self.n_components, self.n_components), 0.5)

    def _family(self) -> _FramesFamily:
        family = super()._family()
        frames = _FramesFamily(family.emission, family.startprob_prior, family.transmat_prior, family.params)
        frames.frames = self._compute_log_likelihood
        return frames


#: hmmlearn's keywords that daskem has no counterpart for, refused.
_REFUSED = ("min_covar", "means_prior", "means_weight", "covars_prior", "covars_weight", "lambdas_prior",
            "lambdas_weight")


def _estimator(kind: type, hmmlearn_defaults: dict[str, Any]) -> Any:
    def make(n_components: int = 1, *args: Any, n_iter: int = 10, verbose: bool | int = 0, tol: float = 1e-2,
             implementation: str = "log", **kwargs: Any) -> Any:
        refused = sorted(set(kwargs) & set(_REFUSED))
        if refused:
            raise TypeError(f"daskem's {kind.__bases__[-1].__name__} has no counterpart of {refused}")
        if len(args) > 1:
            raise TypeError("only hmmlearn's second positional argument, covariance_type, has a counterpart")
        if args:
            kwargs["covariance_type"] = args[0]
        model = kind(n_components, **{**hmmlearn_defaults, **kwargs}, max_iter=n_iter, verbose=int(verbose))
        model.hmmlearn_tol = tol
        return model

    return make


#: The stand-in for ``hmmlearn.hmm`` the modules are run with.
hmm = types.SimpleNamespace(GaussianHMM=_estimator(_GaussianHMM, {"covariance_type": "diag"}),
                            PoissonHMM=_estimator(_PoissonHMM, {}))


def _run(module: str) -> dict[str, Any]:
    source = Path(hmmlearn.__file__).parent / "tests" / f"{module}.py"
    code = source.read_text()
    for theirs in ("from .. import hmm\n", "from hmmlearn import hmm\n"):
        code = code.replace(theirs, "")
    code = code.replace("from hmmlearn.base import BaseHMM, ConvergenceMonitor\n",
                        "from hmmlearn.base import ConvergenceMonitor\n")
    code = code.replace("from . import ", "from hmmlearn.tests import ")
    assert "import hmm\n" not in code, f"{source} imports hmm in a way this test does not expect"
    scaling = '@pytest.mark.parametrize("implementation", ["scaling", "log"])'
    code = code.replace(scaling, '@pytest.mark.parametrize("implementation", ["log"])')
    namespace: dict[str, Any] = {"hmm": hmm, "BaseHMM": _BaseHMM, "__name__": f"hmmlearn_{module}"}
    exec(compile(code, str(source), "exec"), namespace)  # noqa: S102 — hmmlearn's own test module
    return namespace


def _tests(namespace: dict[str, Any]) -> dict[str, Any]:
    """The module's test classes and functions, those out of scope left out."""
    tests: dict[str, Any] = {}
    for name, value in namespace.items():
        if name in OUT_OF_SCOPE:
            continue
        if isinstance(value, type) and name.startswith("Test"):
            tests[name] = type(name, (value,), {test: None for test in OUT_OF_SCOPE if hasattr(value, test)})
        elif name.startswith("test_") and callable(value):
            tests[name] = value
    return tests


@pytest.fixture(autouse=True)
def _expected_failures(request: pytest.FixtureRequest) -> None:
    reason = EXPECTED_FAILURES.get(request.node.name)
    if reason is not None:
        request.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))


for _module in ("test_gaussian_hmm", "test_poisson_hmm", "test_base"):
    globals().update(_tests(_run(_module)))
