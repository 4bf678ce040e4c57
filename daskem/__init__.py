"""daskem: mixture models (Gaussian, Bernoulli, Poisson, and Bayesian ones) fitted by EM on data larger than memory.

The folders are the layers; each imports only from its own and those listed before it (a test
reads every import: ``tests/test_layers.py``):

0. :mod:`daskem.exceptions`, :mod:`daskem.redaction`, :mod:`daskem.version` — errors, credentials
   kept out of messages, the version.
1. :mod:`daskem.kernels` — NumPy and numba: E-step, statistics, M-step, checks (no Dask, no I/O).
2. :mod:`daskem.families` — the component families behind one contract, and their statistics.
3. :mod:`daskem.engine` — Dask passes, the EM loop, acceleration, initialisation.
4. :mod:`daskem.io` — inputs, outputs, model files, checkpoints, storage.
5. :mod:`daskem.estimators` — the scikit-learn estimators, their settings, ``select``, ``load``.
6. :mod:`daskem.app` — the command line, job files, cluster configs, pictures.

See ``docs/design.md`` for the map: one line per module, and where the E-step, the reduction and
the M-step are.
"""

from daskem.estimators.bayesian import BayesianBernoulliMixture, BayesianGaussianMixture, BayesianPoissonMixture
from daskem.estimators.discrete import BernoulliMixture, PoissonMixture
from daskem.estimators.gaussian import GaussianMixture
from daskem.estimators.hmm import BernoulliHMM, GaussianHMM, PoissonHMM
from daskem.estimators.registry import load
from daskem.estimators.selection import Selection, select
from daskem.exceptions import (
    AbsentChunksWarning,
    ComponentCollapseWarning,
    ConvergenceWarning,
    DaskemError,
    DataScaleWarning,
)
from daskem.version import __version__

__all__ = [
    "AbsentChunksWarning",
    "BayesianBernoulliMixture",
    "BayesianGaussianMixture",
    "BayesianPoissonMixture",
    "BernoulliHMM",
    "BernoulliMixture",
    "ComponentCollapseWarning",
    "ConvergenceWarning",
    "DaskemError",
    "DataScaleWarning",
    "GaussianHMM",
    "GaussianMixture",
    "PoissonHMM",
    "PoissonMixture",
    "Selection",
    "__version__",
    "load",
    "select",
]
