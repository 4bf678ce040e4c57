"""The README's examples run as written (on fewer rows, to keep the suite fast)."""

from __future__ import annotations

import re
import shlex
import shutil
import textwrap
from pathlib import Path

import dask.array as da
import numpy as np
from click.testing import CliRunner

from daskem.app.cli import main

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
FEWER_ROWS = ("--n-samples 400000", "--n-samples 20000")


def blocks(language: str) -> list[str]:
    """The README's code blocks in ``language``, dedented (those inside list items are indented)."""
    return [textwrap.dedent(block) for block in re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)]


def daskem_lines() -> list[str]:
    return [line.strip() for block in blocks("console") for line in block.splitlines()
            if line.strip().startswith("daskem ")]


def run(line: str) -> None:
    result = CliRunner().invoke(main, shlex.split(line.replace(*FEWER_ROWS))[1:])
    assert result.exit_code == 0, f"{line}\n{result.output}"


def test_every_command_line_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "cluster_configs", tmp_path / "cluster_configs")
    lines = daskem_lines()
    assert len(lines) >= 10 and lines[0].startswith("daskem generate data.zarr")
    for line in lines:
        run(line)
    for name in ("model.zarr", "selection/table.csv", "scores.zarr", "convergence.png", "components.png"):
        assert (tmp_path / name).exists(), name


def test_every_python_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(daskem_lines()[0])  # the data the examples read
    namespace: dict = {}
    python = blocks("python")
    assert len(python) >= 3
    for block in python:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 — our own README
    assert namespace["gm2"].n_components == 8
    assert len(namespace["search"].cv_results_["mean_test_score"]) == 2
    assert list(namespace["named"].feature_names_in_) == ["a", "b", "c"]
    assert isinstance(namespace["lazy_labels"], da.Array)
    # the same fit, its sums taken over partitions: equal up to the order of additions
    np.testing.assert_allclose(namespace["by_partition"].means_, namespace["named"].means_, rtol=1e-9)
    assert namespace["selection"].best_.n_components == 8
    assert namespace["label_map"].dims == ("y", "x") and list(namespace["pixels"].feature_names_in_) == [
        "red", "green", "nir"]


def test_the_demo_recipe_runs_in_a_fresh_folder(tmp_path, monkeypatch):
    """`make demo`'s commands, in a folder holding nothing (as in a fresh clone), on fewer rows:
    daskem creates no folder above its outputs, so the recipe must make the one it writes into."""
    monkeypatch.chdir(tmp_path)
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    demo = re.search(r"^DEMO \?*:?= *(\S+)", makefile, flags=re.MULTILINE).group(1)
    ran = 0
    for line in (line.strip().replace("$(DEMO)", demo) for line in recipe):
        if line.startswith("mkdir -p "):
            for folder in shlex.split(line)[2:]:
                Path(folder).mkdir(parents=True, exist_ok=True)
        else:
            assert line.startswith("$(BIN)/daskem "), line
            run(line.replace("$(BIN)/daskem", "daskem").replace("--n-components 1-10", "--n-components 1-3"))
            ran += 1
    assert ran >= 6 and (tmp_path / demo / "components.png").exists()
