"""daskem: mixture models (Gaussian, Bernoulli, Poisson) fitted by EM on data larger than memory.

Layers, each importing only those above it:

1. :mod:`daskem.kernels` — pure NumPy E-step, statistics, M-step and data checks.
2. :mod:`daskem.stats`, :mod:`daskem.families` — the component families behind
   one contract, and their summable statistics (the reduction's value type).
3. :mod:`daskem.engine`, :mod:`daskem.initialization` — Dask graphs and the EM loop.
4. :mod:`daskem.outputs` (where daskem may write), :mod:`daskem.inputs`,
   :mod:`daskem.model_io`, :mod:`daskem.checkpoint`, :mod:`daskem.generate` —
   data and state in and out.
5. :mod:`daskem.mixture` (what every estimator shares), :mod:`daskem.estimator`,
   :mod:`daskem.discrete`, :mod:`daskem.models`, :mod:`daskem.selection`, :mod:`daskem.cluster`,
   :mod:`daskem.commands`, :mod:`daskem.jobs`, :mod:`daskem.plots`,
   :mod:`daskem.cli` — the interfaces.
"""

from daskem.discrete import BernoulliMixture, PoissonMixture
from daskem.estimator import GaussianMixture
from daskem.mixture import __version__
from daskem.models import load
from daskem.exceptions import (
    AbsentChunksWarning,
    ComponentCollapseWarning,
    ConvergenceWarning,
    DaskemError,
    DataScaleWarning,
)
from daskem.selection import Selection, select

__all__ = [
    "AbsentChunksWarning",
    "BernoulliMixture",
    "ComponentCollapseWarning",
    "ConvergenceWarning",
    "DaskemError",
    "DataScaleWarning",
    "GaussianMixture",
    "PoissonMixture",
    "Selection",
    "__version__",
    "load",
    "select",
]
