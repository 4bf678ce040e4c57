"""A Bayesian Gaussian mixture from the command line, job files and pictures."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import daskem
from daskem.app.cli import bayesian_family, main
from daskem.app.jobs import run_job
from daskem.families.registry import FAMILIES
from tests.helpers import make_mixture_data, write_zarr


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    X = make_mixture_data(n_samples=600, n_features=2, n_components=3, seed=6, separation=6.0)
    return write_zarr(tmp_path_factory.mktemp("bayesian") / "data.zarr", X, chunk_rows=200)


def test_fit_bayesian_writes_a_bayesian_model_and_says_it_climbs_the_bound(data, tmp_path):
    out = tmp_path / "model.zarr"
    result = CliRunner().invoke(main, ["fit", str(data), "-v", "X", "-k", "8", "--bayesian", "--max-iter", "200",
                                       "--weight-concentration-prior", "0.01", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "8 Bayesian components, full covariance" in result.stdout
    assert "evidence lower bound" in result.stdout and "log-likelihood" not in result.stdout
    model = daskem.load(out)
    assert type(model) is daskem.BayesianGaussianMixture and model.weight_concentration_prior == 0.01
    assert model.weight_concentration_prior_type == "dirichlet_process"  # the default, as scikit-learn's
    info = CliRunner().invoke(main, ["--json", "info", str(out)])
    assert json.loads(info.stdout)["model"]["objective"] == "evidence lower bound"


def test_bayesian_is_refused_where_there_is_no_bayesian_family_and_generate_draws_no_posterior(data, tmp_path):
    result = CliRunner().invoke(main, ["fit", str(data), "-v", "X", "-k", "2", "--family", "bayesian_poisson",
                                       "--bayesian"])  # already Bayesian: the same family
    assert result.exit_code == 1 and "a Poisson mixture takes counts only" in result.stderr
    result = CliRunner().invoke(main, ["generate", str(tmp_path / "new.zarr"), "--family", "bayesian_gaussian"])
    assert result.exit_code == 2 and "'bayesian_gaussian' is not one of" in result.stderr
    result = CliRunner().invoke(main, ["fit", str(data), "-v", "X", "-k", "2", "--bayesian", "--acceleration", "none"])
    assert result.exit_code == 1 and "acceleration do(es) not apply to a bayesian_gaussian mixture" in result.stderr


def test_a_job_file_fits_a_bayesian_mixture(data, tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(f"data: {{path: {data}, variable: X}}\n"
                   "fit: {n_components: 6, family: bayesian_gaussian, covariance_type: diag,\n"
                   "      weight_concentration_prior_type: dirichlet_distribution, mean_precision_prior: 0.5}\n"
                   "outputs: {model: model.zarr, report: report.json}\n")
    report = run_job(job)
    assert report["status"] == "done" and report["stages"][0]["model"]["family"] == "bayesian_gaussian"
    model = daskem.load(tmp_path / "model.zarr")
    assert (model.covariance_type, model.mean_precision_prior_) == ("diag", 0.5)
    assert model.weight_concentration_.shape == (6,)  # a Dirichlet's, not sticks


def test_the_pictures_of_a_bayesian_fit(data, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "model.zarr"
    CliRunner().invoke(main, ["fit", str(data), "-v", "X", "-k", "4", "--bayesian", "--max-iter", "5", "--out",
                              str(out)])
    for picture in (["components", str(out), str(data), "-v", "X"], ["convergence", str(out)]):
        result = CliRunner().invoke(main, ["plot", *picture, "--out", str(tmp_path / f"{picture[0]}.png")])
        assert result.exit_code == 0, result.output
        assert (tmp_path / f"{picture[0]}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_family_has_a_bayesian_family_that_the_command_line_reaches():
    for name, kind in FAMILIES.items():
        assert FAMILIES[bayesian_family(name)].variational
        assert bayesian_family(name) == (name if kind.variational else f"bayesian_{name}")
