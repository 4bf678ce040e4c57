"""Layer 1: pure NumPy kernels (no Dask, no I/O).

- :mod:`daskem.kernels.gaussian` — the Gaussian E-step on one chunk of rows, its
  sufficient statistics, and the M-step that turns summed statistics into
  parameters.
- :mod:`daskem.kernels.kmeans` — k-means++ seeding and Lloyd steps on an
  in-memory sample, used to initialise EM.
"""
