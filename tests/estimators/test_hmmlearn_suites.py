"""hmmlearn's own tests of the models that correspond — GaussianHMM (four covariance types) and PoissonHMM — run
against daskem's.

Each module is read from the installed hmmlearn and executed here with its ``hmm`` replaced by :data:`hmm`, a
stand-in whose classes are daskem's estimators taking hmmlearn's keywords: ``n_iter`` is ``max_iter``; the
arguments daskem has no counterpart for (``implementation``, hmmlearn's covariance and mean priors, ``min_covar``)
are taken and not used; ``covariance_type`` defaults to hmmlearn's "diag".  Tests of hmmlearn's private API or
of what daskem does otherwise are dropped or expected to fail, each with its reason (:data:`OUT_OF_SCOPE`,
:data:`EXPECTED_FAILURES`).  hmmlearn's ``CategoricalHMM``, ``MultinomialHMM``, ``GMMHMM`` and variational
models have no daskem counterpart (a one-feature ``BernoulliHMM`` is a two-symbol ``CategoricalHMM``: tested step
by step in ``test_hmm.py``).
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

hmmlearn = pytest.importorskip("hmmlearn", reason="hmmlearn is part of the test install")
_errors = np.geterr()
importlib.import_module("hmmlearn.tests")  # it sets NumPy to warn on every floating-point error: set back
np.seterr(**_errors)


class _HmmlearnKeywords:
    """hmmlearn's ``n_iter`` as daskem's ``max_iter``, and its private ``_init`` (which its tests call) as
    daskem's start: the parameters ``init_params`` names set as ``fit`` would start them."""

    def _init(self, X: np.ndarray, lengths: Any = None) -> None:
        X = np.asarray(X, dtype=np.float64)
        family = self._family()
        given = self._given(family, X.shape[1])
        self._set_params(self._starts(family, da.from_array(X), given)[0])
        self.n_features_in_ = X.shape[1]

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


#: hmmlearn's keywords that daskem takes and does not use: the forward–backward implementation (daskem's is
#: scaled and does not underflow), and priors daskem does not have (its covariance floor is ``reg_covar``).
_UNUSED = ("implementation", "min_covar", "means_prior", "means_weight", "covars_prior", "covars_weight",
           "lambdas_prior", "lambdas_weight")


def _estimator(kind: type, hmmlearn_defaults: dict[str, Any]) -> Any:
    def make(n_components: int = 1, *args: Any, n_iter: int = 10, verbose: bool | int = 0, tol: float | None = None,
             **kwargs: Any) -> Any:
        for name in _UNUSED:
            kwargs.pop(name, None)
        if args:  # hmmlearn's second positional argument is the covariance type
            kwargs["covariance_type"] = args[0]
        return kind(n_components, **{**hmmlearn_defaults, **kwargs}, max_iter=n_iter, verbose=int(verbose))

    return make


#: The stand-in for ``hmmlearn.hmm`` the modules are run with.
hmm = types.SimpleNamespace(GaussianHMM=_estimator(_GaussianHMM, {"covariance_type": "diag"}),
                            PoissonHMM=_estimator(_PoissonHMM, {}))

#: Tests that do not apply to daskem, and why.
OUT_OF_SCOPE = {
    "test_bad_covariance_type": "calls hmmlearn's private _check (daskem checks its settings in fit, with its own "
                                "error: tested in test_hmm.py)",
    "test_fit_ignored_init_warns": "expects hmmlearn's log message that attributes set by hand will be overwritten",
    "test_fit_too_little_data": "calls hmmlearn's private _init and expects its log message",
    "test_covar_is_writeable": "calls hmmlearn's private _init and reads its private _covars_",
    "test_fit_with_priors": "sets array priors (hmmlearn's means_prior, covars_prior, startprob_prior as arrays); "
                            "daskem's priors on π and A are concentrations, and it has no prior on the emissions",
    "test_attributes": "calls hmmlearn's private _check",
}

#: Tests that apply but that daskem fails on purpose, and why.
EXPECTED_FAILURES = {
    "test_underflow_from_scaling[scaling]": "expects hmmlearn's scaled recursion to underflow (ValueError) on an "
                                            "outlier; daskem's takes each step's largest log density out first and "
                                            "fits it, as hmmlearn's log implementation does",
}


def _run(module: str) -> dict[str, Any]:
    source = Path(hmmlearn.__file__).parent / "tests" / f"{module}.py"
    code = source.read_text()
    for theirs in ("from .. import hmm\n", "from hmmlearn import hmm\n"):
        code = code.replace(theirs, "")
    code = code.replace("from . import ", "from hmmlearn.tests import ")
    assert "import hmm" not in code, f"{source} imports hmm in a way this test does not expect"
    namespace: dict[str, Any] = {"hmm": hmm, "__name__": f"hmmlearn_{module}"}
    exec(compile(code, str(source), "exec"), namespace)  # noqa: S102 — hmmlearn's own test module
    return namespace


def _classes(namespace: dict[str, Any]) -> dict[str, type]:
    """The module's test classes, the tests out of scope left out."""
    classes = {}
    for name, value in namespace.items():
        if isinstance(value, type) and name.startswith("Test"):
            classes[name] = type(name, (value,), {test: None for test in OUT_OF_SCOPE if hasattr(value, test)})
    return classes


@pytest.fixture(autouse=True)
def _expected_failures(request):
    reason = EXPECTED_FAILURES.get(request.node.name)
    if reason is not None:
        request.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))


globals().update(_classes(_run("test_gaussian_hmm")))
globals().update(_classes(_run("test_poisson_hmm")))
