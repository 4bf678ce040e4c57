"""daskem: Gaussian mixture models fitted by EM on data larger than memory.

Layers, each importing only those above it:

1. :mod:`daskem.kernels` — pure NumPy E-step, statistics, M-step and data checks.
2. :mod:`daskem.stats` — summable statistics (the reduction's value type).
3. :mod:`daskem.engine`, :mod:`daskem.initialization` — Dask graphs and the EM loop.
4. :mod:`daskem.outputs` (where daskem may write), :mod:`daskem.inputs`,
   :mod:`daskem.model_io`, :mod:`daskem.checkpoint`, :mod:`daskem.generate` —
   data and state in and out.
5. :mod:`daskem.estimator`, :mod:`daskem.selection`, :mod:`daskem.cluster`,
   :mod:`daskem.commands`, :mod:`daskem.jobs`, :mod:`daskem.plots`,
   :mod:`daskem.cli` — the interfaces.
"""

from daskem.estimator import GaussianMixture, __version__, load
from daskem.exceptions import ComponentCollapseWarning, ConvergenceWarning, DaskemError, DataScaleWarning
from daskem.selection import Selection, select

__all__ = [
    "ComponentCollapseWarning",
    "ConvergenceWarning",
    "DaskemError",
    "DataScaleWarning",
    "GaussianMixture",
    "Selection",
    "__version__",
    "load",
    "select",
]
