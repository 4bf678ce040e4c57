"""Layer 5: the estimators users hold — scikit-learn's contract on top of the engine.

- :mod:`daskem.estimators.settings` — every setting of the estimators, declared once;
- :mod:`daskem.estimators.base` — :class:`~daskem.estimators.base.BaseMixture`, what every
  family's estimator shares, from the parts :mod:`~daskem.estimators.fitting`,
  :mod:`~daskem.estimators.streaming` (``partial_fit``), :mod:`~daskem.estimators.scoring`
  and :mod:`~daskem.estimators.model_file`;
- :mod:`daskem.estimators.gaussian`, :mod:`daskem.estimators.discrete` — each family's estimator;
- :mod:`daskem.estimators.registry` — the estimator of each family, and ``load`` for any model file;
- :mod:`daskem.estimators.selection` — ``select``: many candidates fitted in shared passes.
"""
