"""Families whose components are products over features of a distribution set by its mean.

For Bernoulli and Poisson components (and any exponential family of one
parameter per feature), ``log α_k + log p_k(x)`` is linear in x:

    log α_k + log p_k(x) = x · a_k + b_k + c(x),   b_k = log α_k + Σ_j β_kj,

with ``a_k`` and ``β_k`` (d,) from the parameters and ``c(x)`` from the row
alone.  A missing value (NaN, with ``missing="nan"``) drops its feature's
term ``x_j a_kj + β_kj`` out: the row's density is the marginal of its observed
features, the statistics count each feature's observed rows per component,
and the M-step divides by them.  So a block's log densities are one matrix product ``X A + b`` (b, K),
and its statistics are ``N_k = Σ w r`` and ``S_k = Σ w r x``, another product
``Rᵀ X`` (K, d).  The M-step is "mean of the sufficient statistic":
``α_k = N_k / Σ N``, ``m_kj = S_kj / N_k``, kept off the edges of the
parameter space by the family's floor.  A family supplies ``a``, ``b``, ``c``,
its domain check and its floor (:class:`ProductFamily`).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import numpy as np

from daskem.exceptions import DomainError, InputError, ModelFileError
from daskem.families.base import Family, MixtureStatistics
from daskem.kernels import fused
from daskem.kernels.block_kernels import normalise
from daskem.kernels.checks import check_weights
from daskem.kernels.gaussian import NK_FLOOR, ComponentMeans  # NK_FLOOR: the same for every family

#: Bytes of a block's (K, b) log densities: a cache-sized block.
BLOCK_BYTES = 2**20
@dataclass(frozen=True, eq=False)
class MeanParams(ComponentMeans):
    """Parameters of a mixture of product components: weights (K,) summing to 1, and
    means (K, d) — each feature's success probability or rate under each component."""

    weights: np.ndarray
    means: np.ndarray

    @property
    def log_weights(self) -> np.ndarray:
        """What the E-step adds to each component's log density (K,): ``log α_k`` (a variational posterior's
        ``E[log π_k]``, see :mod:`daskem.families.bayesian_product`)."""
        return np.log(self.weights)


@dataclass(frozen=True, eq=False)
class MeanStatistics(MixtureStatistics):
    """Summed statistics of some rows under one candidate's :class:`MeanParams`.

    ``log_likelihood`` ``Σ w log p(x)`` (nats), ``weight_sum`` ``Σ w``,
    ``n_samples`` rows, ``nk`` (K,) ``Σ w r``, ``s1`` (K, d) ``Σ w r x`` over
    observed values, ``unseen`` (K, d) ``Σ w r`` over missing ones, the K rows
    of positive weight the parameters explain worst (their log-likelihoods,
    global indices and values, missing ones as the component means would
    fill them), and the missing counts.
    """

    log_likelihood: float
    weight_sum: float
    n_samples: int
    nk: np.ndarray
    s1: np.ndarray
    unseen: np.ndarray
    worst_log_prob: np.ndarray
    worst_index: np.ndarray
    worst_rows: np.ndarray
    missing: tuple[int, int, int] = (0, 0, 0)

    def __add__(self, other: MeanStatistics) -> MeanStatistics:
        worst_log_prob, worst_index, worst_rows = self.worst_of_both(other)
        return MeanStatistics(
            self.log_likelihood + other.log_likelihood, self.weight_sum + other.weight_sum,
            self.n_samples + other.n_samples, self.nk + other.nk, self.s1 + other.s1, self.unseen + other.unseen,
            worst_log_prob, worst_index, worst_rows, self.missing_of_both(other),
        )


class ProductFamily(Family):
    """A family of product components set by their means (see the module's docstring).

    Subclasses give :meth:`natural`, :meth:`row_terms`, :meth:`check_rows`,
    :meth:`floor`, :meth:`variance`, :meth:`random_means` and :meth:`draw`.
    """

    discrete = True

    @abstractmethod
    def natural(self, params: MeanParams) -> tuple[np.ndarray, np.ndarray]:
        """``A`` and ``B`` (d, K) with ``log p_k(x) = Σ_j x_j A[j, k] + B[j, k] + c(x)``."""

    @abstractmethod
    def row_terms(self, X: np.ndarray) -> np.ndarray | None:
        """``c(x)`` (n,) of each row, or None where it is 0."""

    @abstractmethod
    def check_rows(self, X: np.ndarray, first_row: int, rows: np.ndarray | None = None) -> None:
        """Raise :class:`~daskem.exceptions.DomainError` naming the first value of X (n, d) outside the
        family's domain (its row: ``first_row`` + its position, or ``rows[position]`` when given)."""

    def check_sample(self, rows: np.ndarray, index: np.ndarray) -> None:
        """The rows (m, d) sampled to initialise (NaN for missing values), rows ``index`` (m,) of the data,
        checked against the family's domain (see :meth:`check_rows`)."""
        self.check_rows(np.where(np.isnan(rows), 0.0, rows), 0, index)

    @abstractmethod
    def floor(self, means: np.ndarray) -> np.ndarray:
        """The means (K, d) of an M-step, kept off the edges where the log density is infinite."""

    @abstractmethod
    def variance(self, means: np.ndarray) -> np.ndarray:
        """The variance of each feature of components with ``means`` (same shape)."""

    @abstractmethod
    def random_means(self, n_components: int, n_features: int, rng: np.random.Generator) -> np.ndarray:
        """Means (K, d) of components that differ clearly, for synthetic data."""

    @abstractmethod
    def draw(self, means: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """``n_samples`` rows (n, d) float64 of the component with ``means`` (d,)."""

    #: What the means are, in words, and the closed range they lie in.
    means_are: str
    means_range: tuple[float, float]

    def _prepared(self, X: np.ndarray, first_row: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The rows as float64 with missing values at 0, checked, and where they are missing (None
        where nothing is)."""
        X = np.asarray(X, dtype=np.float64)
        gaps = np.isnan(X) if self.takes_missing else None
        if gaps is not None and gaps.any():
            X = np.where(gaps, 0.0, X)
        else:
            gaps = None
        self.check_rows(X, first_row)
        return X, gaps

    def _log_prob(self, X: np.ndarray, gaps: np.ndarray | None, natural: np.ndarray, per_feature: np.ndarray,
                  offsets: np.ndarray) -> np.ndarray:
        """``log α_k + log p_k(x_o) − c(x)`` (K, b) of rows X (b, d) from the transposed coefficients
        (K, d) and ``log α_k + Σ_j β_kj`` (K, 1)."""
        log_prob = natural @ X.T + offsets
        if gaps is not None:
            log_prob -= per_feature @ gaps.T
        return log_prob

    def _coefficients(self, params: MeanParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``A`` and ``B`` transposed (K, d) and ``log α_k + Σ_j β_kj`` (K, 1)."""
        natural, per_feature = (np.ascontiguousarray(array.T) for array in self.natural(params))
        return natural, per_feature, (params.log_weights + per_feature.sum(axis=1))[:, np.newaxis]

    def chunk_statistics(
        self, X: np.ndarray, params: MeanParams, first_row: int, sample_weight: np.ndarray | None
    ) -> MeanStatistics:
        """The E-step of a chunk, block by block: log densities ``X A + b``, their log-sum-exp,
        and the moments ``Rᵀ X``; all in float64."""
        X, gaps = self._prepared(X, first_row)
        if sample_weight is not None:
            sample_weight = check_weights(sample_weight, len(X), first_row)
        empty = None if gaps is None else gaps.all(axis=1)
        if empty is not None and empty.any():  # nothing observed: no information, left out
            sample_weight = np.where(empty, 0.0, 1.0 if sample_weight is None else sample_weight)
        coefficients = self._coefficients(params)
        k, d = params.n_components, X.shape[1]
        nk, s1, unseen = np.zeros(k), np.zeros((k, d)), np.zeros((k, d))
        log_prob_norm = np.empty(len(X))
        step = max(1, BLOCK_BYTES // (8 * k))
        for start in range(0, len(X), step):
            rows = slice(start, start + step)
            block_gaps = None if gaps is None else gaps[rows]
            # (K, b): components first, so that the log-sum-exp runs over whole rows of b values
            log_prob_norm[rows], resp = normalise(self._log_prob(X[rows], block_gaps, *coefficients))
            if sample_weight is not None:
                resp *= sample_weight[rows]
            nk += resp.sum(axis=1)
            s1 += resp @ X[rows]
            if block_gaps is not None:
                unseen += resp @ block_gaps
        terms = self.row_terms(X)  # the same for every component: it moves log p(x), not r
        if terms is not None:
            log_prob_norm += terms
        weights = np.empty(0) if sample_weight is None else sample_weight
        worst = fused.worst_rows(log_prob_norm, weights, k)
        worst_rows = X[worst]
        if gaps is not None:  # filled as the most responsible component's means would fill them
            labels = self._log_prob(X[worst], gaps[worst], *coefficients).argmax(axis=0)
            worst_rows = np.where(gaps[worst], params.means[labels], worst_rows)
        counts = (0, 0, 0) if gaps is None else (int(gaps.sum()), int(gaps.any(axis=1).sum()), int(empty.sum()))
        return MeanStatistics(
            float(log_prob_norm.sum() if sample_weight is None else sample_weight @ log_prob_norm),
            float(len(X) if sample_weight is None else sample_weight.sum()), len(X) - counts[2], nk, s1, unseen,
            log_prob_norm[worst], worst + first_row, worst_rows, counts,
        )

    def e_step(self, X: np.ndarray, params: MeanParams, first_row: int) -> tuple[np.ndarray, np.ndarray]:
        X, gaps = self._prepared(X, first_row)
        log_prob = self._log_prob(X, gaps, *self._coefficients(params))  # (K, n)
        log_prob_norm, _ = normalise(log_prob)
        log_resp = (log_prob - log_prob_norm).T
        terms = self.row_terms(X)
        if terms is not None:
            log_prob_norm += terms
        if gaps is not None:  # nothing observed: the weights' terms alone
            empty = gaps.all(axis=1)
            log_prob_norm[empty], log_resp[empty] = self._empty_row_scores(params)
        return log_prob_norm, log_resp

    def log_prob(self, X: np.ndarray, params: MeanParams, first_row: int) -> np.ndarray:
        X, gaps = self._prepared(X, first_row)
        log_prob = self._log_prob(X, gaps, *self._coefficients(params))
        terms = self.row_terms(X)
        if terms is not None:
            log_prob += terms
        if gaps is not None:  # nothing observed: the weights' terms alone
            log_prob[:, gaps.all(axis=1)] = params.log_weights[:, np.newaxis]
        return log_prob

    def _empty_row_scores(self, params: MeanParams) -> tuple[float, np.ndarray]:
        """``log p(x)`` and the log responsibilities (K,) of a row with nothing observed: 0 and ``log α``."""
        return 0.0, np.log(params.weights)

    def impute(self, X: np.ndarray, params: MeanParams, first_row: int) -> np.ndarray:
        """Each missing value replaced by ``Σ_k r_k m_kj``, r the responsibilities given the row's
        observed values (the mixture's weights where nothing is observed)."""
        X = np.asarray(X, dtype=np.float64)
        gaps = np.isnan(X)
        filled = np.where(gaps, 0.0, X)
        self.check_rows(filled, first_row)
        log_prob = self._log_prob(filled, gaps, *self._coefficients(params))
        expected = normalise(log_prob)[1].T @ params.means  # (n, d)
        return np.where(gaps, expected, X)

    def m_step(self, stats: MeanStatistics, may_reseed: np.ndarray) -> tuple[MeanParams, list[tuple[int, int]]]:
        """``α = N / Σ N``, means ``S / N`` within the floor; collapsed components that may
        restart take weight 1/K and the worst-explained rows (within the floor) as means."""
        weights, means = _weights_and_means(stats.nk, stats.s1, stats.unseen)
        collapsed = stats.collapsed()
        collapsed = collapsed[may_reseed[collapsed]][: len(stats.worst_index)]
        if collapsed.size:
            means[collapsed] = stats.worst_rows[: collapsed.size]
            weights[collapsed] = 1.0 / len(weights)
            weights = weights / weights.sum()
        restarts = list(zip(collapsed.tolist(), stats.worst_index[: collapsed.size].tolist()))
        return MeanParams(weights, self.floor(means)), restarts

    # ------------------------------------------------------------------ stepwise EM

    def stepwise_dims(self) -> dict[str, tuple[str, ...]]:
        """``N_k``, ``S_k`` (sums of observed values) and the counts of unseen values, per unit weight;
        linear in the rows, they blend linearly."""
        return {"running_weights": ("component",), "running_sums": ("component", "feature"),
                "running_unseen": ("component", "feature")}

    def stepwise_statistics(self, stats: MeanStatistics) -> dict[str, np.ndarray]:
        total = stats.weight_sum
        return {"running_weights": stats.nk / total, "running_sums": stats.s1 / total,
                "running_unseen": stats.unseen / total}

    def stepwise_start(self, params: MeanParams) -> dict[str, np.ndarray]:
        """``α_k``, ``α_k m_k`` and no unseen value."""
        weights = params.weights
        return {"running_weights": weights.copy(), "running_sums": weights[:, np.newaxis] * params.means,
                "running_unseen": np.zeros_like(params.means)}

    def stepwise_as_statistics(self, running: dict[str, np.ndarray]) -> MeanStatistics:
        sums = running["running_sums"]
        return MeanStatistics(0.0, 1.0, 1, running["running_weights"], sums, running["running_unseen"],
                              np.empty(0), np.empty(0, dtype=np.int64), np.empty((0, sums.shape[1])))

    def n_parameters(self, n_components: int, n_features: int) -> int:
        """K − 1 weights and K·d means."""
        return n_components - 1 + n_components * n_features

    # ------------------------------------------------------------------ starting

    def given_shapes(self, n_components: int, n_features: int) -> dict[str, tuple[int, ...]]:
        return {"weights_init": (n_components,), "means_init": (n_components, n_features)}

    def check_given(self, given: dict[str, np.ndarray]) -> None:
        means = given.get("means_init")
        if means is not None and not self._in_range(means):
            low, high = self.means_range
            raise InputError(f"means_init holds {self.means_are}, which lie in [{low:g}, {high:g}]; "
                             f"got values from {means.min():g} to {means.max():g}")

    def with_given(self, estimated: MeanParams | None, given: dict[str, np.ndarray | None]) -> MeanParams:
        """The given arrays in place of the estimated ones; given means are kept within the floor."""
        weights, means = given.get("weights_init"), given.get("means_init")
        return MeanParams(estimated.weights if weights is None else weights,
                          estimated.means if means is None else self.floor(means))

    def assignment_statistics(
        self, X: np.ndarray, assignment: np.ndarray, weights: np.ndarray, reference: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``N_k`` (K,) and ``S_k`` (K, d), the weighted counts and sums of each component's rows
        (``reference`` only gives K)."""
        k = len(reference)
        if assignment.ndim == 2:
            resp = assignment * weights[:, np.newaxis]
            return resp.sum(axis=0), resp.T @ X
        order = np.argsort(assignment, kind="stable")
        bounds = np.searchsorted(assignment[order], np.arange(k + 1))
        nk, s1 = np.zeros(k), np.zeros((k, X.shape[1]))
        for component in np.flatnonzero(np.diff(bounds)):
            rows = order[bounds[component] : bounds[component + 1]]
            nk[component], s1[component] = weights[rows].sum(), weights[rows] @ X[rows]
        return nk, s1

    def posterior_statistics(self, X: np.ndarray, posteriors: np.ndarray, params: MeanParams,
                             first_row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``N_k`` (K,), ``S_k`` (K, d) the sums of observed values and the counts of missing ones (K, d), each
        weighted by the posteriors."""
        X, gaps = self._prepared(X, first_row)
        unseen = np.zeros((len(params.means), X.shape[1])) if gaps is None else posteriors.T @ gaps
        return posteriors.sum(axis=0), posteriors.T @ X, unseen

    def params_from_posterior_statistics(self, stats: tuple[np.ndarray, ...], params: MeanParams) -> MeanParams:
        """Weights ``N / Σ N`` and means ``S / (N − U)`` within the floor."""
        weights, means = _weights_and_means(*stats)
        return MeanParams(weights, self.floor(means))

    def params_from_assignment(self, stats: tuple[np.ndarray, ...], reference: np.ndarray) -> MeanParams:
        weights, means = _weights_and_means(*stats)
        return MeanParams(weights, self.floor(means))

    # ------------------------------------------------------------------ model files and sampling

    def dims(self) -> dict[str, tuple[str, ...]]:
        return {"weights": ("component",), "means": ("component", "feature")}

    def from_variables(self, arrays: dict[str, np.ndarray], source: str) -> MeanParams:
        """The parameters, once the means are found within the floor (as every fit leaves them)."""
        means = arrays["means"]
        if not np.array_equal(self.floor(means), means):
            low, high = self.floor(np.array([-np.inf, np.inf]))
            raise ModelFileError(
                f"{source}: means holds {self.means_are} from {means.min():g} to {means.max():g}, outside "
                f"[{low:.12g}, {high:.12g}], where a {self.label} mixture keeps them: the file is damaged, edited or "
                "relabelled from another family; write the model again (daskem fit … --out)"
            )
        return MeanParams(arrays["weights"], means)

    def combined(self, arrays: dict[str, np.ndarray]) -> MeanParams:
        """Means inside the family's domain, kept within the floor as an M-step keeps them (a combination
        of floored means lands a rounding off it); others are refused."""
        if not self._in_range(arrays["means"]):
            raise ModelFileError("an extrapolated EM step leaves the family's domain")
        return MeanParams(arrays["weights"], self.floor(arrays["means"]))

    def random_params(self, n_components: int, n_features: int, rng: np.random.Generator) -> MeanParams:
        """:meth:`random_means` within the floor, and weights from a Dirichlet(5, …, 5) (no tiny component)."""
        means = self.floor(self.random_means(n_components, n_features, rng))
        return MeanParams(rng.dirichlet(np.full(n_components, 5.0)), means)

    def variances(self, params: MeanParams) -> np.ndarray:
        return self.variance(params.means)

    def sample(self, params: MeanParams, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        counts = rng.multinomial(n_samples, params.weights)
        rows = [self.draw(means, count, rng) for means, count in zip(params.means, counts)]
        return np.vstack(rows), np.repeat(np.arange(params.n_components), counts)

    def _in_range(self, means: np.ndarray) -> bool:
        low, high = self.means_range
        return bool(((means >= low) & (means <= high)).all())



def raise_outside(
    X: np.ndarray, index: int, first_row: int, domain: str, rows: np.ndarray | None = None
) -> None:
    """Raise :class:`DomainError` for the value at flat ``index`` of X (n, d) (−1: none), naming its row
    and feature; ``domain`` says what the family takes.  ``rows`` (n,): the rows' indices in the data when
    they are not ``first_row, first_row + 1, …`` (a sample)."""
    if index >= 0:
        row, feature = divmod(index, X.shape[1])
        where = int(rows[row]) if rows is not None else first_row + row
        raise DomainError(f"row {where}, feature {feature} holds {float(X[row, feature])!r}; {domain}")


def _weights_and_means(
    nk: np.ndarray, s1: np.ndarray, unseen: np.ndarray | float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``N / Σ N`` (K,) and means ``S / (N − U)`` (K, d) of summed counts, sums of observed
    values and counts of unseen ones, an empty component (or feature) dividing by ``NK_FLOOR``."""
    nk = nk + NK_FLOOR
    return nk / nk.sum(), s1 / np.maximum(nk[:, np.newaxis] - unseen, NK_FLOOR)
