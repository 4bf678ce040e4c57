"""Layer 1: numerical kernels, NumPy and numba (no Dask, no I/O).

- :mod:`daskem.kernels.estep` — the Gaussian E-step on one chunk of rows and its
  sufficient statistics;
- :mod:`daskem.kernels.block_kernels` — the block kernels it runs (expanded terms,
  whitened products, differences) and which one the parameters call for;
- :mod:`daskem.kernels.fused` — the compiled (numba) loops of the complete-data
  block kernels, between a block's matrix products;
- :mod:`daskem.kernels.fused_missing` — the compiled E-step of rows with missing
  values (statistics, log-probabilities, imputation), block by block;
- :mod:`daskem.kernels.patterns` — missingness patterns: rows grouped by
  pattern, and the factors of each pattern's precision blocks;
- :mod:`daskem.kernels.scans` — compiled scans over rows: k-means++ seeding
  costs and the discrete families' domain checks;
- :mod:`daskem.kernels.gaussian` — Gaussian parameters, moments, and the M-step
  that turns summed statistics into parameters;
- :mod:`daskem.kernels.checks` — checks of rows, weights and ranges;
- :mod:`daskem.kernels.kmeans` — k-means++ seeding and Lloyd steps on an
  in-memory sample, used to initialise EM;
- :mod:`daskem.kernels.missing` — the exact Gaussian E-step of rows with
  missing values (NaN), by missingness pattern;
- :mod:`daskem.kernels.variational` — variational inference for a Bayesian
  Gaussian mixture: the posterior from EM's sums, its E-step offsets, its bound;
  the weights' posterior (Dirichlet or Dirichlet process) and its divergence, for any family;
- :mod:`daskem.kernels.conjugate` — Beta–Bernoulli and Gamma–Poisson posteriors from a
  pass's sums, their expected coefficients and divergences from the prior;
- :mod:`daskem.kernels.stepwise` — stepwise EM (``partial_fit``): the step size,
  and running statistics blended linearly or, for Gaussian moments, by Chan's
  pairwise update about each component's mean.
"""
