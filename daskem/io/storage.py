"""Where a path points — a local file system path, or an fsspec URL (s3://, gs://, memory://, …).

:func:`location` turns what a user typed into a :class:`pathlib.Path` or, for
a URL, a ``upath.UPath`` with the same interface, refusing unknown schemes
and naming the package a known one needs.  Credentials and endpoints come
from the environment, as the fsspec implementation reads them (for S3:
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, …).

Object stores have no folders and no atomic rename, so outputs there are
written under a temporary prefix and then copied into place with their
*commit object* last (see :func:`commit_order`): a store or folder without
it is incomplete, and daskem never takes it for an output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

from daskem.exceptions import DaskemError
from daskem.redaction import redact, remember

#: Packages that provide common URL schemes (fsspec names them in its error, but not the extra).
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure"}
#: Schemes whose file systems do not read credentials from the URL (``user:password@`` is taken for
#: part of the bucket name): a URL of theirs with credentials in it is refused before any request.
_NO_URL_CREDENTIALS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory"})
#: Where the refusal points to.
CREDENTIALS_HINT = (
    "pass credentials through the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    "GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT_KEY, ...), a profile (AWS_PROFILE), or fsspec's "
    "storage_options in its configuration file (~/.config/fsspec/s3.json); see the README's object storage section"
)
#: The object every Zarr store (v3) is opened through; written last, it commits the store.
ZARR_METADATA = "zarr.json"
#: Marks a folder on an object store that daskem is copying into place (it holds the output's kind).
INCOMPLETE_MARKER = ".daskem-incomplete.json"


class StorageError(DaskemError, ValueError):
    """A URL names a scheme daskem cannot use, or a bucket that does not exist."""


def is_url(path: Any) -> bool:
    """Whether ``path`` is a URL (``scheme://…``) other than ``file://``."""
    return isinstance(path, str) and "://" in path and not path.startswith("file://")


def is_remote(path: Any) -> bool:
    """Whether ``path`` (as :func:`location` returns it) lies outside the local file system."""
    return not isinstance(path, Path)


def location(path: str | os.PathLike) -> Any:
    """``path`` as a ``pathlib.Path`` (local, made absolute) or a ``upath.UPath`` (a URL).

    Credentials written into a URL are remembered, so that no message shows
    them (see :mod:`daskem.redaction`).

    Raises
    ------
    StorageError
        The URL's scheme is unknown, or needs a package that is not installed,
        or it holds credentials its file system does not read.
    """
    if isinstance(path, Path):
        return Path(os.path.abspath(path))
    if not isinstance(path, str) and hasattr(path, "fs"):  # a UPath already
        return path
    path = os.fspath(path)
    if not is_url(path):
        return Path(os.path.abspath(path.removeprefix("file://")))
    from upath import UPath

    remember(path)
    scheme = path.split("://", 1)[0]
    if scheme.lower() in _NO_URL_CREDENTIALS and redact(path) != path:
        raise StorageError(f"{redact(path)!r}: credentials written into a {scheme}:// URL are not read from it "
                           f"(and daskem never prints them); {CREDENTIALS_HINT}")
    try:
        url = UPath(path)
        url.fs  # noqa: B018 - imports the implementation now, not halfway through a command
    except ImportError as error:
        extra = _EXTRAS.get(scheme)
        hint = f"pip install 'daskem[{extra}]'" if extra else f"install the fsspec implementation of {scheme}://"
        raise StorageError(f"{path!r}: {scheme}:// URLs need a package that is not installed ({error}); "
                           f"{hint}") from None
    except ValueError:
        raise StorageError(f"{path!r}: unknown URL scheme {scheme}://; daskem reads and writes local paths "
                           "and fsspec URLs such as s3://, gs://, az:// and memory://") from None
    return url


def key(path: Any) -> PurePosixPath:
    """A comparable key of a location: the real path of a local one, ``/::scheme/bucket/…`` of a URL."""
    if not is_remote(path):
        return PurePosixPath(os.path.realpath(path))
    protocol = path.protocol if isinstance(path.protocol, str) else path.protocol[0]
    return PurePosixPath(f"/::{protocol}") / path.path.strip("/")


def missing_bucket(path: Any) -> str | None:
    """Why the URL ``path`` cannot be reached — its bucket (first path component) does not exist, or the
    store cannot be listed — or None when the bucket is there (or the URL's store has no buckets: HTTP)."""
    protocol = path.protocol if isinstance(path.protocol, str) else path.protocol[0]
    if protocol in ("http", "https"):
        return None
    bucket = path.path.strip("/").split("/", 1)[0]
    if not bucket:
        return f"it names no bucket: give {protocol}://BUCKET/PATH"
    path.fs.invalidate_cache()  # what other processes wrote since this one last listed
    try:
        found = path.fs.exists(bucket)
    except Exception as error:  # noqa: BLE001 - each client raises its own types (botocore's are no OSError)
        if "credential" in type(error).__name__.lower():
            return f"no credentials were found for it ({error}); {CREDENTIALS_HINT}"
        return f"cannot reach it ({type(error).__name__}: {error})"
    if not found:
        return f"the bucket {bucket!r} does not exist (or these credentials cannot see it)"
    return None


def check_bucket(path: Any) -> None:
    """Refuse a URL whose bucket (its first path component) does not exist: daskem creates none.

    Raises
    ------
    StorageError
        The bucket does not exist, or cannot be listed with these credentials.
    """
    missing = missing_bucket(path)
    if missing:
        raise StorageError(f"cannot write {str(path)!r}: {missing}; daskem creates no buckets: create it first")


def escape(folder: Any, name: str) -> str | None:
    """How ``folder / name`` — a name daskem read from a file and is about to follow — would leave
    ``folder``, or None when it stays inside.

    ``name`` must be one plain name (no separator, not ``.`` or ``..``); on a
    local disk, neither the path nor anything under it may be a symbolic link.
    """
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        return f"{name!r} is not a name inside the folder"
    path = folder / name
    if is_remote(path):
        return None
    for root, folders, files in os.walk(path) if os.path.isdir(path) and not os.path.islink(path) else ():
        linked = next((entry for entry in folders + files if os.path.islink(os.path.join(root, entry))), None)
        if linked is not None:
            return f"{os.path.join(root, linked)!r} inside it is a symbolic link"
    if os.path.islink(path):
        return f"{str(path)!r} is a symbolic link (to {os.readlink(path)!r})"
    return None


def commit_order(files: list[str], root: str) -> list[str]:
    """The order to copy an output's ``files`` (paths under ``root``) so that it is whole only at the end.

    Data first, then the ``zarr.json`` of each Zarr node, deepest first, so the
    store's root metadata (which names the arrays, consolidated) lands last.
    """
    depth = {f: len(PurePosixPath(f).relative_to(root).parts) for f in files}
    data = sorted(f for f in files if PurePosixPath(f).name != ZARR_METADATA)
    metadata = sorted((f for f in files if PurePosixPath(f).name == ZARR_METADATA), key=lambda f: (-depth[f], f))
    return data + metadata


def incomplete_kind(path: Any) -> str | None:
    """The kind of output an interrupted copy to the URL ``path`` was writing, or None if there was none."""
    try:
        return json.loads((path / INCOMPLETE_MARKER).read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return None


def publish_remote(source: Any, target: Any, kind: str) -> None:
    """Copy the output of ``kind`` at ``source`` to ``target`` on the same store, commit objects last.

    A single object is copied in one request, which replaces ``target`` whole.
    A folder is first marked incomplete (:data:`INCOMPLETE_MARKER`, naming
    ``kind``); an existing ``target`` (already checked to be an output of the
    same kind) is then removed, commit objects first, and the new one copied,
    commit objects last; the mark goes at the end.  A crash at any point
    leaves a whole output or a marked, incomplete one, never a mix.
    ``source`` is left for the caller to remove.
    """
    fs = source.fs
    fs.invalidate_cache()  # listings cached before the writers wrote would hide what they wrote
    if not fs.isdir(source.path):
        fs.copy(source.path, target.path)
        return
    marker = target / INCOMPLETE_MARKER
    marker.write_text(json.dumps({"kind": kind}) + "\n")
    remove_remote(target, keep=INCOMPLETE_MARKER)
    root, destination = source.path.rstrip("/"), target.path.rstrip("/")
    files = commit_order(fs.find(root), root)
    data = [f for f in files if PurePosixPath(f).name != ZARR_METADATA]
    if data:
        fs.copy(data, [destination + f[len(root):] for f in data])
    for file in files[len(data):]:
        fs.copy(file, destination + file[len(root):])
    fs.rm(marker.path)


def remove_remote(path: Any, keep: str | None = None) -> None:
    """Delete what daskem wrote at a URL, commit objects first, so a partial delete leaves no whole output.

    ``keep``: the name of one object directly under ``path`` to leave.
    """
    fs = path.fs
    fs.invalidate_cache()
    if not fs.exists(path.path):
        return
    if not fs.isdir(path.path):
        fs.rm(path.path)
        return
    root = path.path.rstrip("/")
    files = commit_order(fs.find(root), root)
    metadata = [f for f in files if PurePosixPath(f).name == ZARR_METADATA][::-1]  # the root's first
    rest = [f for f in files if PurePosixPath(f).name != ZARR_METADATA and f != f"{root}/{keep}"]
    for batch in (metadata, rest):
        if batch:
            fs.rm(batch)
    if keep is None and fs.exists(root):  # a file system with folders keeps the empty ones
        fs.rm(root, recursive=True)
