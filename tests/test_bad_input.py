"""Every kind of bad input ends `daskem fit` with one clear line and no output written."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from daskem.cli import main

from conftest import make_mixture_data, write_zarr

GOOD = make_mixture_data(n_samples=1200, n_features=3, n_components=2, seed=0)


def store_of(folder: Path, X, chunk_rows=300, name="data.zarr") -> str:
    return str(write_zarr(folder / name, X, chunk_rows))


def with_nan(folder):
    X = GOOD.copy()
    X[700, 1] = np.nan
    return store_of(folder, X)


def constant_feature(folder):
    X = GOOD.copy()
    X[:, 2] = 4.5
    return store_of(folder, X)


def identical_rows(folder):
    return store_of(folder, np.tile([[1.0, 2.0, 3.0]], (1200, 1)))


def missing_chunk(folder):
    path = store_of(folder, GOOD)
    os.remove(Path(path) / "X" / "c" / "2" / "0")
    return path


def corrupted_chunk(folder):
    path = store_of(folder, GOOD)
    (Path(path) / "X" / "c" / "1" / "0").write_bytes(b"this is not a compressed chunk")
    return path


def one_dimensional(folder):
    group = zarr.open_group(folder / "data.zarr", mode="w")
    group.create_array("X", data=GOOD[:, 0], chunks=(300,))
    return str(folder / "data.zarr")


def three_dimensional(folder):
    group = zarr.open_group(folder / "data.zarr", mode="w")
    group.create_array("X", data=GOOD.reshape(1200, 3, 1), chunks=(300, 3, 1))
    return str(folder / "data.zarr")


def text_values(folder):
    group = zarr.open_group(folder / "data.zarr", mode="w")
    group.create_array("X", data=np.array([["a", "b"]] * 10), chunks=(5, 2))
    return str(folder / "data.zarr")


CASES = {
    "missing path": (lambda f: str(f / "nothing.zarr"), [], "no such file or directory"),
    "missing variable": (lambda f: store_of(f, GOOD), ["-v", "Y"], "variable 'Y' not found"),
    "1-D array": (one_dimensional, [], "expected a 2-D array of shape (n_samples, n_features), got 1-D"),
    "3-D array": (three_dimensional, [], "got 3-D shape (1200, 3, 1)"),
    "non-numeric": (text_values, [], "expected numeric"),
    "NaN": (with_nan, [], "NaN or infinite values, first seen at row 700"),
    "fewer rows than components": (lambda f: store_of(f, GOOD[:3]), ["-k", "5"], "the data have 3 rows, fewer than"),
    "n_components < 1": (lambda f: store_of(f, GOOD), ["-k", "0"], "n_components must be an integer >= 1"),
    "zero-variance feature": (constant_feature, [], "feature(s) 2 (always 4.5) have the same value in every row"),
    "identical rows": (identical_rows, [], "all 1200 rows are identical"),
    "missing chunk": (missing_chunk, [], "is missing 1 stored chunk(s): c/2/0 (rows 600–899)"),
    "corrupted chunk": (corrupted_chunk, [], "the stored chunk(s) of rows 300–599 are damaged (RuntimeError: Zstd"),
    "malformed cluster config": (lambda f: store_of(f, GOOD), ["--cluster", "{folder}/bad.yaml"], "is not valid YAML"),
    "unknown config key": (lambda f: store_of(f, GOOD), ["--cluster", "{folder}/extra.yaml"], "unknown key 'wrokers'"),
    "class outside the allow-list": (lambda f: store_of(f, GOOD), ["--cluster", "{folder}/evil.yaml"], "kind must be one of"),
    "unreadable config": (lambda f: store_of(f, GOOD), ["--cluster", "{folder}/none.yaml"], "cannot read cluster config"),
    "output not writable": (lambda f: store_of(f, GOOD), ["--out", "{folder}/a-file/model.zarr"], "cannot write"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_line_and_no_output(tmp_path, case):
    make, extra, message = CASES[case]
    (tmp_path / "bad.yaml").write_text("kind: [")
    (tmp_path / "extra.yaml").write_text("kind: local-processes\nwrokers: 2\n")
    (tmp_path / "evil.yaml").write_text("kind: os.system\ncommand: rm -rf /\n")
    (tmp_path / "a-file").write_text("a file, not a folder")
    path = make(tmp_path)
    out = tmp_path / "model.zarr"
    arguments = ["fit", path, "-v", "X", "-k", "2", "--max-iter", "5", "--out", str(out),
                 *[a.format(folder=tmp_path) for a in extra]]
    if "--out" in extra:  # the case names its own output
        arguments = arguments[:8] + [a.format(folder=tmp_path) for a in extra]
        out = Path(extra[1].format(folder=tmp_path))
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, not even a temporary
