"""Layer 4: data and state in and out — the rows, outputs, model files and checkpoints.

- :mod:`daskem.io.storage` — local paths and fsspec URLs, and their credentials kept out of messages;
- :mod:`daskem.io.zarr_rows` — Zarr arrays read as row chunks, and chunks absent from a store;
- :mod:`daskem.io.chunk_index` — where each stored chunk belongs (the CRC32C of each chunk file, by position);
- :mod:`daskem.io.inputs` — every input (NumPy, Dask, DataFrames, xarray, Zarr paths) as rows;
- :mod:`daskem.io.existing` — what is at a path already: which daskem output, what interrupted writes
  left (read-only);
- :mod:`daskem.io.outputs` — where daskem may write: the guard, locks and reservations;
- :mod:`daskem.io.atomic` — writing to a temporary name and renaming it into place;
- :mod:`daskem.io.model_files` — fitted parameters as an xarray Dataset, to Zarr or netCDF and back;
- :mod:`daskem.io.checkpoints` — the state of a fit after each pass, to resume from;
- :mod:`daskem.io.yaml_files` — YAML files read safely, and their validation errors in words.
"""
