"""Checks of data values (pure NumPy) that every pass and the initialisation share.

Each names what is wrong, where, and what to do, so that bad data end in one
clear line rather than a NaN fit or a traceback from inside NumPy.
"""

from __future__ import annotations

import warnings

import numpy as np

from daskem.exceptions import DataScaleWarning, InputError, NonFiniteDataError

#: Largest magnitude of a data value: products of values and their sums over
#: billions of rows must stay far inside float64's range (about 1e308).
MAX_MAGNITUDE = 1e150
#: Smallest spread (maximum − minimum) of a varying feature: its squares must
#: stay far above float64's smallest normal number (about 1e-308).
MIN_SPREAD = 1e-150


def raise_non_finite(X: np.ndarray, first_row: int, during: str = "", hint: str = "") -> None:
    """Raise :class:`NonFiniteDataError` naming the first row of X (n, d) that is not finite, if any.

    ``first_row`` is the index of X's first row in the whole data set;
    ``during`` says what daskem was doing, ``hint`` what else the user may do (for the message).
    """
    bad = ~np.isfinite(X).all(axis=1)
    if not bad.any():
        return
    rows = np.flatnonzero(bad)
    values = int(np.count_nonzero(~np.isfinite(X[rows])))
    raise NonFiniteDataError(
        f"the data hold NaN or infinite values, first at row {first_row + int(rows[0])} "
        f"({values} value(s) in {len(rows)} row(s) among rows {first_row}–{first_row + len(X) - 1}"
        f"{', ' + during if during else ''}); remove or impute them{hint}"
    )


def raise_non_finite_log_likelihood(
    X: np.ndarray, log_prob_norm: np.ndarray, first_row: int, during: str = ""
) -> None:
    """Explain log-likelihoods (n,) of rows X (n, d) that are not all finite: bad values, or values too large.

    Raises
    ------
    NonFiniteDataError
        Always, naming the first row at fault.
    """
    raise_non_finite(X, first_row, during)
    bad = np.flatnonzero(~np.isfinite(log_prob_norm))
    raise NonFiniteDataError(
        f"{len(bad)} row(s) have a log-likelihood that is not finite, first row {first_row + int(bad[0])} "
        f"(values too large for float64 arithmetic{', ' + during if during else ''}); rescale the features"
    )


def check_weights(
    sample_weight: np.ndarray, n_rows: int, first_row: int = 0, rows: np.ndarray | None = None
) -> np.ndarray:
    """The weights (n_rows,) of the rows starting at ``first_row`` as float64, checked finite and >= 0.

    ``rows`` (n_rows,) gives the rows' indices in the data when they are not
    consecutive (a sample), for the message.
    """
    sample_weight = np.asarray(sample_weight, dtype=np.float64)
    if sample_weight.shape != (n_rows,):
        raise InputError(
            f"sample_weight has shape {sample_weight.shape} for the {n_rows} rows starting at row {first_row}"
        )
    bad = ~(np.isfinite(sample_weight) & (sample_weight >= 0))
    if bad.any():
        first = int(np.argmax(bad))
        where = (f"first at row {int(rows[first])}" if rows is not None else
                 f"first at row {first_row + first}, among rows {first_row}–{first_row + n_rows - 1}")
        raise InputError(
            f"sample_weight holds {int(bad.sum())} negative, NaN or infinite value(s) ({where}); "
            "weights must be finite and >= 0"
        )
    return sample_weight


def check_magnitude(minimum: np.ndarray, maximum: np.ndarray) -> None:
    """Refuse features whose values float64 moments cannot hold.

    Parameters
    ----------
    minimum, maximum : (d,) per-feature minimum and maximum of (some of) the rows.

    Raises
    ------
    InputError
        A value beyond ±``MAX_MAGNITUDE``, or a feature that varies by less
        than ``MIN_SPREAD`` (say which, and to rescale).
    """
    magnitude = np.maximum(np.abs(minimum), np.abs(maximum))
    huge = np.flatnonzero(magnitude > MAX_MAGNITUDE)
    if huge.size:
        j = int(huge[0])
        raise InputError(
            f"feature {j} reaches {magnitude[j]:.3g}: values beyond {MAX_MAGNITUDE:.0e} overflow float64 in the "
            "second moments; rescale the features (for example, standardise them) before fitting"
        )
    spread = maximum - minimum
    tiny = np.flatnonzero((spread > 0) & (spread < MIN_SPREAD))
    if tiny.size:
        j = int(tiny[0])
        raise InputError(
            f"feature {j} varies by only {spread[j]:.3g}: spreads below {MIN_SPREAD:.0e} underflow float64 in the "
            "second moments; rescale the features (for example, standardise them) before fitting"
        )


def raise_unobserved(minimum: np.ndarray, maximum: np.ndarray, where: str = "") -> None:
    """Refuse features with no observed value: those whose range (d,) is empty (+inf, −inf)."""
    unseen = np.flatnonzero(minimum > maximum)
    if len(unseen):
        raise InputError(f"feature(s) {', '.join(map(str, unseen[:10]))} have no observed value{where} (every "
                         "value is missing); drop them")


def check_ranges(minimum: np.ndarray, maximum: np.ndarray, n_rows: int, reg_covar: float) -> None:
    """Refuse data no mixture density exists for; warn where ``reg_covar`` swamps a feature.

    Parameters
    ----------
    minimum, maximum : (d,) per-feature minimum and maximum of all the rows' observed values
        (+inf and −inf for a feature with none).
    n_rows : how many rows (for the message).
    reg_covar : the value added to the variances.

    Raises
    ------
    InputError
        All rows identical, a feature with the same value in every row (or
        with no observed value), or values float64 cannot square (see
        :func:`check_magnitude`).

    Warns
    -----
    DataScaleWarning
        When a feature's spread squared is below ``reg_covar``: its fitted
        variances are then mostly ``reg_covar``.
    """
    raise_unobserved(minimum, maximum)
    spread = maximum - minimum
    constant = np.flatnonzero(spread == 0)
    if len(constant) == len(minimum):
        if n_rows == 1:
            raise InputError("the data hold 1 sample; a mixture needs at least 2 rows that differ")
        raise InputError(f"all {n_rows} rows are identical; a mixture needs data that vary")
    if len(constant):
        named = ", ".join(f"{j} (always {minimum[j]:g})" for j in constant[:10])
        raise InputError(
            f"feature(s) {named} have the same value in every row: their variance is zero; "
            "drop them before fitting"
        )
    check_magnitude(minimum, maximum)
    swamped = np.flatnonzero(spread**2 < reg_covar)
    if swamped.size:
        j = int(swamped[0])
        warnings.warn(
            f"feature {j} varies by only {spread[j]:.3g}, so reg_covar={reg_covar:g} exceeds its variance and "
            f"dominates the fitted covariances ({swamped.size} feature(s) like this); standardise the features "
            "or lower reg_covar",
            DataScaleWarning,
            stacklevel=4,
        )
