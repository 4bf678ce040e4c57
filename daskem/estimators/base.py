"""What every mixture estimator shares: :class:`BaseMixture`, from its fitting, scoring and model-file parts.

Fitting (:mod:`~daskem.estimators.fitting`), learning batch by batch
(:mod:`~daskem.estimators.streaming`), scoring
(:mod:`~daskem.estimators.scoring`) and model files
(:mod:`~daskem.estimators.model_file`) are the same for every component
family; a family's estimator (:class:`daskem.estimators.gaussian.GaussianMixture`,
…) names its family and its settings.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin

from daskem.engine.initialization import random_generator
from daskem.estimators.fitting import Fitting
from daskem.estimators.model_file import ModelFile
from daskem.estimators.scoring import Scoring
from daskem.estimators.streaming import Streaming
from daskem.exceptions import InputError, NotFittedError
from daskem.families.base import Family, Params
from daskem.settings import Setting, is_integer


class BaseMixture(Fitting, Streaming, Scoring, ModelFile, DensityMixin, BaseEstimator):
    """A mixture fitted by EM, out of core: what every family's estimator shares.

    A subclass names its :attr:`FAMILY` and its :attr:`SETTINGS` — with
    :func:`~daskem.estimators.settings.estimator_settings`, the shared
    settings, the family's initial arrays and own settings, and the
    estimator's :attr:`OWN` — and takes them through
    :func:`~daskem.settings.settings_init`.  It may override :meth:`_float32`.

    Fitted, it holds ``family_``, the component family with its settings,
    and the parameters (:attr:`params`, ``weights_``, ``means_``, …).
    """

    #: The component family.
    FAMILY: ClassVar[type[Family]]
    #: Every setting of the estimator: the arguments of its constructor.
    SETTINGS: ClassVar[tuple[Setting, ...]]
    #: The estimator's own settings, besides the shared and the family's (``precision``): checkpoints
    #: match them and model files record them.
    OWN: ClassVar[tuple[Setting, ...]] = ()

    family_: Family

    @classmethod
    def own_setting_names(cls) -> tuple[str, ...]:
        """The names of the estimator's :attr:`OWN` settings."""
        return tuple(setting.name for setting in cls.OWN)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = getattr(self, "missing", None) == "nan"  # NaN is a missing value
        return tags

    # --------------------------------------------------------- fitted attributes

    @property
    def params(self) -> Params:
        """The fitted parameters as one value."""
        try:
            return self._params
        except AttributeError:
            raise NotFittedError(  # scikit-learn's words, then ours
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                "before using this estimator (or daskem.load() a saved model)."
            ) from None

    @property
    def lower_bounds_(self) -> list[float]:
        """The mean log-likelihood at the start of each iteration of the best run (scikit-learn's name
        for :attr:`history_`)."""
        return [float(value) for value in self.history_]

    @property
    def weights_(self) -> np.ndarray:
        return self.params.weights

    @property
    def means_(self) -> np.ndarray:
        return self.params.means

    def _n_parameters(self) -> int:
        """Free parameters of the fitted mixture (for :meth:`bic` and :meth:`aic`)."""
        params = self.params
        return self.family_.n_parameters(params.n_components, params.n_features)

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw rows from the fitted mixture (seeded by ``random_state``).

        Returns
        -------
        X : (n_samples, d) float64, grouped by component.
        y : (n_samples,) int64 component labels.
        """
        params = self.params
        if not is_integer(n_samples) or n_samples < 1:
            raise InputError(f"Invalid value for 'n_samples': {n_samples!r}; sample draws an integer >= 1 of rows")
        return self.family_.sample(params, n_samples, random_generator(self.random_state))
