"""The settings every estimator shares, each declared once (see :class:`daskem.settings.Setting`).

A family's own settings are declared in its module (``GaussianFamily.SETTINGS``, …),
an estimator's own beside it (``precision``).  :func:`estimator_settings` puts
them together for one estimator; :func:`run_settings` gives every setting that
the command line, job files and ``select`` take, for all families at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from daskem.engine.acceleration import ACCELERATIONS
from daskem.engine.em import MAX_RUNS
from daskem.engine.initialization import INIT_METHODS
from daskem.engine.passes import DEFAULT_SPLIT_EVERY
from daskem.families.base import Family
from daskem.settings import Setting, is_integer

N_COMPONENTS = Setting("n_components", 1, "Number of components.", int, ge=1)
TOL = Setting("tol", 1e-3, "Stop when the mean log-likelihood per row changes by less.", float, ge=0)
MAX_ITER = Setting("max_iter", 100, "Most passes over the data.", int, ge=0)
ACCELERATION = Setting(
    "acceleration", ACCELERATIONS[0],
    "squarem: accelerated EM (fewer passes); none: textbook EM, one EM step per pass, for step-by-step "
    "comparison with scikit-learn.", str, choices=ACCELERATIONS)
N_INIT = Setting("n_init", 1, "Random starts; the best is kept.", int, ge=1, le=MAX_RUNS)
INIT_PARAMS = Setting("init_params", "k-means++", "How the start is found.", str, choices=INIT_METHODS)
RANDOM_STATE = Setting(
    "random_state", None, "Seed of the start.", int, optional=True, run_default=0,
    domain="None, an integer, a numpy.random.Generator or a numpy.random.RandomState",
    accepts=lambda value: is_integer(value) or isinstance(value, (np.random.Generator, np.random.RandomState)))
WARM_START = Setting("warm_start", False, "Start each fit from the last one's parameters.", bool, in_runs=False)
VERBOSE = Setting("verbose", 0, "Log one line per iteration (2: and a progress bar).", int, ge=0, in_runs=False)
CHUNK_ROWS = Setting("chunk_rows", None, "Rows per chunk (default: from the store).", int, ge=1, optional=True)
SPLIT_EVERY = Setting("split_every", DEFAULT_SPLIT_EVERY, "Fan-in of the reduction tree.", int, ge=2)
SAMPLE_DIM = Setting(
    "sample_dim", None, "Dimension(s) of the rows; y,x stacks an image's pixels into rows, and the scores keep "
    "y and x.", optional=True, domain="None, a dimension name or a sequence of them, like ('y', 'x')",
    accepts=lambda value: isinstance(value, str) or isinstance(value, Sequence) and all(isinstance(v, str)
                                                                                     for v in value))
FEATURE_DIM = Setting("feature_dim", None, "Dimension of the features (default: the one named band, channel, "
                      "feature, ...).", str, optional=True, domain="None or a dimension name",
                      accepts=lambda value: isinstance(value, str))
STRICT_CHUNKS = Setting("strict_chunks", False, "Refuse a store that lacks chunk files (default: read them as the "
                        "fill value, with a warning).", bool)
#: The exponent of stepwise EM's step size (``partial_fit``, :mod:`daskem.estimators.streaming`).
DECAY = Setting("decay", 0.7, "partial_fit's step size: the n-th batch blended in weighs (n + 1)**-decay.", float,
                gt=0.5, le=1.0, in_runs=False)

#: The shared settings, in the order of the estimators' signatures (after ``n_components``).
SHARED = (N_COMPONENTS, TOL, MAX_ITER, ACCELERATION, N_INIT, INIT_PARAMS, RANDOM_STATE, WARM_START, VERBOSE,
          CHUNK_ROWS, SPLIT_EVERY, SAMPLE_DIM, FEATURE_DIM, STRICT_CHUNKS, DECAY)

#: The settings that shape a fit: a checkpoint resumes only when they match.
SHAPING = ("n_components", "tol", "max_iter", "acceleration", "n_init", "init_params", "chunk_rows", "split_every")
#: The settings that a model file records, besides the family's.
RECORDED = ("tol", "max_iter", "acceleration", "n_init", "init_params")


def estimator_settings(family: type[Family], *own: Setting) -> tuple[Setting, ...]:
    """Every setting of the estimator of ``family``: the shared ones (but ``acceleration`` for a family that
    cannot be extrapolated), its initial arrays, the family's own settings, then the estimator's ``own``."""
    first = tuple(setting for setting in SHARED[:6] if family.accelerates or setting is not ACCELERATION)
    return (*first, *family.GIVEN, *SHARED[6:], *family.SETTINGS, *own)


def run_settings(estimators: Sequence[Any]) -> dict[str, Setting]:
    """The settings that the command line, job files and ``select`` take, by name, from every estimator
    class given (each a :class:`~daskem.estimators.base.BaseMixture` subclass with ``SETTINGS``)."""
    settings: dict[str, Setting] = {}
    for estimator in estimators:
        for setting in estimator.SETTINGS:
            if setting.in_runs:
                if settings.setdefault(setting.name, setting) is not setting:
                    raise AssertionError(f"{setting.name} is declared twice")
    return settings
