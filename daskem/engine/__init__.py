"""Layer 3: the EM engine — Dask passes over the rows, the EM loop, acceleration and the start.

- :mod:`daskem.engine.passes` — one pass: the rows as blocks, the per-chunk map and the tree
  reduction of the statistics (the reduction of EM);
- :mod:`daskem.engine.em` — the EM loop: runs that advance together, one pass per iteration,
  the M-step on the driver, convergence and collapsed components;
- :mod:`daskem.engine.acceleration` — SQUAREM: the extrapolated step and its bounds;
- :mod:`daskem.engine.initialization` — starts: sampled rows, k-means++ (judged), k-means‖, random.

It runs EM through the family contract (:mod:`daskem.families.base`) alone, and knows nothing of
files or command lines.
"""
