"""Layer 6: the applications — what a user runs rather than imports.

- :mod:`daskem.app.commands` — each command's work, as a function returning a plain report;
- :mod:`daskem.app.cli` — the ``daskem`` command line (click);
- :mod:`daskem.app.jobs` — job files: a fit or selection and its outputs in one YAML file;
- :mod:`daskem.app.cluster` — cluster config files, and running on the cluster they describe;
- :mod:`daskem.app.generate` — synthetic mixture data, written to Zarr with its truth;
- :mod:`daskem.app.plots` — pictures of fits (matplotlib).
"""
