"""Layer 3: the EM engine — Dask passes over the rows, the EM loop, acceleration and the start.

- :mod:`daskem.engine.passes` — one pass: the rows as blocks, the per-chunk map and the tree
  reduction of the statistics (the reduction of EM);
- :mod:`daskem.engine.em` — the EM loop: runs that advance together, one pass per iteration,
  the M-step on the driver, convergence and collapsed components;
- :mod:`daskem.engine.acceleration` — SQUAREM: the extrapolated step and its bounds;
- :mod:`daskem.engine.initialization` — starts for many candidates at once: the sampled rows, the
  judged k-means++ start, the estimate from an assignment;
- :mod:`daskem.engine.seeding` — clusterings of in-memory rows (k-means++ and Lloyd, random);
- :mod:`daskem.engine.kmeans_parallel` — k-means‖ over the whole data set, a few passes.

It runs EM through the family contract (:mod:`daskem.families.base`) alone, and knows nothing of
files or command lines.
"""
