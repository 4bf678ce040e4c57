"""Errors and warnings raised by daskem.

Every error a user can cause derives from :class:`DaskemError`, so command-line
front ends can turn them into a one-line message.  They also derive from the
built-in class a Python user would expect (``ValueError``, ``FileNotFoundError``),
so ``except ValueError`` keeps working.
"""

from __future__ import annotations

from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

from daskem.redaction import redact


class DaskemError(Exception):
    """Base class of the errors that daskem raises on purpose; their messages are redacted
    (see :mod:`daskem.redaction`), so no credential written into a URL reaches them."""

    def __new__(cls, *args: object, **kwargs: object) -> DaskemError:
        return super().__new__(cls, *_redacted(args), **kwargs)

    def __init__(self, *args: object) -> None:
        super().__init__(*_redacted(args))


def _redacted(args: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(redact(a) if isinstance(a, str) else a for a in args)


class InputError(DaskemError, ValueError):
    """The data or the parameters given to daskem cannot be used as they are."""


class InputTypeError(InputError, TypeError):
    """The data hold values that are not numbers (also a ``TypeError``, as NumPy's would be)."""


class InputNotFoundError(DaskemError, FileNotFoundError):
    """A path, a Zarr group member or a dataset variable does not exist."""


class NonFiniteDataError(InputError):
    """The data hold NaN or infinite values."""


class DomainError(InputError):
    """The data hold a value that the component family cannot produce (a 0.5 for Bernoulli components)."""


class DataChangedError(InputError):
    """The data differ from those a checkpoint was written for."""


class CorruptDataError(InputError):
    """A stored chunk of the data is missing or cannot be decoded."""


class ModelFileError(InputError):
    """A model file (or checkpoint) is damaged, hand-edited into nonsense, or from a newer daskem."""


class CovarianceError(DaskemError, ValueError):
    """A component's covariance matrix is not positive definite."""


class NotFittedError(DaskemError, _SklearnNotFittedError):
    """The estimator is used before ``fit`` (scikit-learn's error, so ``check_is_fitted`` and
    ``except sklearn.exceptions.NotFittedError`` work)."""


class ConvergenceWarning(_SklearnConvergenceWarning):
    """EM stopped at ``max_iter`` before the log-likelihood converged (scikit-learn's warning)."""


class OutputExistsError(DaskemError, FileExistsError):
    """The output path exists and overwriting was not asked for (``output``: the Output, where known)."""

    output: object = None


class DataScaleWarning(UserWarning):
    """A feature varies so little that ``reg_covar`` dominates its fitted variances."""


class ComponentCollapseWarning(UserWarning):
    """A component lost (nearly) all its weight and was restarted or left empty."""


class AbsentChunksWarning(UserWarning):
    """Chunk files of the data's Zarr store are absent, so their rows read as the array's fill value."""
