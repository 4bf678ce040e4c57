"""Variational inference for a Bayesian Gaussian mixture: the posterior's M-step, its E-step terms, its bound.

The model is scikit-learn's ``BayesianGaussianMixture`` (Bishop 2006, §10.2;
Blei & Jordan 2006 for the Dirichlet process): a Dirichlet distribution — or
a truncated Dirichlet process, stick-breaking Beta factors — over the
weights, and a Gaussian–Wishart over each component's mean and precision.
Variational EM needs the same sums as EM: the posterior is a function of
``N_k``, the responsibility-weighted means ``x̄_k`` and covariances ``S_k``
(:func:`posterior`), and the E-step is a Gaussian E-step with other
per-component offsets (:func:`expected_log_weights`,
:func:`expected_log_prob_offsets`).  Covariances are scikit-learn's: the
Wishart scale inverted and divided by the degrees of freedom.

Shapes use ``K`` components and ``d`` features; covariances have the shapes of
:func:`daskem.kernels.gaussian.covariance_shape`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, digamma, gammaln

from daskem.kernels.gaussian import LOG_2PI, NK_FLOOR, ComponentMeans, GaussianParams, m_step_arrays, precision_cholesky

#: The two priors over the weights: a truncated Dirichlet process (stick-breaking), or a Dirichlet.
WEIGHT_PRIORS = ("dirichlet_process", "dirichlet_distribution")


@dataclass(frozen=True)
class GaussianPrior:
    """The conjugate prior of a Bayesian Gaussian mixture.

    Attributes
    ----------
    weight_type : one of :data:`WEIGHT_PRIORS`.
    weight_concentration : γ₀ (Dirichlet process) or α₀ (Dirichlet), > 0.
    mean_precision : β₀ > 0, how strongly means are drawn to ``mean``.
    mean : (d,) m₀.
    degrees_of_freedom : ν₀ > d − 1.
    covariance : the Wishart's scale W₀⁻¹, shaped like one component's covariance
        (``(d, d)`` full and tied, ``(d,)`` diag, a number spherical).
    """

    weight_type: str
    weight_concentration: float
    mean_precision: float
    mean: np.ndarray
    degrees_of_freedom: float
    covariance: np.ndarray | float


@dataclass(frozen=True, eq=False)
class GaussianPosterior(ComponentMeans):
    """The variational posterior of a Bayesian Gaussian mixture.

    Attributes
    ----------
    weight_concentration : (K,) Dirichlet parameters α_k, or (2, K) the Beta
        parameters of each stick (Dirichlet process).
    mean_precision : (K,) β_k.
    means : (K, d) m_k.
    degrees_of_freedom : (K,) ν_k (tied: K equal values).
    covariances : W_k⁻¹ / ν_k, of the covariance type's shape.
    precisions_cholesky : the Cholesky factors of their inverses, of the same shape.
    covariance_type : "full", "tied", "diag" or "spherical".
    """

    weight_concentration: np.ndarray
    mean_precision: np.ndarray
    means: np.ndarray
    degrees_of_freedom: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    covariance_type: str

    @property
    def weights(self) -> np.ndarray:
        """The expected weights ``E_q[π_k]`` (K,), summing to 1 (scikit-learn's ``weights_``)."""
        return expected_weights(self.weight_concentration)

    def full_covariances(self) -> np.ndarray:
        """Every component's covariance as a (K, d, d) matrix (see :meth:`GaussianParams.full_covariances`)."""
        return self.point.full_covariances()

    @property
    def point(self) -> GaussianParams:
        """The mixture at the posterior's expected weights, its means and covariances (for sampling,
        variances and precisions)."""
        return GaussianParams(self.weights, self.means, self.covariances, self.precisions_cholesky,
                              self.covariance_type)


def posterior(nk: np.ndarray, xk: np.ndarray, sk: np.ndarray, prior: GaussianPrior,
              covariance_type: str, diff: np.ndarray | None = None) -> GaussianPosterior:
    """The variational M-step: the posterior given the responsibilities' sums.

    Parameters
    ----------
    nk : (K,) ``N_k = Σ_i r_ik`` (weighted by the rows' weights, if any).
    xk : (K, d) ``x̄_k = Σ_i r_ik x_i / N_k``.
    sk : ``S_k = Σ_i r_ik (x_i − x̄_k)(x_i − x̄_k)ᵀ / N_k`` plus ``reg_covar`` on the
        variances, of the covariance type's shape (tied: pooled over components,
        diag: the diagonals, spherical: their means) — what
        :func:`daskem.kernels.gaussian.m_step_arrays` returns as covariances.
    diff : (K, d) ``x̄_k − m₀`` where it is known more exactly than ``xk − m₀`` (see
        :func:`posterior_of_sums`); by default that difference.

    Returns
    -------
    GaussianPosterior, whose precisions are checked positive definite (raises
    :class:`~daskem.exceptions.CovarianceError` naming the component otherwise).
    """
    nk = nk + NK_FLOOR
    n_components = len(nk)
    concentration = weight_concentration(nk, prior.weight_type, prior.weight_concentration)
    beta = prior.mean_precision + nk
    diff = xk - prior.mean if diff is None else diff
    means = prior.mean + (nk / beta)[:, np.newaxis] * diff  # (β₀ m₀ + N_k x̄_k) / β_k
    shrink = prior.mean_precision / beta  # β₀ / β_k
    if covariance_type == "full":
        nu = prior.degrees_of_freedom + nk
        scale = (prior.covariance + nk[:, np.newaxis, np.newaxis] * sk
                 + (nk * shrink)[:, np.newaxis, np.newaxis] * diff[:, :, np.newaxis] * diff[:, np.newaxis, :])
        covariances = scale / nu[:, np.newaxis, np.newaxis]
    elif covariance_type == "tied":
        nu = np.full(n_components, prior.degrees_of_freedom + nk.sum() / n_components)
        scale = (prior.covariance + sk * nk.sum() / n_components
                 + prior.mean_precision / n_components * np.dot((nk / beta) * diff.T, diff))
        covariances = scale / nu[0]
    elif covariance_type == "diag":
        nu = prior.degrees_of_freedom + nk
        covariances = (prior.covariance + nk[:, np.newaxis] * (sk + shrink[:, np.newaxis] * diff**2)
                       ) / nu[:, np.newaxis]
    else:
        nu = prior.degrees_of_freedom + nk
        covariances = (prior.covariance + nk * (sk + shrink * np.mean(diff**2, axis=1))) / nu
    return GaussianPosterior(concentration, beta, means, nu, covariances,
                             precision_cholesky(covariances, covariance_type), covariance_type)


def posterior_of_sums(nk: np.ndarray, s1: np.ndarray, s2: np.ndarray, reference: np.ndarray, prior: GaussianPrior,
                      reg_covar: float, covariance_type: str) -> GaussianPosterior:
    """The variational M-step from a pass's sums about reference points ``c_k`` (K, d) (see
    :func:`daskem.kernels.gaussian.m_step_arrays`): ``x̄_k − m₀`` is taken as ``(c_k − m₀) + s1_k / N_k``, so
    that far from the origin it keeps the digits that ``x̄_k`` rounded to a large number loses."""
    _, xk, sk = m_step_arrays(nk, s1, s2, reference, reg_covar, covariance_type)
    diff = (reference - prior.mean) + s1 / (nk + NK_FLOOR)[:, np.newaxis]
    return posterior(nk, xk, sk, prior, covariance_type, diff)


def sums_of_posterior(post: GaussianPosterior, prior: GaussianPrior, reg_covar: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`posterior` undone: the sums a posterior was formed from under ``prior``.

    Returns
    -------
    nk : (K,) ``N_k`` (``β_k − β₀``, less the floor :func:`posterior` adds).
    means : (K, d) ``x̄_k`` (a component with no weight: its posterior mean).
    scatter : ``(N_k + floor)(S_k − reg_covar·I)``, the scatter about ``x̄_k``, in the shape of a pass's second moments
        ((K, d, d) full, (d, d) tied — pooled —, (K, d) diag and spherical).
    """
    kind, d = post.covariance_type, post.n_features
    counts = post.mean_precision - prior.mean_precision  # N_k + NK_FLOOR
    nk = np.maximum(counts - NK_FLOOR, 0.0)
    held = counts > 2 * NK_FLOOR
    safe = np.where(held, counts, 1.0)
    means = np.where(held[:, np.newaxis], (post.mean_precision[:, np.newaxis] * post.means
                                           - prior.mean_precision * prior.mean) / safe[:, np.newaxis], post.means)
    diff = means - prior.mean
    shrink = counts * prior.mean_precision / post.mean_precision  # N_k β₀ / β_k
    if kind == "full":
        scale = post.degrees_of_freedom[:, np.newaxis, np.newaxis] * post.covariances - prior.covariance
        scatter = scale - shrink[:, np.newaxis, np.newaxis] * diff[:, :, np.newaxis] * diff[:, np.newaxis, :]
        scatter -= reg_covar * counts[:, np.newaxis, np.newaxis] * np.eye(d)
    elif kind == "tied":
        scale = post.degrees_of_freedom[0] * post.covariances - prior.covariance
        between = prior.mean_precision / len(nk) * np.dot((counts / post.mean_precision) * diff.T, diff)
        scatter = (scale - between) * len(nk) - reg_covar * counts.sum() * np.eye(d)
    elif kind == "diag":
        scale = post.degrees_of_freedom[:, np.newaxis] * post.covariances - prior.covariance
        scatter = scale - shrink[:, np.newaxis] * diff**2 - reg_covar * counts[:, np.newaxis]
    else:
        scale = post.degrees_of_freedom * post.covariances - prior.covariance
        spherical = scale - shrink * np.mean(diff**2, axis=1) - reg_covar * counts
        scatter = np.repeat(spherical[:, np.newaxis], d, axis=1)
    return nk, means, scatter


# ------------------------------------------------------------------ the weights' posterior, any family's


def weight_concentration(nk: np.ndarray, weight_type: str, prior: float) -> np.ndarray:
    """The weights' posterior given the responsibilities' sums ``nk`` (K,) under the prior ``weight_type`` (one
    of :data:`WEIGHT_PRIORS`) of concentration ``prior``: the Dirichlet's ``α₀ + N_k`` (K,), or each stick's
    Beta ``(1 + N_k, γ₀ + Σ_{j>k} N_j)`` (2, K) (Dirichlet process)."""
    if weight_type == "dirichlet_process":
        tail = np.hstack((np.cumsum(nk[::-1])[-2::-1], 0.0))  # Σ_{j>k} N_j
        return np.stack([1.0 + nk, prior + tail])
    return prior + nk


def weight_counts(concentration: np.ndarray, prior: float) -> np.ndarray:
    """:func:`weight_concentration` undone: the sums ``N_k`` (K,) a posterior ``concentration`` was formed from."""
    return concentration[0] - 1.0 if concentration.ndim == 2 else concentration - prior


def expected_weights(concentration: np.ndarray) -> np.ndarray:
    """``E_q[π_k]`` (K,) of a weights' posterior (see :func:`weight_concentration`), normalised to sum to 1
    (a truncated stick leaves the rest of the stick to no component)."""
    if concentration.ndim == 2:  # E[v_k] Π_{j<k} (1 − E[v_j]) of each stick's Beta factor
        a, b = concentration
        weights = a / (a + b) * np.hstack((1.0, np.cumprod(b / (a + b))[:-1]))
        return weights / weights.sum()
    return concentration / concentration.sum()


def weight_divergence(concentration: np.ndarray, prior: float) -> float:
    """``KL(q(π) ‖ p(π))`` (nats) of a weights' posterior ``concentration`` (see :func:`weight_concentration`)
    from its prior: the Dirichlet's from a symmetric Dirichlet(α₀), or the sum over sticks of each Beta's from
    Beta(1, γ₀)."""
    if concentration.ndim == 2:
        return beta_divergence(concentration[0], concentration[1], 1.0, prior)
    total = concentration.sum()
    return float(gammaln(total) - gammaln(concentration).sum() - gammaln(prior * len(concentration))
                 + len(concentration) * gammaln(prior) + np.sum((concentration - prior)
                                                                * (digamma(concentration) - digamma(total))))


def beta_divergence(a: np.ndarray, b: np.ndarray, a0: float, b0: float) -> float:
    """``Σ KL(Beta(a, b) ‖ Beta(a0, b0))`` (nats) over the elements of ``a`` and ``b`` (same shape)."""
    return float(np.sum(betaln(a0, b0) - betaln(a, b) + (a - a0) * digamma(a) + (b - b0) * digamma(b)
                        + (a0 - a + b0 - b) * digamma(a + b)))


def expected_log_weights(post: GaussianPosterior | np.ndarray) -> np.ndarray:
    """``E_q[log π_k]`` (K,) of a posterior or of its weights' concentration: from the Dirichlet, or from each
    stick's Beta factors (Dirichlet process)."""
    concentration = getattr(post, "weight_concentration", post)
    if concentration.ndim == 2:
        a, b = concentration
        digamma_sum = digamma(a + b)
        return digamma(a) - digamma_sum + np.hstack((0.0, np.cumsum(digamma(b) - digamma_sum)[:-1]))
    return digamma(concentration) - digamma(concentration.sum())


def expected_log_prob_offsets(post: GaussianPosterior) -> np.ndarray:
    """What ``E_q[log π_k + log p_k(x)]`` adds to ``log N(x | m_k, covariances_k)`` for every row (K,):
    ``E[log π_k] − d/2 log ν_k + ½ (Σ_j ψ((ν_k − j)/2) + d log 2 − d/β_k)``."""
    d = post.n_features
    log_lambda = d * math.log(2.0) + digamma(0.5 * (post.degrees_of_freedom - np.arange(d)[:, np.newaxis])).sum(0)
    return (expected_log_weights(post) - 0.5 * d * np.log(post.degrees_of_freedom)
            + 0.5 * (log_lambda - d / post.mean_precision))


@dataclass(frozen=True, eq=False)
class ExpectedParams(GaussianParams):
    """:class:`GaussianParams` whose log-weights are given (``offsets``, (K,)), not taken from the weights:
    they need not be normalised, and may lie below the logarithm of float64's smallest number.  The weights
    are ``softmax(offsets)`` (where the kernels take a centre)."""

    offsets: np.ndarray | None = None

    @property
    def log_weights(self) -> np.ndarray:
        return self.offsets

    def subset(self, index: np.ndarray) -> ExpectedParams:
        return dataclasses.replace(super().subset(index), offsets=self.offsets[index])


def as_gaussian_params(post: GaussianPosterior) -> ExpectedParams:
    """The posterior as Gaussian parameters whose log-weights are :func:`expected_log_prob_offsets`, so that a
    Gaussian E-step's ``log α_k + log p_k(x)`` is ``E_q[log π_k + log p_k(x)]`` — and its responsibilities
    are the variational ones."""
    offsets = expected_log_prob_offsets(post)
    weights = np.exp(offsets - offsets.max())
    return ExpectedParams(weights / weights.sum(), post.means, post.covariances, post.precisions_cholesky,
                          post.covariance_type, offsets)


def entropy(log_likelihood: float, nk: np.ndarray, s1: np.ndarray, s2: np.ndarray, reference: np.ndarray,
            post: GaussianPosterior) -> float:
    """``−Σ_i w_i Σ_k r_ik log r_ik`` of the responsibilities a pass gave under ``post``, from the pass's sums.

    Since ``log r_ik = log ρ_ik − log Σ_j ρ_ij`` (``ρ``: the E-step's terms, see :func:`as_gaussian_params`),
    the entropy is ``Σ_i w_i log Σ_j ρ_ij`` (the pass's ``log_likelihood``) less ``Σ_k Σ_i w_i r_ik log ρ_ik``;
    and that is ``Σ_k N_k (o_k + log det U_k − d/2 log 2π) − ½ Σ_k tr(P_k M_k)`` with ``o_k`` the offsets,
    ``P_k = U_k U_kᵀ`` and ``M_k = Σ_i w_i r_ik (x_i − m_k)(x_i − m_k)ᵀ``, which the moments about the
    reference points ``c_k`` give: ``s2_k − s1_k δ_kᵀ − δ_k s1_kᵀ + N_k δ_k δ_kᵀ`` with ``δ_k = m_k − c_k``.
    So no pass needs to sum ``r log r`` itself.

    Parameters
    ----------
    log_likelihood : ``Σ_i w_i log Σ_j ρ_ij`` over the rows.
    nk, s1, s2 : the pass's ``N_k``, ``Σ w r (x − c_k)`` and second moments about ``reference`` (K, d),
        as :func:`daskem.kernels.estep.chunk_statistics` returns them for the covariance type.
    """
    delta, chol, kind = post.means - reference, post.precisions_cholesky, post.covariance_type
    if kind in ("full", "tied"):
        precision = chol @ np.swapaxes(chol, -1, -2)
        if kind == "full":
            shifted = np.einsum("kij,kj->ki", precision, delta)  # P_k δ_k (K, d)
            quadratic = np.einsum("kij,kij->", precision, s2)
        else:  # one precision, and s2 summed over the components
            shifted = delta @ precision
            quadratic = float(np.sum(precision * s2))
        quadratic += np.sum(-2.0 * np.einsum("ki,ki->k", s1, shifted) + nk * np.einsum("ki,ki->k", delta, shifted))
    else:
        precision = chol**2 if kind == "diag" else (chol**2)[:, np.newaxis]
        quadratic = np.sum(precision * (s2 - 2.0 * s1 * delta + nk[:, np.newaxis] * delta**2))
    log_det = np.broadcast_to(_log_det_cholesky(post), nk.shape)
    offsets = expected_log_prob_offsets(post)
    expected = np.sum(nk * (offsets + log_det - 0.5 * post.n_features * LOG_2PI)) - 0.5 * quadratic
    return float(log_likelihood - expected)


def _log_det_cholesky(post: GaussianPosterior) -> np.ndarray:
    """``log det`` of each precision Cholesky factor (K,; tied: one value)."""
    chol, kind = post.precisions_cholesky, post.covariance_type
    if kind == "full":
        return np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    if kind == "tied":
        return np.log(np.diagonal(chol)).sum()
    if kind == "diag":
        return np.log(chol).sum(axis=1)
    return post.n_features * np.log(chol)


def lower_bound(post: GaussianPosterior, entropy: float) -> float:
    """The evidence lower bound on scikit-learn's scale (its constant terms dropped), for responsibilities
    whose entropy ``−Σ_i Σ_k r_ik log r_ik`` is ``entropy`` and the posterior they gave."""
    d, tied = post.n_features, post.covariance_type == "tied"
    dof = post.degrees_of_freedom[:1] if tied else post.degrees_of_freedom  # tied: one Wishart
    log_det = np.atleast_1d(_log_det_cholesky(post)) - 0.5 * d * np.log(dof)
    log_wishart = -(dof * log_det + dof * d * 0.5 * math.log(2.0)
                    + gammaln(0.5 * (dof - np.arange(d)[:, np.newaxis])).sum(0))
    log_wishart = (post.n_components if tied else 1) * log_wishart.sum()
    concentration = post.weight_concentration
    if concentration.ndim == 2:
        log_norm_weight = -np.sum(betaln(concentration[0], concentration[1]))
    else:
        log_norm_weight = gammaln(concentration.sum()) - gammaln(concentration).sum()
    return float(entropy - log_wishart - log_norm_weight - 0.5 * d * np.log(post.mean_precision).sum())
