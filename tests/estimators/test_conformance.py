"""What every registered family's estimator must do, checked the same way for each.

Parametrised over :data:`daskem.estimators.registry.ESTIMATORS`: a family that registers an
estimator and rows (``strategies.ROWS``) gets all of it — model files, bitwise
resume, the same bits on every scheduler, weights as repeated rows, domain
errors, sampling, information criteria, selection across families, the
command line, job files and pictures.  The EM arithmetic of each family is
checked against textbook EM in tests/families/test_families.py.
"""

from __future__ import annotations

import copy
import json
import warnings

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner
from sklearn.base import clone

import daskem
from daskem.app.cli import main
from daskem.estimators.registry import ESTIMATORS
from daskem.exceptions import ComponentCollapseWarning, ConvergenceWarning, InputError, ModelFileError
from daskem.families.registry import FAMILIES
from daskem.io.checkpoints import CheckpointError, remove_checkpoints
from tests.helpers import write_zarr
from tests.strategies import ROWS

NAMES = list(ESTIMATORS)


class Crash(Exception):
    pass


def rows(name: str, n_samples: int = 1200, n_features: int = 4, n_components: int = 3, seed: int = 0):
    return ROWS[name][0](np.random.default_rng(seed), n_samples, n_features, n_components)


def model(name: str, **settings):
    return ESTIMATORS[name](3, **{"random_state": 0, "tol": 0.0, "max_iter": 8, "chunk_rows": 300, **settings})


def textbook(name: str) -> dict:
    """The settings of textbook EM, one step per pass (a variational fit takes no others)."""
    return {"acceleration": "none"} if "acceleration" in ESTIMATORS[name]().get_params() else {}


def fitted(name: str, X, fit=None, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ComponentCollapseWarning)
        return model(name, **settings).fit(X, **(fit or {}))


def assert_same_fit(a, b):
    for name in ("weights_", "means_", "history_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.n_iter_, a.converged_, a.lower_bound_) == (b.n_iter_, b.converged_, b.lower_bound_)


def test_every_family_has_an_estimator_and_test_rows():
    assert set(ESTIMATORS) == set(FAMILIES) == set(ROWS)


@pytest.mark.parametrize("name", NAMES)
def test_a_saved_model_loads_as_the_same_model(tmp_path, name):
    X = rows(name)
    fit = fitted(name, X)
    fit.save(tmp_path / "model.zarr")
    loaded = daskem.load(tmp_path / "model.zarr")
    kept = {*fit.recorded_setting_names(), *fit.FAMILY.setting_names(), "n_components", "random_state"}
    assert type(loaded) is type(fit)
    assert {k: v for k, v in loaded.get_params().items() if k in kept} == {
        k: v for k, v in fit.get_params().items() if k in kept}
    assert_same_fit(loaded, fit)
    np.testing.assert_array_equal(loaded.score_samples(X), fit.score_samples(X))
    np.testing.assert_array_equal(loaded.predict(X), fit.predict(X))
    with xr.open_zarr(tmp_path / "model.zarr") as ds:
        assert ds.attrs["family"] == name and ds.attrs["model"] == f"daskem.{type(fit).__name__}"


@pytest.mark.parametrize("name", NAMES)
def test_resume_after_a_crash_is_bitwise_identical(tmp_path, name):
    X, folder = rows(name), tmp_path / "checkpoint"
    uninterrupted = fitted(name, X, n_init=2)

    def crash(info):
        if info.iteration == 4:
            raise Crash

    with pytest.raises(Crash), warnings.catch_warnings():
        warnings.simplefilter("ignore", ComponentCollapseWarning)
        model(name, n_init=2).fit(X, checkpoint=folder, callbacks=[crash])
    iterations = []
    resumed = fitted(name, X, n_init=2, fit={"checkpoint": folder, "callbacks": [iterations.append]})
    assert min(info.iteration for info in iterations) == 4  # it went on from the checkpoint
    assert_same_fit(resumed, uninterrupted)
    remove_checkpoints(folder)


@pytest.mark.parametrize("name", NAMES)
def test_a_checkpoint_of_one_family_is_not_resumed_by_another(tmp_path, name):
    X = np.round(np.abs(rows(name)))  # counts: any family but Bernoulli can fit them
    X = np.minimum(X, 1.0) if name == "bernoulli" else X
    folder = tmp_path / "checkpoint"
    fitted(name, X, max_iter=2, fit={"checkpoint": folder})
    other = next(n for n in NAMES if n != name and n != "bernoulli")
    with pytest.raises(CheckpointError, match=f"other settings \\(family '{name}' → '{other}'"):
        fitted(other, X, max_iter=2, fit={"checkpoint": folder})


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scheduler", ["sync", "processes"])
def test_the_same_bits_on_every_local_scheduler(tmp_path, name, scheduler):
    path = str(write_zarr(tmp_path / "data.zarr", rows(name), chunk_rows=300))
    with dask.config.set(scheduler="threads"):
        reference = fitted(name, path, fit={"variable": "X"})
    with dask.config.set(scheduler=scheduler):
        other = fitted(name, path, fit={"variable": "X"})
    assert_same_fit(other, reference)


@pytest.mark.parametrize("name", NAMES)
def test_integer_weights_fit_as_repeated_rows(name):
    X = rows(name, n_samples=400)
    counts = np.random.default_rng(1).integers(0, 4, size=len(X))
    # One start for both (no sampling differences), near X's own fit, so that no component collapses: a
    # restart's threshold (one average row's weight) and row differ where weight 0 rows are kept.
    given = fitted(name, X)
    if not ESTIMATORS[name].FAMILY.GIVEN:  # no initial arrays (Bayesian): both continue the given fit (warm starts)
        weighted, repeated = (copy.deepcopy(given).set_params(warm_start=True) for _ in range(2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            weighted.fit(X, sample_weight=counts.astype(float))
            repeated.fit(np.repeat(X, counts, axis=0))
    else:
        start = {"weights_init": given.weights_, "means_init": given.means_}
        if name == "gaussian":
            start["precisions_init"] = given.precisions_
        weighted = fitted(name, X, **start, fit={"sample_weight": counts.astype(float)})
        repeated = fitted(name, np.repeat(X, counts, axis=0), **start)
    assert weighted.reseeded_ == repeated.reseeded_ == []
    # the same sums in another order: equal to rounding, relative to each array's scale
    for attribute in ("weights_", "means_", "history_"):
        a, b = getattr(weighted, attribute), getattr(repeated, attribute)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * np.abs(b).max(), err_msg=attribute)


@pytest.mark.parametrize("name", NAMES)
def test_a_warm_start_continues_where_the_last_fit_stopped(name):
    X = rows(name)
    straight = fitted(name, X, max_iter=6, **textbook(name))
    warm = model(name, max_iter=3, warm_start=True, **textbook(name))
    for _ in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", ComponentCollapseWarning)
            warm.fit(X)
    assert warm.n_iter_ == 3
    np.testing.assert_array_equal(warm.means_, straight.means_)
    np.testing.assert_array_equal(warm.history_, straight.history_[3:])
    with pytest.raises(InputError, match="warm_start continues the last fit"):
        warm.set_params(n_components=2).fit(X)


@pytest.mark.parametrize("name", NAMES)
def test_a_value_outside_the_domain_is_refused_naming_its_row(name):
    X = rows(name)
    _, bad, words = ROWS[name]
    X[700, 2] = bad
    with pytest.raises(InputError, match=f"row 700.*{words}|{words}.*row 700"):
        fitted(name, X)


@pytest.mark.parametrize("name", NAMES)
def test_samples_are_in_the_domain_and_follow_the_mixture(name):
    fit = fitted(name, rows(name))
    X, labels = fit.sample(20_000)
    assert X.shape == (20_000, 4) and labels.shape == (20_000,) and np.all(np.diff(labels) >= 0)
    assert np.isfinite(fit.score_samples(X)).all()  # every sampled row is inside the family's domain
    counts = np.bincount(labels, minlength=3)
    # component shares within 5 binomial standard deviations
    sd = np.sqrt(20_000 * fit.weights_ * (1 - fit.weights_))
    assert np.all(np.abs(counts - 20_000 * fit.weights_) <= 5 * sd + 1)
    for k in np.flatnonzero(counts > 100):
        mine = X[labels == k]
        # each component's sample mean within 6 standard errors of its mean (and of the floor, 1e-10,
        # where a probability or rate sits on it and every draw is 0)
        error = np.sqrt(mine.var(axis=0) / len(mine)) + 1e-9
        assert np.all(np.abs(mine.mean(axis=0) - fit.means_[k]) <= 6 * error)
    np.testing.assert_array_equal(fit.sample(50)[0], fit.sample(50)[0])  # seeded by random_state


@pytest.mark.parametrize("name", NAMES)
def test_bic_and_aic_count_the_family_parameters(name):
    X = rows(name)
    fit = fitted(name, X)
    k, d = 3, X.shape[1]
    counts = {"bernoulli": k - 1 + k * d, "poisson": k - 1 + k * d,
              "gaussian": k - 1 + k * d + k * d * (d + 1) // 2}
    counts.update({f"bayesian_{point}": count for point, count in counts.items()})  # the same parameters
    log_likelihood = fit.score(X) * len(X)
    assert fit.bic(X) == pytest.approx(-2 * log_likelihood + counts[name] * np.log(len(X)), rel=1e-12)
    assert fit.aic(X) == pytest.approx(-2 * log_likelihood + 2 * counts[name], rel=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_estimators_clone_and_refuse_bad_settings(name):
    estimator = ESTIMATORS[name](4, tol=1e-4, random_state=3)
    assert clone(estimator).get_params() == estimator.get_params()
    with pytest.raises(InputError, match="n_components must be an integer >= 1"):
        ESTIMATORS[name](0).fit(rows(name))


@pytest.mark.parametrize("name", ["bernoulli", "poisson"])
def test_means_init_outside_the_parameter_space_is_refused(name):
    means = np.full((3, 4), -0.5)
    with pytest.raises(InputError, match="means_init holds"):
        ESTIMATORS[name](3, means_init=means).fit(rows(name))


@pytest.mark.parametrize(("name", "setting"), [("bernoulli", {"min_probability": 0.7}),
                                                ("poisson", {"min_rate": 0.0})])
def test_a_floor_outside_its_range_is_refused(name, setting):
    with pytest.raises(InputError, match=next(iter(setting))):
        ESTIMATORS[name](2, **setting).fit(rows(name))


@pytest.mark.parametrize("name", ["bernoulli", "poisson"])
def test_a_model_file_with_means_outside_the_floor_is_refused(tmp_path, name):
    fit = fitted(name, rows(name))
    ds = fit.to_dataset()
    ds["means"][0, 0] = -1.0
    ds.to_zarr(tmp_path / "edited.zarr", zarr_format=3, consolidated=False)
    with pytest.raises(ModelFileError, match="means holds .* outside \\[.*where a .* mixture keeps them"):
        daskem.load(tmp_path / "edited.zarr")


def test_selection_across_families_shares_its_passes_and_names_the_winner():
    binary = rows("bernoulli", n_samples=3000, n_features=12)
    selection = daskem.select(binary, [1, 2, 3], families=["bernoulli", "poisson"], random_state=0, max_iter=200)
    table = selection.table
    assert sorted(table["family"]) == ["bernoulli"] * 3 + ["poisson"] * 3
    assert table["covariance_type"].isna().all()
    # every candidate advanced in the same passes: as many as the longest candidate took
    assert selection.n_passes == table["n_iter"].max()
    assert table.iloc[0]["family"] == "bernoulli" and isinstance(selection.best_, daskem.BernoulliMixture)
    assert table.iloc[0]["n_components"] == 3  # 0/1 rows drawn from 3 components


def test_selection_warns_when_densities_meet_probabilities():
    with pytest.warns(UserWarning, match="do not compare"):
        daskem.select(rows("bernoulli", n_samples=300), [1, 2], families=["gaussian", "bernoulli"],
                      covariance_types=["diag"], random_state=0)


@pytest.mark.parametrize("name", ["bernoulli", "poisson"])
def test_the_command_line_generates_fits_scores_and_pictures_every_family(tmp_path, name):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    from daskem.app import plots

    def run(*arguments):
        result = CliRunner().invoke(main, [str(a) for a in arguments])
        assert result.exit_code == 0, result.output
        return result.output

    data, fit, scores = tmp_path / "data.zarr", tmp_path / "model.zarr", tmp_path / "scores.zarr"
    run("generate", data, "--family", name, "--n-samples", 3000, "--n-features", 5, "--n-components", 3,
        "--chunk-rows", 1000)
    truth = daskem.load(tmp_path / "data.truth.zarr")
    assert type(truth) is ESTIMATORS[name]
    X = np.asarray(xr.open_zarr(data)["X"])
    assert np.isfinite(truth.score_samples(X)).all()
    output = run("fit", data, "-v", "X", "-k", 3, "--family", name, "--out", fit)
    assert f"3 {FAMILIES[name]().label} components" in output
    model = daskem.load(fit)
    run("predict", fit, data, "-v", "X", "--out", scores)
    with xr.open_zarr(scores) as ds:
        np.testing.assert_allclose(ds["log_likelihood"].values, model.score_samples(X), rtol=1e-12)
        np.testing.assert_array_equal(ds["label"].values, model.predict(X))
    report = json.loads(run("--json", "info", fit))
    assert report["model"]["family"] == name
    run("plot", "components", fit, data, "-v", "X", "--out", tmp_path / "components.png")
    # the picture is this model's profiles: its means, components by weight, as a heat map
    profiles = plots.profiles(model)
    order = np.argsort(-model.weights_, kind="stable")
    np.testing.assert_array_equal(profiles.axes[0].images[0].get_array(), model.means_[order])
    plots.save(profiles, tmp_path / "profiles.png")
    assert np.array_equal(imread(tmp_path / "components.png"), imread(tmp_path / "profiles.png"))
    select = tmp_path / "selection"
    run("select", data, "-v", "X", "-k", "1-3", "--families", f"{name},gaussian", "--out", select)
    run("plot", "selection", select, "--out", tmp_path / "selection.png")
    plots.save(plots.selection(pd.read_csv(select / "table.csv")), tmp_path / "table.png")
    assert np.array_equal(imread(tmp_path / "selection.png"), imread(tmp_path / "table.png"))


def test_gaussian_settings_given_to_another_family_are_refused(tmp_path):
    data = write_zarr(tmp_path / "data.zarr", rows("poisson"), chunk_rows=300)
    result = CliRunner().invoke(main, ["fit", str(data), "-v", "X", "-k", "2", "--family", "poisson",
                                       "--covariance-type", "diag"])
    assert result.exit_code != 0 and "covariance_type do(es) not apply to a poisson mixture" in result.output


def test_a_job_file_fits_another_family(tmp_path):
    from daskem.app.jobs import run_job

    write_zarr(tmp_path / "data.zarr", rows("bernoulli"), chunk_rows=300)
    job = tmp_path / "job.yaml"
    job.write_text("data: {path: data.zarr, variable: X}\n"
                   "fit: {n_components: 3, family: bernoulli}\n"
                   "outputs: {model: model.zarr, report: report.json}\n")
    report = run_job(job)
    assert report["status"] == "done" and report["stages"][0]["model"]["family"] == "bernoulli"
    assert isinstance(daskem.load(tmp_path / "model.zarr"), daskem.BernoulliMixture)
