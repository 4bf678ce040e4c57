"""Every kind of bad input ends `daskem fit` with one clear line, and nothing is written or lost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

import daskem
from daskem.app.cli import main
from daskem.exceptions import CorruptDataError
from tests.helpers import make_mixture_data, snapshot, write_zarr

GOOD = make_mixture_data(n_samples=1200, n_features=3, n_components=2, seed=0)


def store_of(folder: Path, X, chunk_rows=300, name="data.zarr") -> str:
    return str(write_zarr(folder / name, X, chunk_rows))


def good(folder):
    return store_of(folder, GOOD)


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


CONFIGS = {
    "bad.yaml": "kind: [",
    "extra.yaml": "kind: local-processes\nwrokers: 2\n",
    "evil.yaml": "kind: os.system\ncommand: rm -rf /\n",
    "memory.yaml": "kind: local-processes\nmemory_limit: lots\n",
    "not-certificates.yaml": "kind: existing-scheduler\naddress: tls://127.0.0.1:1\n"
                             "tls: {ca_file: notes.txt, cert_file: notes.txt}\n",
    "silent.yaml": "kind: existing-scheduler\naddress: tcp://127.0.0.1:9\ntimeout: 1s\n",
    "scheduler-file.yaml": "kind: existing-scheduler\nscheduler_file: notes.txt\n",
    "scheme.yaml": "kind: existing-scheduler\naddress: carrier-pigeon://127.0.0.1:1\n",
    "bomb.yaml": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                 + "".join(f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                           for p, c in zip("abcdefgh", "bcdefghi"))
                 + "kind: local-threads\n",
}

CASES = {
    "missing path": (lambda f: str(f / "nothing.zarr"), [], "no such file or directory"),
    "missing variable": (good, ["-v", "Y"], "variable 'Y' not found"),
    "1-D array": (one_dimensional, [], "expected a 2-D array of shape (n_samples, n_features), got 1-D"),
    "3-D array": (three_dimensional, [], "got 3-D shape (1200, 3, 1)"),
    "non-numeric": (text_values, [], "expected numeric"),
    "NaN with --missing error": (with_nan, ["--missing", "error"], "NaN or infinite values, first seen at row 700"),
    "values near 1e200": (lambda f: store_of(f, GOOD * 1e200), [], "feature 0 reaches"),
    "values near 1e-200": (lambda f: store_of(f, GOOD * 1e-200), [], "varies by only"),
    "fewer rows than components": (lambda f: store_of(f, GOOD[:3]), ["-k", "5"], "the data have 3 rows, fewer than"),
    "zero-variance feature": (constant_feature, [], "feature(s) 2 (always 4.5) have the same value in every row"),
    "identical rows": (identical_rows, [], "all 1200 rows are identical"),
    "corrupted chunk": (corrupted_chunk, [], "the stored chunk(s) of rows 300–599 are damaged (RuntimeError: Zstd"),
    "malformed cluster config": (good, ["--cluster", "bad.yaml"], "is not valid YAML"),
    "unknown config key": (good, ["--cluster", "extra.yaml"], "unknown key 'wrokers'"),
    "class outside the allow-list": (good, ["--cluster", "evil.yaml"], "kind must be one of"),
    "unreadable config": (good, ["--cluster", "none.yaml"], "cannot read cluster config"),
    "bad memory size": (good, ["--cluster", "memory.yaml"], "memory_limit: Could not interpret 'lots'"),
    "TLS files that are not certificates": (good, ["--cluster", "not-certificates.yaml"],
                                            "is not a PEM certificate that can be used"),
    "scheduler that does not answer": (good, ["--cluster", "silent.yaml"],
                                       "cannot connect to the scheduler at 'tcp://127.0.0.1:9'"),
    "scheduler file that is not JSON": (good, ["--cluster", "scheduler-file.yaml"],
                                        "is not a scheduler file (JSON from dask scheduler --scheduler-file)"),
    "unknown address scheme": (good, ["--cluster", "scheme.yaml"], "unknown address scheme 'carrier-pigeon'"),
    "YAML aliases that expand to millions": (good, ["--cluster", "bomb.yaml"], "once its aliases are expanded"),
    "output folder that is a file": (good, ["--out", "a-file/model.zarr"], "a-file' is not a folder"),
    # Outputs that would destroy data: refused before any work, even with --overwrite.
    "--out is the input": (good, ["--out", "data.zarr", "--overwrite"], "is the input"),
    "--out is the folder holding the input": (good, ["--out", ".", "--overwrite"], "holds the input"),
    "--out is inside the input": (good, ["--out", "data.zarr/model.zarr"], "is inside the input"),
    "--out is a folder of other files": (good, ["--out", "notes", "--overwrite"],
                                         "is a folder that is not a daskem output, not a daskem model"),
    "--out is a file": (good, ["--out", "notes.txt", "--overwrite"], "is a file that is not a daskem output"),
    "--checkpoint is the input": (good, ["--checkpoint", "data.zarr"], "is the input"),
    "--checkpoint holds the input": (good, ["--checkpoint", "."], "holds the input"),
    "--checkpoint is a folder of other files": (good, ["--checkpoint", "notes"], "checkpoints go only into a new"),
    "--checkpoint holds --out": (good, ["--checkpoint", "runs"], "is inside --checkpoint"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_line_and_writes_nothing(tmp_path, monkeypatch, case):
    make, extra, message = CASES[case]
    monkeypatch.chdir(tmp_path)
    for name, text in CONFIGS.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "a-file").write_text("a file, not a folder")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("the user's notes")
    (tmp_path / "notes.txt").write_text("the user's notes")
    (tmp_path / "runs").mkdir()
    path = make(tmp_path)
    out = ["--out", "runs/model.zarr"] if "--out" not in extra else []
    arguments = ["fit", path, "-v", "X", "-k", "2", "--max-iter", "5", *out, *extra]
    before = snapshot(tmp_path)
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert snapshot(tmp_path) == before  # nothing written, changed or deleted, not even a temporary


@pytest.mark.parametrize(("option", "value"), [("--chunk-rows", "-5"), ("--max-iter", "-1"), ("--tol", "-1"),
                                               ("--n-init", "0"), ("--reg-covar", "-1e-6"), ("--n-components", "0"),
                                               ("--min-rate", "0"), ("--min-probability", "0.5"),
                                               ("--split-every", "1"), ("--init-params", "magic")])
def test_out_of_range_options_are_usage_errors(tmp_path, option, value):
    path = good(tmp_path)
    result = CliRunner().invoke(main, ["fit", path, "-v", "X", "-k", "2", option, value])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith(f"Error: Invalid value for '{option}'")


def test_chunks_absent_because_they_equal_the_fill_value_read_as_zeros(tmp_path):
    """Zarr does not store a chunk equal to the fill value (a block of zeros): such a store is complete."""
    X = GOOD.copy()
    X[300:600] = 0.0
    weights = np.ones(len(X))
    weights[900:] = 0.0  # rows masked out by zero weights: their chunk is not stored either
    group = zarr.open_group(tmp_path / "data.zarr", mode="w")
    group.create_array("X", data=X, chunks=(300, 3))
    group.create_array("w", data=weights, chunks=(300,))
    assert not (tmp_path / "data.zarr" / "X" / "c" / "1" / "0").exists()
    assert not (tmp_path / "data.zarr" / "w" / "c" / "3").exists()
    import daskem

    settings = {"random_state": 0, "max_iter": 20, "chunk_rows": 300}
    from_store = daskem.GaussianMixture(2, **settings).fit(str(tmp_path / "data.zarr"), variable="X",
                                                           sample_weight="w")
    from_memory = daskem.GaussianMixture(2, **settings).fit(X, sample_weight=weights)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(from_store, name), getattr(from_memory, name))


# ------------------------------------------- chunk files read without Zarr's codecs


@pytest.mark.parametrize("dtype", ["float64", "float32", "int16"])
@pytest.mark.parametrize("chunk_rows", [None, 70, 1000])
def test_plain_chunk_files_read_as_zarr_reads_them(tmp_path, dtype, chunk_rows):
    """Uncompressed local chunks are read straight from their files: the same values as Zarr's
    reads for every Dask chunking (aligned or not, the short last chunk, an absent chunk)."""
    from daskem.io.zarr_rows import ZarrRows, open_rows

    X = (np.random.default_rng(3).normal(size=(1030, 4)) * 100).astype(dtype)
    group = zarr.open_group(tmp_path / "data.zarr", mode="w")
    array = group.create_array("X", data=X, chunks=(100, 4), compressors=None, fill_value=7)
    (tmp_path / "data.zarr" / "X" / "c" / "4" / "0").unlink()  # rows 400–499: the fill value
    assert ZarrRows(array, "X").plain is not None
    rows = open_rows(str(tmp_path / "data.zarr"), "X", chunk_rows)
    expected = array[:]
    assert (expected[400:500] == 7).all()
    np.testing.assert_array_equal(rows.compute(), expected)
    assert rows.compute().dtype == np.dtype(dtype)


@pytest.mark.parametrize("layout", ["compressed", "sharded", "feature chunks", "big endian"])
def test_other_layouts_are_read_by_zarr(tmp_path, layout):
    from daskem.io.zarr_rows import ZarrRows, open_rows

    X = np.random.default_rng(4).normal(size=(500, 4))
    options = {"compressed": {}, "sharded": {"compressors": None, "shards": (200, 4), "chunks": (100, 4)},
               "feature chunks": {"compressors": None, "chunks": (100, 2)},
               "big endian": {"compressors": None, "dtype": ">f8"}}[layout]
    options = {"chunks": (100, 4), **options}
    array = zarr.open_group(tmp_path / "data.zarr", mode="w").create_array("X", data=X.astype(options.pop("dtype", "f8")),
                                                                             **options)
    assert ZarrRows(array, "X").plain is None
    np.testing.assert_array_equal(open_rows(str(tmp_path / "data.zarr"), "X").compute(), X)


def test_a_truncated_plain_chunk_is_named_as_damaged(tmp_path):
    X = np.random.default_rng(5).normal(size=(600, 3))
    zarr.open_group(tmp_path / "data.zarr", mode="w").create_array("X", data=X, chunks=(300, 3), compressors=None)
    chunk = tmp_path / "data.zarr" / "X" / "c" / "1" / "0"
    chunk.write_bytes(chunk.read_bytes()[:100])
    with pytest.raises(CorruptDataError, match="the stored chunk.s. of rows 300–599 are damaged"):
        daskem.GaussianMixture(2).fit(str(tmp_path / "data.zarr"), variable="X")
