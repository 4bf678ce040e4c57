"""No credential written into a URL is ever printed, logged or written (issue 22, item 1).

Every command is fed URLs that hold known secrets — as ``user:password@`` and as signed query
parameters — against a real S3 server (moto's, on 127.0.0.1), with ``--log-level debug``; the
secrets must appear nowhere in stdout, stderr or any file the command leaves behind.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import xarray as xr
from click.testing import CliRunner

import daskem
from daskem.app.cli import main
from daskem.exceptions import DaskemError, InputError, NotFittedError
from daskem.io.outputs import OutputWriteError
from daskem.redaction import HIDDEN, redact, redact_all
from tests.helpers import make_mixture_data, s3_server, write_zarr

pytest.importorskip("s3fs", reason="s3fs is part of the test install")
pytest.importorskip("moto.server", reason="moto is part of the test install")

KEY, SECRET, SIGNATURE, TOKEN = "AKIAQWERTYKEY", "SeCrEtVaLuE+123/x", "SiGnAtUrE456", "ToKeN789zz"
SECRETS = (KEY, SECRET, SIGNATURE, TOKEN)
HTTP_SECRET = "HtTpPaSsWoRd42"  # a password in a URL that works (HTTP basic authentication)
BUCKET = "daskem-secrets"


def _with_userinfo(path: str) -> str:
    return f"s3://{KEY}:{SECRET}@{path}"


def _signed(path: str) -> str:
    return f"s3://{path}?X-Amz-Signature={SIGNATURE}&token={TOKEN}&versionId=1"


# --------------------------------------------------------------------- the redaction itself


def test_redaction_hides_userinfo_signed_parameters_and_secrets_quoted_without_their_url():
    assert redact(f"'s3://{KEY}:{SECRET}@bkt/data.zarr' failed") == f"'s3://{HIDDEN}@bkt/data.zarr' failed"
    assert redact("https://h/x?sig=abcd1234&X-Amz-Credential=zz%2Fyy&other=ok&Key=k123") == (
        f"https://h/x?sig={HIDDEN}&X-Amz-Credential={HIDDEN}&other=ok&Key={HIDDEN}")
    # botocore quotes the bucket name it refuses without the URL's scheme: the secret, once seen, is hidden anyway
    assert redact(f'Invalid bucket name "{KEY}:{SECRET}@bkt"') == f'Invalid bucket name "{HIDDEN}@bkt"'
    assert redact("/data/sky.zarr and s3://bucket/key?versionId=3") == "/data/sky.zarr and s3://bucket/key?versionId=3"
    assert redact_all({"a": [f"s3://u:{SECRET}@b/k"], "n": 3}) == {"a": [f"s3://{HIDDEN}@b/k"], "n": 3}


def test_every_daskem_error_message_is_redacted_whatever_its_type():
    for kind in (InputError, OutputWriteError, NotFittedError):
        error = kind(f"cannot read 's3://{KEY}:{SECRET}@bkt/x'")
        assert SECRET not in str(error) and KEY not in str(error) and HIDDEN in str(error)


def test_daskem_log_records_are_redacted_whatever_handler_takes_them(caplog):
    with caplog.at_level(logging.INFO, logger="daskem"):
        logging.getLogger("daskem").info("reading %s", f"s3://bkt/x?token={TOKEN}")
    assert TOKEN not in caplog.text and f"token={HIDDEN}" in caplog.text


def test_a_url_with_credentials_in_it_is_refused_with_the_proper_way_to_pass_them():
    with pytest.raises(DaskemError) as caught:
        daskem.GaussianMixture(2).fit(_with_userinfo("bkt/data.zarr"), variable="X")
    message = str(caught.value)
    assert KEY not in message and SECRET not in message
    assert "credentials written into a s3:// URL are not read" in message and "AWS_PROFILE" in message


# --------------------------------------------------------------------- every command, on S3


@pytest.fixture(scope="module")
def s3():
    """An S3 server on 127.0.0.1 holding one empty bucket; yields an s3fs file system on it."""
    with s3_server(BUCKET) as fs:
        yield fs


@pytest.fixture(scope="module")
def local(tmp_path_factory, s3) -> Path:
    """A folder with data.zarr and model.zarr, both copied to the bucket too."""
    folder = tmp_path_factory.mktemp("secrets")
    X = make_mixture_data(n_samples=600, n_features=2, n_components=2, seed=5, separation=4.0)
    write_zarr(folder / "data.zarr", X, chunk_rows=300)
    daskem.GaussianMixture(2, max_iter=5, random_state=0).fit(X).save(folder / "model.zarr")
    for name in ("data.zarr", "model.zarr"):
        s3.put(str(folder / name), f"{BUCKET}/{name}", recursive=True)
    return folder


def _commands(folder: Path, url) -> dict[str, list[list[str]]]:
    """Each command, with the secret-holding URL as each of its paths in turn (the rest valid)."""
    data, model, out = url(f"{BUCKET}/data.zarr"), url(f"{BUCKET}/model.zarr"), url(f"{BUCKET}/out.zarr")
    local_data, local_model = str(folder / "data.zarr"), str(folder / "model.zarr")
    fit = ["-v", "X", "-k", "2", "--max-iter", "3"]
    return {
        "fit": [["fit", data, *fit], ["fit", local_data, *fit, "--out", out],
                ["fit", local_data, *fit, "--checkpoint", out]],
        "select": [["select", data, "-v", "X", "-k", "1-2", "--max-iter", "3"],
                   ["select", local_data, "-v", "X", "-k", "1-2", "--max-iter", "3", "--out", out]],
        "predict": [["predict", model, local_data, "-v", "X", "--out", str(folder / "p.zarr")],
                    ["predict", local_model, data, "-v", "X", "--out", str(folder / "p.zarr")],
                    ["predict", local_model, local_data, "-v", "X", "--out", out]],
        "score": [["score", model, local_data, "-v", "X"], ["score", local_model, data, "-v", "X"]],
        "impute": [["impute", model, local_data, "-v", "X", "--out", str(folder / "i.zarr")],
                   ["impute", local_model, data, "-v", "X", "--out", str(folder / "i.zarr")],
                   ["impute", local_model, local_data, "-v", "X", "--out", out]],
        "info": [["info", model]],
        "plot": [["plot", "convergence", model, "--out", str(folder / "c.png")],
                 ["plot", "components", local_model, data, "-v", "X", "--out", str(folder / "c.png")],
                 ["plot", "selection", url(f"{BUCKET}/selection"), "--out", str(folder / "s.png")]],
        "generate": [["generate", out, "--n-samples", "100", "--n-features", "2", "--n-components", "2"]],
    }


@pytest.mark.parametrize("url", [_with_userinfo, _signed], ids=["userinfo", "signed"])
@pytest.mark.parametrize("command", ["fit", "select", "predict", "score", "impute", "info", "plot", "generate",
                                     "run"])
def test_no_command_prints_logs_or_writes_a_secret_of_a_url(s3, local, tmp_path, url, command):
    if command == "run":
        (tmp_path / "job.yaml").write_text(
            f"data: {{path: '{url(BUCKET + '/data.zarr')}', variable: X}}\n"
            "fit: {n_components: 2, max_iter: 3}\n"
            f"outputs: {{model: '{url(BUCKET + '/job-model.zarr')}', report: report.json}}\n")
        runs = [["run", str(tmp_path / "job.yaml")]]
    else:
        runs = _commands(local, url)[command]
    before = {p: p.stat().st_mtime_ns for p in [*local.rglob("*"), *tmp_path.rglob("*")]}  # the job file too
    for arguments in runs:
        result = CliRunner().invoke(main, ["--log-level", "debug", *arguments])
        shown = result.stdout + result.stderr
        for secret in SECRETS:
            assert secret not in shown, (arguments, shown)
        assert "a bug in daskem" not in shown, (arguments, shown)
        if result.exit_code != 0:
            assert result.stderr.strip().splitlines()[-1].startswith("Error: "), shown
    written = [p for p in [*local.rglob("*"), *tmp_path.rglob("*")]
               if p.is_file() and before.get(p) != p.stat().st_mtime_ns]
    written += [Path(f) for f in s3.find(BUCKET)]  # what landed on the store, by name
    for path in written:
        content = path.read_bytes() if path.exists() else s3.cat_file(str(path))
        for secret in SECRETS:
            assert secret.encode() not in content and secret not in str(path), path


# --------------------------------------------------------------------- a secret that works: HTTP basic auth


@pytest.fixture
def http_store(tmp_path):
    """A read-only HTTP server on 127.0.0.1 serving a folder with data.zarr (consolidated) and model.zarr."""
    import functools
    import http.server
    import threading

    import zarr

    X = make_mixture_data(n_samples=600, n_features=2, n_components=2, seed=6, separation=4.0)
    served = tmp_path / "served"
    served.mkdir()
    write_zarr(served / "data.zarr", X, chunk_rows=300)
    zarr.consolidate_metadata(served / "data.zarr")  # HTTP cannot list: readers open it through its metadata
    daskem.GaussianMixture(2, max_iter=5, random_state=0).fit(X).save(served / "model.zarr")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=served))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://reader:{HTTP_SECRET}@127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


@pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning")
def test_commands_that_succeed_with_a_secret_in_the_url_show_and_write_it_nowhere(http_store, tmp_path):
    served, base = http_store
    out = tmp_path / "out"
    out.mkdir()
    runs = [["fit", f"{base}/data.zarr", "-v", "X", "-k", "2", "--max-iter", "3", "--out", str(out / "m.zarr")],
            ["predict", str(served / "model.zarr"), f"{base}/data.zarr", "-v", "X", "--out", str(out / "p.zarr")],
            ["impute", str(served / "model.zarr"), f"{base}/data.zarr", "-v", "X", "--out", str(out / "i.zarr")],
            ["score", f"{base}/model.zarr", f"{base}/data.zarr", "-v", "X"],
            ["info", f"{base}/model.zarr"]]
    for arguments in runs:
        for json_output in ([], ["--json"]):
            overwrite = ["--overwrite"] if "--out" in arguments else []
            result = CliRunner().invoke(main, ["--log-level", "debug", *json_output, *arguments, *overwrite])
            assert result.exit_code == 0, result.output
            shown = result.stdout + result.stderr
            assert HTTP_SECRET not in shown and "reader:" not in shown, shown
    assert f"http://{HIDDEN}@127.0.0.1" in CliRunner().invoke(main, ["info", f"{base}/model.zarr"]).stdout
    written = [p for p in out.rglob("*") if p.is_file()]
    assert {"m.zarr", "p.zarr", "i.zarr"} <= {p.relative_to(out).parts[0] for p in written}
    for path in written:
        assert HTTP_SECRET.encode() not in path.read_bytes(), path
    description = xr.open_zarr(out / "i.zarr").attrs["description"]
    assert f"http://{HIDDEN}@127.0.0.1" in description  # the path is recorded, without its secret
