"""Checksums: every Zarr array daskem writes carries a CRC32C per chunk, and a damaged chunk is refused by
name, whether daskem reads it from its file or through Zarr; checksums change no value a fit computes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from click.testing import CliRunner
from zarr.codecs import Crc32cCodec, ZstdCodec

import daskem
from daskem.app import commands
from daskem.app.cli import main
from daskem.app.generate import generate, truth_path
from daskem.exceptions import CorruptDataError, ModelFileError
from daskem.io.model_files import read_dataset, write_dataset
from daskem.io.zarr_rows import ZarrRows, open_rows
from tests.helpers import make_mixture_data

X = make_mixture_data(n_samples=1030, n_features=3, n_components=2, seed=7)
LAYOUTS = {"plain + crc32c": [Crc32cCodec()], "zstd + crc32c": [ZstdCodec(), Crc32cCodec()], "plain": None}


def store(folder: Path, compressors, name: str = "data.zarr", fill_value=None) -> zarr.Array:
    """``X`` as the array ``X`` of a Zarr group, in chunks of 300 rows (the last one short)."""
    group = zarr.open_group(folder / name, mode="w")
    return group.create_array("X", data=X, chunks=(300, 3), compressors=compressors, fill_value=fill_value)


def flip_a_byte(chunk: Path, at: int = 100) -> None:
    damaged = bytearray(chunk.read_bytes())
    damaged[at] ^= 0x10
    stat = chunk.stat()
    chunk.write_bytes(bytes(damaged))
    os.utime(chunk, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a changed file, however coarse the clock


def stored_arrays(path: Path) -> dict[str, zarr.Array]:
    """Every array of the Zarr hierarchy at ``path``, by its path in it."""
    return {name: member for name, member in zarr.open_group(path, mode="r").members(max_depth=None)
            if isinstance(member, zarr.Array)}


def test_every_array_daskem_writes_ends_in_a_checksum(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    generate("data.zarr", n_samples=2000, n_features=3, n_components=2, chunk_rows=500)
    model = daskem.GaussianMixture(2, random_state=0, max_iter=3)
    with pytest.warns(daskem.ConvergenceWarning):
        model.fit("data.zarr", variable="X", checkpoint="checkpoint")
    model.save("model.zarr")
    commands.predict("model.zarr", "data.zarr", variable="X", out="scores.zarr")
    commands.impute("model.zarr", "data.zarr", variable="X", out="imputed.zarr")
    checkpoints = list(Path("checkpoint").glob("iteration-*.zarr"))
    assert len(checkpoints) == 1
    written = {}
    for path in [Path("data.zarr"), truth_path("data.zarr"), Path("model.zarr"), Path("scores.zarr"),
                 Path("imputed.zarr"), *checkpoints]:
        written.update({f"{path}/{name}": array.metadata.codecs for name, array in stored_arrays(path).items()})
    assert {"data.zarr/X", "scores.zarr/responsibility", "imputed.zarr/X", "model.zarr/covariances"} <= set(written)
    assert any(name.startswith(str(checkpoints[0])) and name.endswith("/means") for name in written)
    for name, codecs in written.items():
        assert codecs[-1] == Crc32cCodec() and Crc32cCodec() not in codecs[:-1], (name, codecs)
    # The rows stay uncompressed, so that daskem reads them straight from their files.
    assert len(written["data.zarr/X"]) == 2 and ZarrRows(zarr.open_array("data.zarr/X", mode="r"), "X").plain


def test_rewriting_a_checksummed_store_keeps_one_checksum(tmp_path):
    xr.Dataset({"X": (("sample", "feature"), X)}).to_zarr(
        tmp_path / "data.zarr", zarr_format=3, consolidated=False,
        encoding={"X": {"compressors": [ZstdCodec(), Crc32cCodec()]}})  # as the README shows
    with xr.open_zarr(tmp_path / "data.zarr", consolidated=False) as ds:
        write_dataset(ds, tmp_path / "copy.zarr", "data")
    assert zarr.open_array(tmp_path / "copy.zarr" / "X", mode="r").metadata.codecs[1:] == (ZstdCodec(), Crc32cCodec())
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "copy.zarr" / "X", mode="r")[:], X)


@pytest.mark.parametrize("chunk_rows", [None, 70, 1000])
def test_checksummed_chunk_files_read_as_zarr_reads_them(tmp_path, chunk_rows):
    """Aligned Dask chunks or not, the short last chunk, an absent chunk: the values Zarr reads."""
    array = store(tmp_path, [Crc32cCodec()], fill_value=7.0)
    (tmp_path / "data.zarr" / "X" / "c" / "2" / "0").unlink()  # rows 600–899: the fill value
    assert ZarrRows(array, "X").plain.trailer_bytes == 4
    np.testing.assert_array_equal(open_rows(str(tmp_path / "data.zarr"), "X", chunk_rows).compute(), array[:])


@pytest.mark.parametrize("layout", ["plain + crc32c", "zstd + crc32c"])
@pytest.mark.parametrize("chunk_rows", [None, 70])
def test_a_flipped_byte_is_refused_naming_the_rows_of_its_chunk(tmp_path, layout, chunk_rows):
    array = store(tmp_path, LAYOUTS[layout])
    assert (ZarrRows(array, "X").plain is None) == (layout == "zstd + crc32c")  # Zarr's read path, or daskem's
    rows = open_rows(str(tmp_path / "data.zarr"), "X", chunk_rows)
    rows.compute()  # read once whole: a reader that has checked a file checks it again once it changes
    flip_a_byte(tmp_path / "data.zarr" / "X" / "c" / "1" / "0")
    for read in (rows, open_rows(str(tmp_path / "data.zarr"), "X", chunk_rows)):
        with pytest.raises(CorruptDataError) as caught:
            read.compute()
        message = str(caught.value)
        assert "the stored chunk(s) of rows 300–599 are damaged (ValueError: Stored and computed checksum do " \
               "not match" in message and "\n" not in message, message
    if chunk_rows == 70:  # a Dask chunk inside the damaged one, away from the flipped byte: refused too
        with pytest.raises(CorruptDataError, match="rows 300–599 are damaged"):
            rows.blocks[7].compute()  # rows 490–559


def test_the_chunk_file_reader_leaves_a_damaged_chunk_to_zarr(tmp_path):
    plain = ZarrRows(store(tmp_path, [Crc32cCodec()]), "X").plain
    np.testing.assert_array_equal(plain.read(slice(0, 600)), X[:600])
    flip_a_byte(tmp_path / "data.zarr" / "X" / "c" / "1" / "0", at=-2)  # in the checksum itself
    assert plain.read(slice(0, 600)) is None and plain.read(slice(310, 320)) is None
    np.testing.assert_array_equal(plain.read(slice(0, 300)), X[:300])


def test_fit_on_a_damaged_store_is_one_line_naming_the_rows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    generate("data.zarr", n_samples=2000, n_features=3, n_components=2, chunk_rows=500)
    flip_a_byte(tmp_path / "data.zarr" / "X" / "c" / "2" / "0", at=4000)
    result = CliRunner().invoke(main, ["fit", "data.zarr", "-v", "X", "-k", "2", "--out", "model.zarr"])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert "the stored chunk(s) of rows 1000–1499 are damaged (ValueError: Stored and computed checksum" \
           in result.stderr
    assert not (tmp_path / "model.zarr").exists()


def test_a_damaged_model_file_is_refused(tmp_path):
    model = daskem.GaussianMixture(2, random_state=0).fit(X)
    model.save(tmp_path / "model.zarr")
    flip_a_byte(next(p for p in (tmp_path / "model.zarr" / "means" / "c").rglob("*") if p.is_file()), at=0)
    with pytest.raises(ModelFileError, match="cannot read means .ValueError: Stored and computed checksum"):
        daskem.load(tmp_path / "model.zarr")
    with read_dataset(tmp_path / "model.zarr") as ds:  # the other arrays read as written
        np.testing.assert_array_equal(ds["covariances"].values, model.covariances_)


@pytest.mark.parametrize("chunk_rows", [None, 70])
def test_fits_on_checksummed_rows_are_bitwise_those_on_plain_rows(tmp_path, chunk_rows):
    fits = {}
    for layout, compressors in LAYOUTS.items():
        store(tmp_path, compressors, name=f"{layout}.zarr")
        settings = {"random_state": 0, "tol": 0, "max_iter": 8, "chunk_rows": chunk_rows}
        with pytest.warns(daskem.ConvergenceWarning):
            fits[layout] = daskem.GaussianMixture(2, **settings).fit(str(tmp_path / f"{layout}.zarr"), variable="X")
    for layout in ("plain + crc32c", "zstd + crc32c"):
        for name in ("weights_", "means_", "covariances_", "history_"):
            np.testing.assert_array_equal(getattr(fits[layout], name), getattr(fits["plain"], name),
                                          err_msg=f"{layout}: {name}")


# ------------------------------------------------------------ chunks in the wrong place


@pytest.fixture
def generated(tmp_path) -> Path:
    """Rows written by daskem generate: 1,000 × 3 in 4 chunk files of 250 rows, indexed."""
    result = CliRunner().invoke(main, ["--quiet", "generate", str(tmp_path / "g.zarr"), "--n-samples", "1000",
                                       "--n-features", "3", "--chunk-rows", "250"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g.zarr" / "X" / "daskem-chunks.json").is_file()
    return tmp_path / "g.zarr"


def _fit(store: Path, *more: str):
    return CliRunner().invoke(main, ["--quiet", "fit", str(store), "-v", "X", "-k", "2", "--max-iter", "2", *more])


def test_swapped_chunk_files_are_refused_naming_where_each_belongs(generated, tmp_path):
    chunks = generated / "X" / "c"
    os.rename(chunks / "1" / "0", tmp_path / "aside")
    os.rename(chunks / "2" / "0", chunks / "1" / "0")
    os.rename(tmp_path / "aside", chunks / "2" / "0")
    result = _fit(generated, "--out", str(tmp_path / "model.zarr"))
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert ("the stored chunk of rows 250–499 holds rows 500–749" in result.stderr
            or "the stored chunk of rows 500–749 holds rows 250–499" in result.stderr)
    assert "swapped or copied over" in result.stderr and not (tmp_path / "model.zarr").exists()


def test_a_chunk_file_copied_over_another_is_refused(generated):
    chunks = generated / "X" / "c"
    (chunks / "3" / "0").write_bytes((chunks / "0" / "0").read_bytes())
    with pytest.raises(CorruptDataError, match="the stored chunk of rows 750–999 holds rows 0–249"):
        daskem.GaussianMixture(2, max_iter=2).fit(str(generated), variable="X")


def test_rows_edited_in_place_are_read_without_a_false_alarm(generated):
    array = zarr.open_array(generated / "X", mode="r+")
    edited = np.asarray(array[:]).copy()
    edited[300:310] += 1.0  # Zarr rewrites the chunk of rows 250–499, with a new checksum of its own
    array[300:310] = edited[300:310]
    np.testing.assert_array_equal(open_rows(generated, "X").compute(), edited)
    assert _fit(generated).exit_code == 0


def test_an_index_that_belongs_to_other_rows_is_ignored(generated, tmp_path):
    other = tmp_path / "other.zarr"
    assert CliRunner().invoke(main, ["--quiet", "generate", str(other), "--n-samples", "1000", "--n-features", "3",
                                     "--chunk-rows", "250", "--seed", "5"]).exit_code == 0
    (other / "X" / "daskem-chunks.json").write_bytes((generated / "X" / "daskem-chunks.json").read_bytes())
    assert _fit(other).exit_code == 0  # no chunk of other.zarr carries a checksum recorded there
    shape_changed = generated / "X" / "daskem-chunks.json"
    shape_changed.write_text(shape_changed.read_text().replace("[1000, 3]", "[2000, 3]"))
    chunks = generated / "X" / "c"
    (chunks / "3" / "0").write_bytes((chunks / "0" / "0").read_bytes())
    assert _fit(generated).exit_code == 0  # recorded for another shape: no evidence either way
