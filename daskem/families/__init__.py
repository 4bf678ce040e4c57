"""Layer 2: component families, each behind the one interface the engine uses.

- :mod:`daskem.families.base` — the contract: :class:`~daskem.families.base.Family`
  (E-step statistics of a chunk, M-step, first-pass checks) and what every
  family's statistics provide;
- :mod:`daskem.families.gaussian` — Gaussian mixtures, all four covariance types;
- :mod:`daskem.families.product` — components that are products over features of
  a distribution set by its mean, and one module per such family
  (:mod:`daskem.families.bernoulli`, …), each a few lines: its log density's
  coefficients, its domain, its floor;
- :mod:`daskem.families.bayesian` — Bayesian Gaussian mixtures (variational EM);
- :mod:`daskem.families.bayesian_product` — Bayesian Bernoulli and Poisson mixtures
  (variational EM under conjugate priors), on the product families' E-step;
- :mod:`daskem.families.registry` — every family by name (where a new one registers).

The engine imports the contract, never a family.
"""
