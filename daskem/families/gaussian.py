"""Gaussian mixtures (full, tied, diag and spherical covariances) as a :class:`~daskem.families.base.Family`.

The kernels stay specialised for speed (:mod:`daskem.kernels.estep`); this
module puts them behind the family interface.  A model file holds
``covariances`` besides the weights and means, with the dimensions of
:data:`COVARIANCE_DIMS`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from daskem.exceptions import InputError, ModelFileError
from daskem.families.base import MISSING, Family, MixtureStatistics
from daskem.kernels import estep, gaussian, stepwise
from daskem.kernels import missing as missing_values
from daskem.kernels.checks import check_ranges, raise_non_finite, raise_non_finite_log_likelihood
from daskem.kernels.estep import ChunkStatistics, chunk_statistics
from daskem.kernels.gaussian import COVARIANCE_TYPES, GaussianParams, covariance_shape, m_step_arrays, reseed
from daskem.settings import Setting

#: Dimensions of ``covariances`` in a model file, for each covariance type.
COVARIANCE_DIMS = {
    "full": ("component", "feature", "feature2"),
    "tied": ("feature", "feature2"),
    "diag": ("component", "feature"),
    "spherical": ("component",),
}
#: The family's own settings.
COVARIANCE_TYPE = Setting("covariance_type", "full", "Structure of the component covariances.", str,
                          choices=COVARIANCE_TYPES)
REG_COVAR = Setting("reg_covar", 1e-6, "Added to the variances.", float, ge=0)
#: Initial precisions, shaped like the covariances of the covariance type.
PRECISIONS_INIT = Setting("precisions_init", None, "Initial precisions.", optional=True, in_runs=False)

#: A covariance eigenvalue below this many times ``reg_covar`` is the regulariser's, not the data's.
FLOOR_FACTOR = 10
#: How far a covariance in a model file may be from symmetric, relative to its largest entry.
SYMMETRY_TOLERANCE = 1e-10



@dataclass(frozen=True, eq=False)
class GaussianStatistics(ChunkStatistics, MixtureStatistics):
    """Summed statistics of some rows under the parameters of one iteration: a value type with ``+``.

    The sums of :class:`~daskem.kernels.estep.ChunkStatistics` — log-likelihood,
    weight sum, row count, ``nk``, ``s1``, ``s2`` about the ``reference``
    points of the pass, the K worst-explained rows and the range of each
    feature.  Statistics of disjoint chunks add up (associatively and
    commutatively) to the statistics of their union, so any reduction tree
    gives the same sums; the M-step (:meth:`GaussianFamily.m_step`) only needs
    the total.
    """

    @classmethod
    def from_chunk(
        cls,
        X: np.ndarray,
        params: GaussianParams,
        first_row: int = 0,
        sample_weight: np.ndarray | None = None,
        missing: bool = False,
    ) -> GaussianStatistics:
        """Statistics of one chunk of rows X (n, d) under ``params`` (the E-step); ``missing``: whether NaN
        marks a missing value."""
        return cls(**vars(chunk_statistics(X, params, first_row, sample_weight, missing)))

    def __add__(self, other: GaussianStatistics) -> GaussianStatistics:
        if other.reference is not self.reference and not np.array_equal(other.reference, self.reference):
            raise ValueError("cannot add statistics taken about different reference points")
        worst_log_prob, worst_index, worst_rows = self.worst_of_both(other)
        return GaussianStatistics(
            log_likelihood=self.log_likelihood + other.log_likelihood,
            weight_sum=self.weight_sum + other.weight_sum,
            n_samples=self.n_samples + other.n_samples,
            nk=self.nk + other.nk,
            s1=self.s1 + other.s1,
            s2=self.s2 + other.s2,
            reference=self.reference,
            worst_log_prob=worst_log_prob,
            worst_index=worst_index,
            worst_rows=worst_rows,
            minimum=np.minimum(self.minimum, other.minimum),
            maximum=np.maximum(self.maximum, other.maximum),
            missing=self.missing_of_both(other),
        )


class GaussianFamily(Family):
    """Gaussian components with covariances of ``covariance_type``; ``reg_covar`` (≥ 0) is added to
    every variance in the M-step."""

    name = "gaussian"

    SETTINGS = (COVARIANCE_TYPE, REG_COVAR, MISSING)
    GIVEN = (*Family.GIVEN, PRECISIONS_INIT)

    covariance_type: str
    reg_covar: float

    @property
    def label(self) -> str:
        return self.covariance_type

    # ------------------------------------------------------------------ EM

    def chunk_statistics(
        self, X: np.ndarray, params: GaussianParams, first_row: int, sample_weight: np.ndarray | None
    ) -> GaussianStatistics:
        return GaussianStatistics.from_chunk(X, params, first_row, sample_weight, self.takes_missing)

    def m_step(self, stats: GaussianStatistics, may_reseed: np.ndarray | None = None
               ) -> tuple[GaussianParams, list[tuple[int, int]]]:
        """New parameters from summed statistics (the M-step).

        Collapsed components (see :meth:`GaussianStatistics.collapsed`) that
        ``may_reseed`` (a (K,) boolean mask; all when None) allows restart at
        the rows the current parameters explain worst (see
        :func:`daskem.kernels.gaussian.reseed`).

        Returns
        -------
        params : the new parameters.
        reseeded : (component, row index) of each restarted component.
        """
        kind = self.covariance_type
        weights, means, covariances = m_step_arrays(stats.nk, stats.s1, stats.s2, stats.reference, self.reg_covar,
                                                    kind)
        collapsed = stats.collapsed()
        if may_reseed is not None:
            collapsed = collapsed[may_reseed[collapsed]]
        collapsed = collapsed[: len(stats.worst_index)]
        if collapsed.size:
            weights, means, covariances = reseed(weights, means, covariances, kind, collapsed,
                                                 stats.worst_rows[: collapsed.size])
        params = GaussianParams.from_covariances(weights, means, covariances, kind)
        return params, list(zip(collapsed.tolist(), stats.worst_index[: collapsed.size].tolist()))

    def e_step(self, X: np.ndarray, params: GaussianParams, first_row: int) -> tuple[np.ndarray, np.ndarray]:
        log_prob_norm, log_resp = estep.e_step(X, params, self.takes_missing)
        if not np.isfinite(log_prob_norm).all():
            raise_non_finite_log_likelihood(np.asarray(X, dtype=np.float64), log_prob_norm, first_row,
                                            "while scoring")
        return log_prob_norm, log_resp

    def log_prob(self, X: np.ndarray, params: GaussianParams, first_row: int) -> np.ndarray:
        log_prob = estep.joint_log_prob(X, params, self.takes_missing)
        peak = log_prob.max(axis=0)
        if not np.isfinite(peak).all():
            raise_non_finite_log_likelihood(np.asarray(X, dtype=np.float64), peak, first_row, "while scoring")
        return log_prob

    def impute(self, X: np.ndarray, params: GaussianParams, first_row: int) -> np.ndarray:
        """See :func:`daskem.kernels.missing.impute`: ``Σ_k r_k (μ_m + Σ_mo Σ_oo⁻¹ (x_o − μ_o))``."""
        X = np.asarray(X, dtype=np.float64)
        raise_non_finite(np.where(np.isnan(X), 0.0, X), first_row, "while imputing")
        return missing_values.impute(X, params)

    def check_first_pass(self, stats: GaussianStatistics) -> None:
        """Refuse data that no Gaussian mixture density exists for, from the range of each feature.

        See :func:`daskem.kernels.checks.check_ranges` (constant features,
        identical rows, values float64 cannot square; a warning where
        ``reg_covar`` swamps a feature).
        """
        check_ranges(stats.minimum, stats.maximum, stats.n_samples, self.reg_covar)

    def expectations(self, params: GaussianParams, reference: GaussianParams) -> dict[str, np.ndarray]:
        """The base's, and for covariances ``α_k (Σ_k + m_k m_kᵀ)`` with ``m_k = μ_k − μ_ref,k`` (tied:
        ``Σ + Σ_k α_k m_k m_kᵀ``; diag: the diagonals; spherical: their mean)."""
        arrays = super().expectations(params, reference)
        weights, covariances = params.weights, params.covariances
        centred = params.means - reference.means
        if self.covariance_type == "full":
            arrays["covariances"] = weights[:, np.newaxis, np.newaxis] * (
                covariances + centred[:, :, np.newaxis] * centred[:, np.newaxis, :])
        elif self.covariance_type == "tied":
            arrays["covariances"] = covariances + np.einsum("k,ki,kj->ij", weights, centred, centred)
        elif self.covariance_type == "diag":
            arrays["covariances"] = weights[:, np.newaxis] * (covariances + centred**2)
        else:
            arrays["covariances"] = weights * (covariances + (centred**2).mean(axis=1))
        return arrays

    def own_from_expectations(self, arrays: dict[str, np.ndarray], weights: np.ndarray,
                              centred: np.ndarray) -> dict[str, np.ndarray]:
        """Covariances from :meth:`expectations`, undoing each form."""
        second = arrays["covariances"]
        if self.covariance_type == "full":
            covariances = (second / weights[:, np.newaxis, np.newaxis]
                           - centred[:, :, np.newaxis] * centred[:, np.newaxis, :])
        elif self.covariance_type == "tied":
            covariances = second - np.einsum("k,ki,kj->ij", weights, centred, centred)
        elif self.covariance_type == "diag":
            covariances = second / weights[:, np.newaxis] - centred**2
        else:
            covariances = second / weights - (centred**2).mean(axis=1)
        return {"covariances": covariances}

    def step_scales(self, params: GaussianParams) -> dict[str, np.ndarray]:
        """The base scales, and for covariances ``√(2 α_k) σ_ki σ_kj`` (σ: each one's standard deviations;
        tied: ``√2 σ_i σ_j``; spherical: ``√(2 α_k / d) σ²_k``)."""
        scales = super().step_scales(params)
        weights, covariances, kind = params.weights, params.covariances, self.covariance_type
        if kind in ("full", "tied"):
            sd = np.sqrt(np.diagonal(covariances, axis1=-2, axis2=-1))
            share = weights[:, np.newaxis, np.newaxis] if kind == "full" else 1.0
            scales["covariances"] = np.sqrt(2.0 * share) * sd[..., :, np.newaxis] * sd[..., np.newaxis, :]
        elif kind == "diag":
            scales["covariances"] = np.sqrt(2.0 * weights[:, np.newaxis]) * covariances
        else:
            scales["covariances"] = np.sqrt(2.0 * weights / params.n_features) * covariances
        return scales

    # ------------------------------------------------------------------ stepwise EM

    def stepwise_dims(self) -> dict[str, tuple[str, ...]]:
        """Per component the weight, the mean and the scatter about that mean (see
        :mod:`daskem.kernels.stepwise`): ``running_scatter`` as the pass's second moments hold it — (component,
        feature, feature2) full, (feature, feature2) tied (pooled), (component, feature) diag and spherical."""
        scatter = ("component", "feature") if self.covariance_type == "spherical" else COVARIANCE_DIMS[
            self.covariance_type]
        return {"running_weights": ("component",), "running_means": ("component", "feature"),
                "running_scatter": scatter}

    def stepwise_statistics(self, stats: GaussianStatistics) -> dict[str, np.ndarray]:
        """``N_k / W``, the means ``c_k + s1_k / N_k`` and the scatter about them ``/ W`` (see
        :func:`~daskem.kernels.stepwise.centred_moments`)."""
        weights, means, scatter = stepwise.centred_moments(stats.nk, stats.s1, stats.s2, stats.reference,
                                                           self.covariance_type)
        return {"running_weights": weights / stats.weight_sum, "running_means": means,
                "running_scatter": scatter / stats.weight_sum}

    def stepwise_blend(self, running: dict[str, np.ndarray], batch: dict[str, np.ndarray],
                       gamma: float) -> dict[str, np.ndarray]:
        """Chan's pairwise update (:func:`~daskem.kernels.stepwise.blend_centred`)."""
        names = tuple(self.stepwise_dims())
        blended = stepwise.blend_centred(tuple(running[name] for name in names), tuple(batch[name] for name in names),
                                         gamma, self.covariance_type)
        return dict(zip(names, blended))

    def stepwise_start(self, params: GaussianParams) -> dict[str, np.ndarray]:
        """``α_k``, ``μ_k`` and the scatter ``α_k (Σ_k − reg_covar·I)`` (tied: ``Σ − reg_covar·I``;
        spherical: ``α_k (σ²_k − reg_covar)`` for every feature): :meth:`expectations` about the
        parameters' own means, less the ``reg_covar`` that the M-step adds back."""
        weights, kind, reg = params.weights, self.covariance_type, self.reg_covar
        second = self.expectations(params, params)["covariances"]
        if kind == "full":
            scatter = second - reg * weights[:, np.newaxis, np.newaxis] * np.eye(params.n_features)
        elif kind == "tied":
            scatter = second - reg * weights.sum() * np.eye(params.n_features)
        elif kind == "diag":
            scatter = second - reg * weights[:, np.newaxis]
        else:
            scatter = np.repeat((second - reg * weights)[:, np.newaxis], params.n_features, axis=1)
        return {"running_weights": weights.copy(), "running_means": params.means.copy(), "running_scatter": scatter}

    def stepwise_as_statistics(self, running: dict[str, np.ndarray]) -> GaussianStatistics:
        """Sums about the running means themselves (``s1 = 0``, ``s2`` the scatter), no worst rows."""
        weights, means = running["running_weights"], running["running_means"]
        k, d = means.shape
        return GaussianStatistics(
            log_likelihood=0.0, weight_sum=1.0, n_samples=1, nk=weights, s1=np.zeros((k, d)),
            s2=running["running_scatter"], reference=means, worst_log_prob=np.empty(0),
            worst_index=np.empty(0, dtype=np.int64), worst_rows=np.empty((0, d)), minimum=np.full(d, -np.inf),
            maximum=np.full(d, np.inf), missing=(0, 0, 0),
        )

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return gaussian.n_parameters(n_components, n_features, self.covariance_type)

    # ------------------------------------------------------------------ starting

    def given_shapes(self, n_components: int, n_features: int) -> dict[str, tuple[int, ...]]:
        return {"weights_init": (n_components,), "means_init": (n_components, n_features),
                "precisions_init": covariance_shape(self.covariance_type, n_components, n_features)}

    def check_given(self, given: dict[str, np.ndarray]) -> None:
        precisions = given.get("precisions_init")
        if (
            precisions is not None
            and self.covariance_type in ("full", "tied")
            and not np.allclose(precisions, np.swapaxes(precisions, -1, -2))
        ):
            raise InputError("precisions_init must hold symmetric matrices")

    def with_given(self, estimated: GaussianParams | None, given: dict[str, np.ndarray | None]) -> GaussianParams:
        weights = given.get("weights_init")
        weights = estimated.weights if weights is None else weights
        means = given.get("means_init")
        means = estimated.means if means is None else means
        precisions = given.get("precisions_init")
        if precisions is None:
            return GaussianParams.from_covariances(weights, means, estimated.covariances, self.covariance_type)
        return GaussianParams.from_precisions(weights, means, precisions, self.covariance_type)

    def assignment_statistics(
        self, X: np.ndarray, assignment: np.ndarray, weights: np.ndarray, reference: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``N_k``, and the first and second moments about ``reference`` (see
        :func:`~daskem.kernels.gaussian.assignment_moments`)."""
        if assignment.ndim == 1:
            return gaussian.assignment_moments(X, assignment, weights, reference, self.covariance_type)
        return gaussian.weighted_moments(X, assignment * weights[:, np.newaxis], reference, self.covariance_type)

    def posterior_statistics(self, X: np.ndarray, posteriors: np.ndarray, params: GaussianParams,
                             first_row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``N_k`` and the moments about the means (see :meth:`assignment_statistics`); a row with missing values
        completed, for each component, by its conditional expectation given the row's observed values, with the
        conditional covariance added to the second moments (:func:`daskem.kernels.missing.statistics`, run once
        per component with that component alone weighted: K times the work on those rows).  Rows with nothing
        observed add nothing."""
        X = np.asarray(X, dtype=np.float64)
        reference = params.means
        partial = np.isnan(X).any(axis=1) if self.takes_missing else np.zeros(len(X), dtype=bool)
        if not partial.any():
            return gaussian.weighted_moments(X, posteriors, reference, self.covariance_type)
        complete = ~partial
        nk, s1, s2 = gaussian.weighted_moments(X[complete], posteriors[complete], reference, self.covariance_type)
        rows, alone = X[partial], np.eye(params.n_components)
        for k in range(params.n_components):
            with np.errstate(divide="ignore"):  # the others' log weights are −inf: responsibilities 1 and 0
                sums = missing_values.statistics(rows, dataclasses.replace(params, weights=alone[k]), reference,
                                                 np.ascontiguousarray(posteriors[partial, k]))
            nk, s1, s2 = nk + sums.nk, s1 + sums.s1, s2 + estep.typed_moments(sums.s2, self.covariance_type)
        return nk, s1, s2

    def params_from_assignment(self, stats: tuple[np.ndarray, ...], reference: np.ndarray) -> GaussianParams:
        return gaussian.m_step(*stats, reference, self.reg_covar, self.covariance_type)

    # ------------------------------------------------------------------ model files

    def dims(self) -> dict[str, tuple[str, ...]]:
        return {"weights": ("component",), "means": ("component", "feature"),
                "covariances": COVARIANCE_DIMS[self.covariance_type]}

    def from_variables(self, arrays: dict[str, np.ndarray], source: str) -> GaussianParams:
        """The parameters, once full and tied covariances are found symmetric (positive definiteness
        is checked, naming the component, as the precisions are derived)."""
        covariances = arrays["covariances"]
        if self.covariance_type in ("full", "tied"):
            matrices = covariances.reshape((-1, *covariances.shape[-2:]))
            asymmetry = np.abs(matrices - np.swapaxes(matrices, 1, 2)).max(axis=(1, 2))
            scale = np.abs(matrices).max(axis=(1, 2))
            bad = np.flatnonzero(asymmetry > SYMMETRY_TOLERANCE * scale)
            if bad.size:
                which = ("the tied covariance" if self.covariance_type == "tied"
                         else f"the covariance of component {bad[0]}")
                raise ModelFileError(f"{source}: {which} is not symmetric")
        return GaussianParams.from_covariances(arrays["weights"], arrays["means"], covariances,
                                               self.covariance_type)

    def random_params(self, n_components: int, n_features: int, rng: np.random.Generator) -> GaussianParams:
        """See :func:`~daskem.kernels.gaussian.random_mixture` (always full covariances)."""
        return gaussian.random_mixture(n_components, n_features, rng)

    def at_floor(self, params: GaussianParams) -> np.ndarray:
        """Components whose covariance has an eigenvalue below ``FLOOR_FACTOR × reg_covar``: held up by
        ``reg_covar``, not by the data (collapsed onto one row, or onto rows that share a value)."""
        return np.linalg.eigvalsh(params.full_covariances()).min(axis=1) < FLOOR_FACTOR * self.reg_covar

    def variances(self, params: GaussianParams) -> np.ndarray:
        return np.diagonal(params.full_covariances(), axis1=1, axis2=2).copy()

    def sample(self, params: GaussianParams, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return gaussian.sample(params, n_samples, rng)
