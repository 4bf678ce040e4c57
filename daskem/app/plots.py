"""Pictures of fits — convergence traces, selection curves, components in 2-D, hidden Markov models' decoded
steps and transitions.

Needs matplotlib (``pip install 'daskem[plot]'``).  Figures are made with the
object-oriented API (no pyplot, no change to the user's backend) and written
atomically to PNG.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from daskem.engine.initialization import draw_sample
from daskem.estimators.base import BaseMixture
from daskem.estimators.gaussian import GaussianMixture
from daskem.estimators.hmm import HiddenMarkovModel
from daskem.exceptions import DaskemError
from daskem.io.inputs import as_row_chunked
from daskem.io.outputs import atomic_path

#: Colours of up to 8 components (Paul Tol's bright scheme, readable by colour-blind eyes).
COLOURS = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb", "#000000"]


def colours(count: int) -> list[Any]:
    """``count`` distinct colours: :data:`COLOURS` up to 8, matplotlib's ``tab20`` up to 20,
    evenly spaced hues of ``turbo`` beyond (never a colour repeated)."""
    if count <= len(COLOURS):
        return COLOURS[:count]
    from matplotlib import colormaps

    if count <= 20:
        return [colormaps["tab20"](i) for i in range(count)]
    return [colormaps["turbo"](x) for x in np.linspace(0.05, 0.95, count)]


def _figure(width: float = 7.0, height: float = 4.5) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise DaskemError("pictures need matplotlib: install it with pip install 'daskem[plot]'") from None
    return Figure(figsize=(width, height), layout="constrained")


def save(figure: Any, path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Write a figure to PNG, atomically; an existing PNG is replaced only with ``overwrite``."""
    with atomic_path(path, "picture", overwrite=overwrite, label="picture") as temporary:
        with temporary.open("wb") as file:
            figure.savefig(file, format="png", dpi=120)


def convergence(model: BaseMixture) -> Any:
    """The mean log-likelihood per row (a Bayesian mixture's lower bound per row) at each iteration, and its
    change (log scale)."""
    history = np.asarray(model.history_)
    iterations = np.arange(1, len(history) + 1)
    figure = _figure(8.0, 3.8)
    left, right = figure.subplots(1, 2)
    left.plot(iterations, history, marker="o", color=COLOURS[0])
    climbed = "lower bound per row" if model.family_.variational else "mean log-likelihood per row"
    left.set(xlabel="iteration", ylabel=f"{climbed} (nats)", title="EM convergence")
    changes = np.abs(np.diff(history))
    if len(changes):
        right.semilogy(iterations[1:], np.maximum(changes, 1e-16), marker="o", color=COLOURS[1])
    tol = model.tol
    if tol > 0:
        right.axhline(tol, color="grey", linestyle="--", label=f"tol = {tol:g}")
        right.legend()
    right.set(xlabel="iteration", ylabel="|change|", title="change per iteration")
    for ax in (left, right):
        ax.xaxis.get_major_locator().set_params(integer=True)
    return figure


#: Differences of BIC or AIC up to this are drawn linearly, larger ones logarithmically.
LINEAR_DIFFERENCE = 10.0


def selection(table: pd.DataFrame) -> Any:
    """ΔBIC and ΔAIC from the best candidate against the number of components, one line per
    family (per covariance type for Gaussians).

    Criteria of large data sets reach 1e7 and more, where the differences that
    decide (a few units to a few hundred) vanish on a linear axis: the y axis
    is linear up to :data:`LINEAR_DIFFERENCE` and logarithmic beyond.
    """
    figure = _figure(8.0, 3.8)
    axes = figure.subplots(1, 2, sharex=True)
    table = table.assign(candidate=_candidate_labels(table))
    groups = list(table.groupby("candidate", sort=False))
    for ax, criterion in zip(axes, ("bic", "aic")):
        lowest = table[criterion].min()
        for colour, (candidate, rows) in zip(colours(len(groups)), groups):
            rows = rows.sort_values("n_components")
            ax.plot(rows["n_components"], rows[criterion] - lowest, marker="o", color=colour, label=candidate)
        best = table.loc[table[criterion].idxmin()]
        ax.plot(best["n_components"], 0.0, marker="*", markersize=16, color="black", linestyle="none",
                label=f"best: {best['n_components']} {best['candidate']} ({criterion.upper()} {lowest:.6g})")
        ax.set_yscale("symlog", linthresh=LINEAR_DIFFERENCE)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set(xlabel="components", ylabel=f"Δ{criterion.upper()} from the best (lower is better)",
               title=f"Δ{criterion.upper()}")
        ax.legend(fontsize=8)
    return figure


def _candidate_labels(table: pd.DataFrame) -> pd.Series:
    """Each candidate's kind: its covariance type for a Gaussian, else its family (tables written
    before families have covariance types only)."""
    if "family" not in table:
        return table["covariance_type"]
    return table["covariance_type"].where(table["family"] == "gaussian", table["family"])


def profiles(model: BaseMixture) -> Any:
    """Each component's means — a Bernoulli mixture's probabilities, a Poisson mixture's rates — as a
    heat map of components (by weight) × features."""
    params = model.params
    order = np.argsort(-params.weights, kind="stable")
    figure = _figure(8.5, 1.5 + 0.3 * params.n_components)
    ax = figure.subplots()
    image = ax.imshow(params.means[order], aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(params.n_components), [f"{k}: weight {params.weights[k]:.2f}" for k in order], fontsize=8)
    ax.set(xlabel="feature", title=f"{params.n_components} {model.family_.label} components")
    figure.colorbar(image, ax=ax, label="mean of the feature (probability or rate)")
    return figure


def projection(model: GaussianMixture, features: tuple[int, int] | None) -> tuple[np.ndarray, list[str]]:
    """A (2, d) projection: two features, or the top two principal directions of the mixture.

    The mixture's total covariance ``Σ_k α_k (Σ_k + μ_k μ_kᵀ) − μ̄ μ̄ᵀ`` comes
    from the parameters alone, without reading the data.
    """
    params = model.params
    d = params.n_features
    if features is not None:
        if not all(0 <= f < d for f in features):
            raise DaskemError(f"features {features} are out of range for {d} features")
        basis = np.zeros((2, d))
        basis[0, features[0]] = basis[1, features[1]] = 1.0
        return basis, [f"feature {features[0]}", f"feature {features[1]}"]
    if d < 2:
        raise DaskemError("a 2-D view needs at least two features")
    mean = params.weights @ params.means
    second = np.einsum("k,kij->ij", params.weights, params.full_covariances()
                       + params.means[:, :, None] * params.means[:, None, :])
    values, vectors = np.linalg.eigh(second - np.outer(mean, mean))
    return vectors[:, ::-1][:, :2].T, ["principal direction 1", "principal direction 2"]


def components(
    model: GaussianMixture, X: Any, *, variable: str | None = None, features: tuple[int, int] | None = None,
    sample_rows: int = 5000, seed: int = 0,
) -> Any:
    """Ellipses (1 and 2 standard deviations) of the components over a sample of the rows, in 2-D
    (missing values where the model expects them, see :meth:`~daskem.estimators.base.BaseMixture.impute`).

    For a mixture of another family, its components' :func:`profiles` (the rows are not read).
    """
    from matplotlib.patches import Ellipse

    if not hasattr(model, "covariances_"):  # a Gaussian mixture, Bayesian or not
        return profiles(model)
    data = as_row_chunked(X, variable)
    rows, _ = draw_sample(data, None, sample_rows, np.random.default_rng(seed), missing=True)
    rows = model.impute(rows)  # holes where the model expects them
    basis, labels = projection(model, features)
    params = model.params
    figure = _figure(8.5, 5.5)
    ax = figure.subplots()
    assigned = model.predict(rows)
    points = rows @ basis.T
    for k, colour in enumerate(colours(params.n_components)):
        mine = points[assigned == k]
        ax.scatter(mine[:, 0], mine[:, 1], s=3, alpha=0.35, color=colour, linewidths=0)
        centre = basis @ params.means[k]
        values, vectors = np.linalg.eigh(basis @ params.full_covariances()[k] @ basis.T)
        angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
        for scale in (1.0, 2.0):
            width, height = 2 * scale * np.sqrt(np.maximum(values[::-1], 0.0))
            ax.add_patch(Ellipse(centre, width, height, angle=angle, fill=False, color=colour, linewidth=1.5))
        ax.plot(*centre, marker="x", color=colour, linestyle="none", label=f"{k}: weight {params.weights[k]:.2f}")
    # Names and weights in a legend beside the axes, where they cannot overlap however many
    # components crowd together (labels at the centres did beyond 8).
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, title="component",
              ncols=1 + params.n_components // 25, markerscale=1.5)
    ax.set(xlabel=labels[0], ylabel=labels[1],
           title=f"{params.n_components} components ({params.covariance_type}) over {len(rows):,} rows")
    return figure


def hmm(model: HiddenMarkovModel, X: Any, lengths: Any = None, *, variable: str | None = None,
        sequence_ids: Any = None, start: int = 0, steps: int = 1000, feature: int = 0) -> Any:
    """A hidden Markov model on its data: ``steps`` steps from ``start`` of one feature, each coloured by its
    decoded state, the states' posteriors below, and the transition matrix as a heat map.

    The states are decoded over whole sequences (the window's sequences are read in full: their messages
    come from their first and last steps).
    """
    n_features = model.params_.n_features
    if not 0 <= feature < n_features:
        raise DaskemError(f"feature {feature} is out of range for {n_features} features")
    decoded = model.decode_dataset(X, lengths, variable=variable, sequence_ids=sequence_ids)
    n_steps = decoded.sizes["sample"]
    if not 0 <= start < n_steps:
        raise DaskemError(f"start {start} is out of range for {n_steps:,} steps")
    window = slice(start, min(start + steps, n_steps))
    values = np.asarray(as_row_chunked(X, variable)[window, feature].compute())
    states, posteriors = (np.asarray(decoded[name][window].values) for name in ("state", "posterior"))
    k = model.n_components
    figure = _figure(11.0, 5.0)
    grid = figure.add_gridspec(2, 2, width_ratios=(3.2, 1.0), height_ratios=(2.0, 1.0))
    top, bottom, right = figure.add_subplot(grid[0, 0]), figure.add_subplot(grid[1, 0]), figure.add_subplot(grid[:, 1])
    steps_shown = np.arange(window.start, window.stop)
    top.plot(steps_shown, values, color="#bbbbbb", linewidth=0.8, zorder=1)
    palette = colours(k)
    for state in range(k):
        mine = states == state
        top.scatter(steps_shown[mine], values[mine], s=6, color=palette[state], label=str(state), zorder=2)
    top.legend(title="state", loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    top.set(ylabel=f"feature {feature}", title=f"steps {window.start:,}–{window.stop - 1:,}, decoded "
            f"({model.algorithm})")
    bottom.stackplot(steps_shown, posteriors.T, colors=palette)
    bottom.set(xlabel="step", ylabel="posterior", ylim=(0.0, 1.0), xlim=top.get_xlim())
    image = right.imshow(model.transmat_, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    for (j, i), p in np.ndenumerate(model.transmat_):
        if k <= 10:
            right.text(i, j, f"{p:.2f}", ha="center", va="center", fontsize=7, color="white" if p < 0.5 else "black")
    right.set(xlabel="to state", ylabel="from state", title="transition probabilities", xticks=range(k),
              yticks=range(k))
    figure.colorbar(image, ax=right, shrink=0.6)
    return figure
