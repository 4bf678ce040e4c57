"""Where daskem may write — outputs that can never destroy their inputs.

Every file or folder daskem writes goes through :func:`reserved` (and
:func:`atomic_path`, which uses it), which enforces four rules before any
heavy work:

1. **Inputs are untouchable.**  An output is never an input, a folder that
   holds an input, or a path inside an input (compared after resolving
   symbolic links); no two outputs of one command overlap.
2. **Only daskem's own outputs are replaced**, and only when asked
   (``overwrite``): a model by a model, scores by scores, a picture by a
   picture.  An existing path of another kind — the user's data, a folder of
   notes — is refused even with ``overwrite``.  A checkpoint goes only into a
   new folder, an empty one, or a daskem checkpoint folder.
3. **One writer per output.**  A lock file beside the output
   (``.NAME.lock``, held with ``flock``, released by the kernel if the process
   dies) is taken before the work and held until the output is published; a
   second writer fails at once.
4. **All or nothing.**  An output is written under a temporary name beside its
   target (``.NAME.tmp-…``) and renamed into place; an existing folder is
   moved aside (``.NAME.old-…``) for the rename and then deleted.  Whatever an
   interrupted write left is cleaned up by the next writer of the same path —
   a previous version that was moved aside but never replaced is restored —
   and said in a warning.

No folder is created above an output unless the caller asks (a job's
``runs/{date}/``); those are removed again if the command fails before
writing anything into them.

Outputs may be fsspec URLs (see :mod:`daskem.io.storage`): rule 1 compares URLs
as paths on their store; rule 3 does not hold there (object stores have no
locks); rule 4 becomes a copy into place with the commit object last, the
target marked incomplete until then.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from daskem.exceptions import DaskemError, OutputExistsError
from daskem.io.atomic import publish, remove_path
from daskem.io.existing import (
    KINDS,
    describe,
    is_checkpoint_folder,
    leftover_paths,
    lock_owner,
    lock_path,
    output_kind,
)
from daskem.io.storage import (
    check_bucket,
    incomplete_kind,
    is_remote,
    key,
    location,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

logger = logging.getLogger("daskem")



class OutputError(DaskemError, ValueError):
    """An output path would destroy data, or cannot be written."""


class OutputWriteError(DaskemError, OSError):
    """Writing an output failed part-way (disk full, permissions); nothing was left behind."""


class OutputBusyError(DaskemError, BlockingIOError):
    """Another daskem process (or thread) is writing the same output."""


@dataclass(frozen=True)
class Output:
    """A path a command will write, what it will be, and how the user named it.

    ``label`` appears in messages: ``"--out"``, ``"outputs.model"``, ``"checkpoint"``.
    """

    path: Any  # a pathlib.Path, or a upath.UPath for a URL (see daskem.io.storage)
    kind: str
    label: str = "output"

    @classmethod
    def of(cls, path: str | os.PathLike | None, kind: str, label: str = "output") -> Output | None:
        """An Output for ``path`` (made absolute, or a URL), or None when no path is given.

        Raises
        ------
        StorageError
            A URL with an unknown scheme, or one whose package is missing.
        """
        if path is None:
            return None
        if kind not in KINDS:
            raise ValueError(f"unknown output kind {kind!r}")
        return cls(location(path), kind, label)

    def __str__(self) -> str:
        return f"{self.label} {str(self.path)!r}"


# ------------------------------------------------------------------- checks


def _exists(path: Any) -> bool:
    """Whether anything (a broken link included) is at ``path``."""
    return path.exists() if is_remote(path) else os.path.lexists(path)


def _overlap(a: PurePosixPath, b: PurePosixPath) -> str | None:
    """How path ``a`` stands to path ``b``: "is", "holds", "is inside", or None."""
    if a == b:
        return "is"
    if b.is_relative_to(a):
        return "holds"
    if a.is_relative_to(b):
        return "is inside"
    return None


def check_outputs(
    outputs: Iterable[Output | None],
    inputs: Iterable[str | os.PathLike | None] = (),
    *,
    overwrite: bool = False,
    replaceable: Iterable[str | os.PathLike] = (),
    make_parents: bool = False,
) -> None:
    """Refuse, before any work, outputs that would destroy data or cannot be written.

    Parameters
    ----------
    outputs : what will be written (None entries are skipped).
    inputs : paths and URLs the command reads (None entries are skipped).
    overwrite : whether existing outputs of the same kind may be replaced.
    replaceable : paths that may be replaced without ``overwrite`` (a job's
        own outputs from an interrupted run); still only by the same kind.
    make_parents : whether missing folders above a local output may be
        created (a job's ``runs/{date}/``); otherwise they are an error.

    Raises
    ------
    OutputError
        An output overlaps an input or another output, exists as something
        else, or its folder cannot be written.
    OutputExistsError
        An output exists and may not be replaced.
    """
    outputs = [o for o in outputs if o is not None]
    replaceable_paths = {key(location(p)) for p in replaceable}
    read = [(str(p), key(location(p))) for p in inputs if p is not None]
    for output in outputs:
        real = key(output.path)
        for name, source in read:
            relation = _overlap(real, source)
            if relation == "is":
                raise OutputError(f"{output} is the input {name!r}: daskem never replaces its inputs; "
                                  "write to another path")
            if relation == "holds":
                raise OutputError(f"{output} holds the input {name!r}: writing there could destroy the input; "
                                  "write to another path")
            if relation == "is inside":
                raise OutputError(f"{output} is inside the input {name!r}: daskem never writes into its inputs; "
                                  "write to a path outside it")
    for i, first in enumerate(outputs):
        for second in outputs[i + 1 :]:
            relation = _overlap(key(first.path), key(second.path))
            if relation is not None:
                raise OutputError(f"{first} {relation} {second}: give each output a path of its own")
    for output in outputs:
        _check_folder(output, make_parents)  # first: on an object store, whether it can be reached at all
        _check_existing(output, overwrite or key(output.path) in replaceable_paths)


def _check_existing(output: Output, overwrite: bool) -> None:
    path = output.path
    if not _exists(path) or (is_remote(path) and incomplete_kind(path) == output.kind):
        return  # an incomplete write of the same output is cleaned up when the output is reserved
    if output.kind == "checkpoint":
        if not is_checkpoint_folder(path):
            raise OutputError(f"{output} is {describe(path)}; checkpoints go only into a new folder, an empty "
                              "one, or a daskem checkpoint folder: choose another path")
        return
    found = output_kind(path)
    if found != output.kind:
        raise OutputError(f"{output} exists and is {describe(path)}, not a daskem {output.kind}; daskem "
                          f"replaces only its own {output.kind} outputs, even with overwrite: choose another path")
    if not overwrite:
        error = OutputExistsError(f"{str(path)!r} exists; pass overwrite=True (--overwrite) to replace it")
        error.output = output
        raise error


def _check_folder(output: Output, make_parents: bool = False) -> None:
    """The folder of the output must exist (or, with ``make_parents``, the nearest one above it) and be
    writable; on an object store, its bucket must exist."""
    if is_remote(output.path):
        check_bucket(output.path)
        return
    parent = output.path.parent
    if not parent.exists() and not make_parents:
        raise OutputError(f"cannot write {output}: the folder {str(parent)!r} does not exist; daskem creates "
                          "no folders above its outputs: create it first, or write elsewhere")
    while not parent.exists():
        if os.path.lexists(parent):  # a broken link
            break
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {output}: {str(parent)!r} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {output}: no permission to write in {str(parent)!r}")


# -------------------------------------------------------------------- locks

_held: dict[Path, int] = {}  # lock file → the thread holding it
_held_guard = threading.Lock()
_warned_no_locks = False


@contextlib.contextmanager
def _locked(output: Output) -> Iterator[str | None]:
    """Hold the lock of ``output``.

    Yields None when this thread holds it already, else what a stale lock
    file said of its gone owner ("HOST PID"; "" when there was none).
    Object stores have no locks: there, a second writer of the same output is not detected.
    """
    if is_remote(output.path):
        yield ""
        return
    lock = lock_path(output.path)
    me = threading.get_ident()
    with _held_guard:
        holder = _held.get(lock)
        if holder is not None and holder != me:
            raise OutputBusyError(f"{output} is being written by another thread of this process")
    if holder == me:
        yield None
        return
    descriptor, stale = _acquire(lock, output)
    with _held_guard:
        _held[lock] = me
    try:
        yield stale
    finally:
        with _held_guard:
            del _held[lock]
        if descriptor is not None:
            with contextlib.suppress(OSError):
                os.unlink(lock)
            os.close(descriptor)


def _acquire(lock: Path, output: Output) -> tuple[int | None, str]:
    """Take the lock file with ``flock``: its descriptor (None where the file system has no locks), and what
    the file said of an earlier owner that died holding it ("HOST PID"; "" when the file was new)."""
    global _warned_no_locks
    if fcntl is None:  # pragma: no cover - not POSIX
        return None
    while True:
        try:
            descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise OutputError(f"cannot write {output}: {error.strerror}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise OutputBusyError(
                f"{output} is being written by another daskem process ({lock_owner(lock)} holds {str(lock)!r}); "
                "wait for it to finish, or write elsewhere"
            ) from None
        except OSError as error:
            os.close(descriptor)
            if error.errno not in (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK):
                raise OutputError(f"cannot lock {str(lock)!r}: {error.strerror}") from None
            if not _warned_no_locks:
                _warned_no_locks = True
                logger.warning("the file system of %s has no file locks: concurrent writers of one output "
                               "cannot be detected there", lock.parent)
            with contextlib.suppress(OSError):
                os.unlink(lock)
            return None, ""
        # The holder we waited for may have unlinked the file: lock the one at the path.
        try:
            if os.stat(lock).st_ino == os.fstat(descriptor).st_ino:
                stale = os.pread(descriptor, 256, 0).decode(errors="replace").strip()
                os.ftruncate(descriptor, 0)
                os.pwrite(descriptor, f"{os.uname().nodename} {os.getpid()}\n".encode(), 0)
                return descriptor, stale
        except FileNotFoundError:
            pass
        os.close(descriptor)


# ------------------------------------------------------------- reservations


@contextlib.contextmanager
def reserved(
    outputs: Sequence[Output | None],
    inputs: Iterable[str | os.PathLike | None] = (),
    *,
    overwrite: bool = False,
    replaceable: Iterable[str | os.PathLike] = (),
    make_parents: bool = False,
) -> Iterator[None]:
    """Check ``outputs`` (see :func:`check_outputs`) and hold their locks for the block.

    With ``make_parents``, missing folders above them are created, and
    removed again at the end if they are still empty.  Leftovers of
    interrupted writes of the same paths are cleaned up once the locks are
    held.  Reservations nest: a thread may reserve a path it already holds.
    """
    outputs = [o for o in outputs if o is not None]
    inputs, replaceable = list(inputs), list(replaceable)
    checks = {"overwrite": overwrite, "replaceable": replaceable, "make_parents": make_parents}
    check_outputs(outputs, inputs, **checks)
    created: list[Path] = []
    with contextlib.ExitStack() as stack:
        stack.callback(_remove_empty, created)
        for output in sorted(outputs, key=lambda o: str(o.path)):  # one order: no deadlock between writers
            if not is_remote(output.path):
                _make_parents(output, created)
            stale = stack.enter_context(_locked(output))
            if stale is not None:
                _cleanleftover_paths(output, stale)
        # Again, now that no other daskem writer can interfere and leftovers are undone.
        check_outputs(outputs, inputs, **checks)
        yield


def _make_parents(output: Output, created: list[Path]) -> None:
    """Create the missing folders above ``output``, outermost first, adding each to ``created``."""
    missing = []
    parent = output.path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            continue  # made meanwhile by someone else: not ours to remove
        except OSError as error:
            raise OutputError(f"cannot write {output}: cannot create {str(folder)!r}: {error.strerror}") from None
        created.append(folder)


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _cleanleftover_paths(output: Output, stale_lock: str = "") -> None:
    """Undo what an interrupted write of ``output`` left (its lock is held), and say so in one line.

    ``stale_lock``: what the lock file said of its gone owner ("HOST PID"), if it was left.
    """
    path = output.path
    done = []
    if stale_lock:
        host, _, pid = stale_lock.partition(" ")
        done.append(f"removed a stale lock of process {pid or '?'} on {host} (gone)")
    if is_remote(path) and incomplete_kind(path) == output.kind:
        remove_path(path)
        done.append(f"removed the incomplete {output.kind} there")
    temporary, aside = leftover_paths(path)
    if aside and not os.path.lexists(path):
        os.rename(aside.pop(), path)
        done.append("restored the previous version an interrupted write had moved aside")
    for leftover in temporary + aside:
        remove_path(leftover)
    if temporary or aside:
        done.append(f"removed {len(temporary + aside)} temporary file(s)")
    if done:
        logger.warning("cleaned up after an interrupted write of %s: %s", path, "; ".join(done))


# ------------------------------------------------------------ atomic writes


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, kind: str, *, overwrite: bool = False, label: str = "output"
) -> Iterator[Any]:
    """A temporary path beside ``path`` that becomes ``path`` if the block succeeds.

    The output is reserved for the block (see :func:`reserved`).  A failed
    block leaves neither a partial output nor a temporary behind, and an
    existing output as it was (on an object store: as it was, or removed,
    if the copy into place fails; see :func:`daskem.io.storage.publish_remote`).
    For a URL the temporary is a ``upath.UPath`` on the same store; pass
    ``str(temporary)`` to writers that take URLs.

    Raises
    ------
    OutputWriteError
        When the disk fills up or permission is denied while writing.
    """
    output = Output.of(path, kind, label)
    with reserved([output], overwrite=overwrite):
        temporary = output.path.with_name(f".{output.path.name}.tmp-{uuid.uuid4().hex[:12]}")
        try:
            yield temporary
            _check_existing(output, overwrite)  # unchanged since the reservation, unless someone else wrote it
            publish(temporary, output.path, kind)
        except DaskemError:
            raise
        except OSError as error:
            raise OutputWriteError(f"cannot write {str(output.path)!r}: {error.strerror or error}") from None
        finally:
            remove_path(temporary)


