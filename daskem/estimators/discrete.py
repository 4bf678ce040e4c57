"""Estimators for discrete data — :class:`BernoulliMixture` and :class:`PoissonMixture`.

They share everything with :class:`daskem.GaussianMixture` that applies
(:class:`daskem.estimators.base.BaseMixture`); their components are products over
features (see :mod:`daskem.families.product`), so ``means_`` holds all their
parameters: a success probability or a rate per component and feature.
"""

from __future__ import annotations

from daskem.estimators.base import BaseMixture
from daskem.estimators.settings import estimator_settings
from daskem.families.bernoulli import BernoulliFamily
from daskem.families.poisson import PoissonFamily
from daskem.settings import settings_init

__all__ = ["BernoulliMixture", "PoissonMixture"]

_SHARED_PARAMETERS = """
    n_components : int, default 1
        Number of mixture components K.
    tol : float, default 1e-3
        Convergence threshold in nats per row; what it bounds depends on
        ``acceleration``, as for :class:`daskem.GaussianMixture`.
    max_iter : int, default 100
        Most EM iterations: passes over the data (0 keeps the start).
    acceleration : {"squarem", "none"}, default "squarem"
        Accelerated EM (fewer passes) or textbook EM, one EM step per pass,
        as for :class:`daskem.GaussianMixture`.
    n_init : int, default 1
        Number of initialisations, advancing together; the best lower bound is kept.
    init_params : {"k-means++", "k-means||", "kmeans", "random", "random_from_data"}
        How the start is found (see :mod:`daskem.engine.initialization`): the
        weighted means of the rows a clustering assigns to each component.
    weights_init : (K,) array-like, optional
    means_init : (K, d) array-like, optional
        Initial weights and means (kept within the floor).
    random_state, warm_start, verbose, chunk_rows, split_every, sample_dim, feature_dim
        As for :class:`daskem.GaussianMixture`.
    missing : {"nan", "error"}, default "nan"
        "nan": NaN marks a missing value, whose feature's term drops out of the
        row's density (components are products over features); each mean is
        the responsibility-weighted mean of the rows where its feature is
        observed.  Rows with nothing observed are left out.  "error": NaN is
        refused.
    strict_chunks : bool, default False
        Refuse a Zarr store that lacks chunk files instead of reading them as
        the fill value with a warning (as for :class:`daskem.GaussianMixture`).
    decay : float in (0.5, 1], default 0.7
        The step size of :meth:`partial_fit` (stepwise EM): the t-th batch
        blended in weighs ``(t + 1) ** -decay``; 1 is the running average
        (see :class:`daskem.GaussianMixture` for the choice of the default).

    Attributes
    ----------
    weights_ : (K,) ndarray
    means_ : (K, d) ndarray
    converged_, n_iter_, lower_bound_, history_, reseeded_, n_features_in_, feature_names_in_, n_absent_chunks_
        As for :class:`daskem.GaussianMixture`.
    n_batches_ : int
        The batches :meth:`partial_fit` has learnt from since the last ``fit``.
    family_ : the fitted component family with its settings (``min_probability``
        or ``min_rate``, ``missing``).
"""


class BernoulliMixture(BaseMixture):
    __doc__ = """Mixture of Bernoulli components (binary features, 0 or 1) fitted by EM, out of core.

    Each component gives each feature a probability of 1 (``means_``); rows
    with any other value are refused, naming the first.

    Parameters
    ----------
    min_probability : float in (0, 0.5), default 1e-10
        Every probability is kept within ``[min_probability, 1 − min_probability]``,
        so that a feature a component never (or always) sees set does not give
        other rows a log-likelihood of −inf (as ``reg_covar`` does for Gaussians).""" + _SHARED_PARAMETERS

    FAMILY = BernoulliFamily
    SETTINGS = estimator_settings(BernoulliFamily)
    __init__ = settings_init(SETTINGS)


class PoissonMixture(BaseMixture):
    __doc__ = """Mixture of Poisson components (counts: non-negative whole numbers) fitted by EM, out of core.

    Each component gives each feature a rate (``means_``); negative or
    fractional values are refused, naming the first.

    Parameters
    ----------
    min_rate : float > 0, default 1e-10
        The least rate, so that a feature a component only ever sees at 0 does
        not give rows with a count there a log-likelihood of −inf.""" + _SHARED_PARAMETERS

    FAMILY = PoissonFamily
    SETTINGS = estimator_settings(PoissonFamily)
    __init__ = settings_init(SETTINGS)
