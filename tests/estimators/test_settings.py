"""Every setting is declared once: the estimators, select, the command line and job files agree with the
declarations, and each family's own settings reach all of them."""

import inspect
import re

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import daskem
from daskem.app.cli import main
from daskem.app.jobs import Fit, Select, load_job
from daskem.app.options import EM_SETTINGS, help_text
from daskem.estimators.registry import ESTIMATORS, RUN_SETTINGS, estimator_from_settings
from daskem.estimators.settings import SHARED
from daskem.exceptions import InputError
from daskem.families.base import MISSING
from daskem.settings import Setting
from tests.helpers import write_zarr

ESTIMATOR_CLASSES = list(ESTIMATORS.values())


@pytest.mark.parametrize("estimator", ESTIMATOR_CLASSES, ids=lambda kind: kind.__name__)
def test_an_estimators_signature_is_its_declared_settings(estimator):
    parameters = inspect.signature(estimator).parameters
    assert list(parameters) == [setting.name for setting in estimator.SETTINGS]
    assert {name: p.default for name, p in parameters.items()} == {s.name: s.default for s in estimator.SETTINGS}
    assert estimator().get_params() == {setting.name: setting.default for setting in estimator.SETTINGS}
    family_settings = set(estimator.FAMILY.setting_names())
    assert family_settings <= set(parameters)
    assert "missing" in family_settings or estimator.FAMILY.missing == "error"  # a family that refuses NaN


@pytest.mark.parametrize("estimator", ESTIMATOR_CLASSES, ids=lambda kind: kind.__name__)
def test_an_estimators_docstring_documents_every_setting_and_family_(estimator):
    documented = set(re.findall(r"\b[a-z_]+\b", estimator.__doc__))
    missing = [setting.name for setting in estimator.SETTINGS if setting.name not in documented]
    assert not missing, f"{estimator.__name__}'s docstring leaves out {missing}"
    assert "family_" in documented


def test_select_takes_every_shared_setting_with_its_default():
    parameters = inspect.signature(daskem.select).parameters
    for setting in [*SHARED, MISSING]:
        if setting.in_runs and setting.name != "n_components":
            assert parameters[setting.name].default == setting.default, setting.name
    assert parameters["settings"].kind is inspect.Parameter.VAR_KEYWORD  # each family's own settings


def test_the_command_line_has_an_option_for_every_run_setting():
    for command, spanned in (("fit", set()), ("select", {"n_components", "covariance_type"})):
        text = CliRunner().invoke(main, [command, "--help"], terminal_width=200).output
        for name in set(RUN_SETTINGS) - spanned:
            assert f"--{name.replace('_', '-')}" in text, (command, name)
    assert "Poisson mixtures only" in help_text(RUN_SETTINGS["min_rate"])
    assert help_text(RUN_SETTINGS["tol"]) == RUN_SETTINGS["tol"].help


def test_job_files_have_a_field_for_every_run_setting_with_its_domain():
    for schema in (Fit, Select):
        fields = schema.model_fields
        for setting in EM_SETTINGS:
            assert fields[setting.name].default == setting.default_in_runs, setting.name
            assert fields[setting.name].description == help_text(setting)
    for name, bad in (("min_rate", 0.0), ("min_probability", 0.5), ("n_init", 0), ("tol", float("nan"))):
        with pytest.raises(ValueError, match=name):
            Fit(n_components=2, **{name: bad})
    with pytest.raises(ValueError, match="n_components"):
        Fit(n_components=0)  # its minimum is N_COMPONENTS's, as on the command line
    with pytest.raises(ValueError, match="n_components"):
        Select(n_components=[2, 0])


@pytest.mark.parametrize(
    ("setting", "good", "bad", "message"),
    [
        (Setting("k", 1, "", int, ge=1), [1, np.int64(5)], [0, 1.5, True, "1"], "k must be an integer >= 1"),
        (Setting("p", 0.1, "", float, gt=0, lt=0.5), [0.25, np.float32(0.1), 0.4999],
         [0.0, 0.5, float("nan"), False], r"p must be a finite number > 0 and < 0\.5"),
        (Setting("c", "a", "", str, choices=("a", "b")), ["a", np.str_("b")], ["c", ["a"], None],
         r"c='?.*'? is not supported; choose one of \('a', 'b'\)"),
        (Setting("n", None, "", int, ge=1, optional=True), [None, 3], [0, "x"], "n must be None or an integer >= 1"),
        (Setting("f", False, "", bool), [True, np.bool_(False)], [1, "yes"], "f must be True or False"),
    ],
)
def test_a_setting_accepts_its_domain_and_refuses_the_rest_naming_it(setting, good, bad, message):
    for value in good:
        setting.check(value)
    for value in bad:
        with pytest.raises(InputError, match=message):
            setting.check(value)


def test_select_gives_each_family_its_own_settings():
    rng = np.random.default_rng(0)
    counts = rng.poisson([[1.0, 9.0]] * 300 + [[6.0, 0.5]] * 300).astype(float)
    selection = daskem.select(counts, [2], families=["poisson", "gaussian"], min_rate=0.25, reg_covar=0.125,
                              max_iter=5, random_state=0)
    by_family = {model.family_.name: model for model in selection.models}
    assert by_family["poisson"].min_rate == by_family["poisson"].family_.min_rate == 0.25
    assert by_family["poisson"].means_.min() >= 0.25
    assert by_family["gaussian"].reg_covar == 0.125
    with pytest.raises(InputError, match="min_probability, which no family tried"):
        daskem.select(counts, [2], families=["poisson"], min_probability=0.01)


def test_a_family_setting_reaches_the_command_line_and_job_files(tmp_path):
    rng = np.random.default_rng(2)
    write_zarr(tmp_path / "counts.zarr", rng.poisson(0.01, size=(400, 3)).astype(float), chunk_rows=100)
    result = CliRunner().invoke(main, ["fit", str(tmp_path / "counts.zarr"), "-v", "X", "-k", "2", "--family",
                                       "poisson", "--min-rate", "0.5", "--out", str(tmp_path / "cli.zarr")])
    assert result.exit_code == 0, result.output
    assert daskem.load(tmp_path / "cli.zarr").family_.min_rate == 0.5
    job = {"data": {"path": "counts.zarr", "variable": "X"},
           "fit": {"n_components": 2, "family": "poisson", "min_rate": 0.5},
           "outputs": {"model": "job.zarr", "report": "report.json"}}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    assert load_job(tmp_path / "job.yaml").fit.min_rate == 0.5
    result = CliRunner().invoke(main, ["run", str(tmp_path / "job.yaml")])
    assert result.exit_code == 0, result.output
    model = daskem.load(tmp_path / "job.zarr")
    assert model.min_rate == 0.5 and model.means_.min() >= 0.5


def test_a_setting_the_family_does_not_take_must_stay_at_its_default():
    assert estimator_from_settings("poisson", reg_covar=1e-6, min_rate=0.5).get_params()["min_rate"] == 0.5
    with pytest.raises(InputError, match="reg_covar do\\(es\\) not apply to a poisson mixture.*Gaussian"):
        estimator_from_settings("poisson", reg_covar=0.1)
    with pytest.raises(InputError, match="min_rate do\\(es\\) not apply to a bernoulli mixture.*Poisson"):
        estimator_from_settings("bernoulli", min_rate=0.5)
