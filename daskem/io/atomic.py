"""Writing in one step: a temporary beside the target, renamed (or, on an object store, copied) into place.

The write guard (:mod:`daskem.io.outputs`) decides whether a path may be
written; these functions do the writing once it may.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from typing import Any

from daskem.io.storage import is_remote, publish_remote, remove_remote


def replace_text(path: Any, text: str) -> None:
    """Replace the small file ``path`` by ``text`` atomically (a rename, or one PUT on an object store)."""
    if is_remote(path):
        path.write_text(text)
        return
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}")
    temporary.write_text(text)
    os.replace(temporary, path)


def publish(source: Any, target: Any, kind: str) -> None:
    """Rename ``source`` onto ``target``; an existing folder is moved aside first, then deleted.

    On an object store, copy it into place instead (see :func:`daskem.io.storage.publish_remote`).
    """
    if is_remote(target):
        publish_remote(source, target, kind)
        return
    if target.is_dir() and not target.is_symlink():
        aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:12]}")
        os.rename(target, aside)
        try:
            os.rename(source, target)
        except BaseException:
            os.rename(aside, target)
            raise
        remove_path(aside)
        return
    if os.path.lexists(target) and source.is_dir():
        target.unlink()
    os.replace(source, target)


def remove_path(path: Any) -> None:
    """Delete a file, link or folder tree that daskem itself made."""
    if is_remote(path):
        remove_remote(path)
    elif path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
