"""The scikit-learn-style estimator :class:`GaussianMixture`."""

from __future__ import annotations

import numpy as np

from daskem.estimators.base import BaseMixture
from daskem.estimators.settings import estimator_settings
from daskem.families.gaussian import GaussianFamily
from daskem.settings import Setting, settings_init

__all__ = ["GaussianMixture"]

#: The estimator's own setting (see :class:`GaussianMixture`).
PRECISION = Setting("precision", "auto", "auto: float32 arithmetic for float32 data; float64: always float64.", str,
                    choices=("auto", "float64"))


class GaussianMixture(BaseMixture):
    """Gaussian mixture model fitted by EM, out of core.

    A scikit-learn estimator: parameters mean what they mean in
    :class:`sklearn.mixture.GaussianMixture`, and ``clone``, ``Pipeline`` and
    ``GridSearchCV`` work with it.

    Parameters
    ----------
    n_components : int, default 1
        Number of mixture components K.
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
        Structure of the component covariances.
    tol : float, default 1e-3
        Convergence threshold, in nats per row (per unit weight when
        weighted).  With ``acceleration="none"``, on the change of the mean
        log-likelihood between two passes, as scikit-learn.  With
        ``"squarem"``, the fit stops once an EM step gains less than ``tol``
        and the gain still to come is estimated below ``tol / 100``, in two
        SQUAREM cycles in a row: the default stops within about 1e-4 of the
        optimum, where scikit-learn's rule can stop 0.03 short when
        components overlap.
    reg_covar : float, default 1e-6
        Non-negative number added to the variances.
    max_iter : int, default 100
        Most EM iterations: passes over the data.  0 keeps the initial
        parameters (``n_iter_`` 0, ``lower_bound_`` −inf), as scikit-learn.
    acceleration : {"squarem", "none"}, default "squarem"
        "squarem": accelerated EM (SQUAREM, see :mod:`daskem.engine.acceleration`),
        typically 2–4× fewer passes where components overlap, never a lower
        log-likelihood from pass to pass.  "none": textbook EM, one EM step
        per pass — for step-by-step comparison with scikit-learn.
    n_init : int, default 1
        Number of initialisations; the run with the best lower bound is kept.
        All runs advance together, reading the data once per iteration.
    init_params : {"k-means++", "k-means||", "kmeans", "random", "random_from_data"}
        How initial parameters are estimated (see :mod:`daskem.engine.initialization`).
    weights_init, means_init, precisions_init : array-like, optional
        Initial weights (K,), means (K, d) and precisions (of the shape of
        ``covariances_`` for the covariance type).
    random_state : int, numpy.random.Generator, numpy.random.RandomState or None
        Seed of the initialisation and of :meth:`sample`, with scikit-learn's
        meanings (see :func:`daskem.engine.initialization.random_generator`).
    warm_start : bool, default False
        When True, each ``fit`` starts from the parameters of the last one
        (``n_init`` is then ignored).
    verbose : int, default 0
        When positive, log one line per iteration to the ``daskem`` logger
        (and show it on stderr if logging is not configured); from 2, also
        Dask's progress bar on stderr for every pass longer than a second
        (local scheduler).  For a bar of your own, pass ``callbacks`` to
        :meth:`fit`.
    chunk_rows : int, optional
        Rows per Dask chunk; by default taken from the data (see
        :func:`daskem.io.inputs.as_row_chunked`).
    split_every : int, default 8
        Fan-in of the reduction tree.
    precision : {"auto", "float64"}, default "auto"
        Arithmetic inside each block of rows.  "auto": float32 for float32
        data (sums across blocks stay float64; parameters within ~1e-6 of the
        float64 fit's), float64 otherwise.  "float64": always float64, the
        reference.
    sample_dim : str or tuple of str, optional
        For xarray inputs (and Zarr groups opened through xarray when given):
        the dimension of the rows.  Several are stacked into rows, and
        :meth:`score_dataset` returns the scores over them again: a
        (y, x, band) image with ``sample_dim=("y", "x")`` gives a (y, x)
        label map.  By default every dimension but the features'.
    feature_dim : str, optional
        The dimension of the features; by default the one other than
        ``sample_dim``, else the one named band, channel, feature or variable,
        else the second of two (see :func:`daskem.io.inputs.as_rows`).  Its
        coordinate, if it holds strings, becomes ``feature_names_in_``.
    missing : {"nan", "error"}, default "nan"
        "nan": NaN marks a missing value, and EM is exact for it — each row's
        E-step uses its observed coordinates (the marginal density), the
        M-step the expected complete-data statistics (conditional means and
        covariances of the missing coordinates given the observed ones), and
        the log-likelihood is the observed-data one; rows with nothing
        observed are left out; scoring uses the marginal density of the
        observed coordinates; :meth:`impute` fills the holes.  Every start
        handles holes (see :mod:`daskem.engine.initialization`).  "error": NaN is
        refused.  Infinite values are refused either way.
    strict_chunks : bool, default False
        For Zarr inputs: whether a store that lacks chunk files is refused.
        Zarr reads an absent chunk as the array's fill value (it does not
        store chunks equal to it), so by default absent chunks are counted
        (``n_absent_chunks_``) and said in an
        :class:`~daskem.exceptions.AbsentChunksWarning`; with a NaN fill value
        their rows are missing values.  True: a
        :class:`~daskem.exceptions.CorruptDataError` naming how many chunks and
        which rows are absent, before any pass.  The store is listed once per
        ``fit`` (and per ``predict``, ``score``, … of a path).
    decay : float in (0.5, 1], default 0.7
        The step size of :meth:`partial_fit` (stepwise EM): the t-th batch
        blended into the running statistics weighs ``(t + 1) ** -decay``, the
        statistics so far the rest.  1 gives the plain running average of the
        batches — the best for a stream that never changes, but a poor start
        (the statistics of the first batches, computed at parameters far from
        the optimum) fades only as 1/t, and the model never follows a drift.
        The default 0.7 (Cappé & Moulines 2009 take exponents in (0.5, 1];
        scikit-learn's online LDA defaults to 0.7) forgets the early batches
        faster while the steps still add up to infinity and their squares do
        not, as stepwise EM's convergence needs.

    Attributes
    ----------
    weights_ : (K,) ndarray
    means_ : (K, d) ndarray
    covariances_ : ndarray, (K, d, d) full, (d, d) tied, (K, d) diag, (K,) spherical
    precisions_ : ndarray, shaped like ``covariances_``
    precisions_cholesky_ : ndarray, shaped like ``covariances_``
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean log-likelihood per row (per unit weight) at the start of the last
        iteration of the best run; after :meth:`partial_fit`, the running mean
        log-likelihood of the batches (each at the parameters it was read at).
    history_ : (n_iter_,) ndarray
        Mean log-likelihood at the start of each iteration of the best run.
    reseeded_ : list of (iteration, component, row)
        Components that collapsed and were restarted at a row (see
        :func:`daskem.engine.em.run_em`).
    n_features_in_ : int
    feature_names_in_ : (n_features_in_,) ndarray of str
        The column names of a pandas or Dask DataFrame fitted on (only then),
        checked at predict and kept in the model file.
    n_absent_chunks_ : int
        Stored chunks of a Zarr input (and of weights read from its group)
        that were absent, read as the fill value; 0 for other inputs.  Kept in
        the model file.
    n_batches_ : int
        The batches :meth:`partial_fit` has learnt from since the last ``fit``
        (0 after ``fit``).  Kept in the model file with the running statistics.
    family_ : daskem.families.gaussian.GaussianFamily
        The fitted component family with its settings (covariance type,
        ``reg_covar``, ``missing``): what scores rows and writes the model file.
    """

    FAMILY = GaussianFamily
    OWN = (PRECISION,)
    SETTINGS = estimator_settings(GaussianFamily, *OWN)
    __init__ = settings_init(SETTINGS)

    def _float32(self) -> bool:
        return self.precision == "auto"

    @property
    def covariances_(self) -> np.ndarray:
        return self.params.covariances

    @property
    def precisions_cholesky_(self) -> np.ndarray:
        return self.params.precisions_cholesky

    @property
    def precisions_(self) -> np.ndarray:
        return self.params.precisions
