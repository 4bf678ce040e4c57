"""Layer 2: component families, each behind the one interface the engine uses.

- :mod:`daskem.families.base` — the contract: :class:`~daskem.families.base.Family`
  (E-step statistics of a chunk, M-step, first-pass checks) and the
  :class:`~daskem.families.base.Statistics` every family's chunk statistics provide;
- :mod:`daskem.families.gaussian` — Gaussian mixtures, all four covariance types.

The engine imports the contract, never a family.
"""
