"""Writing output files: checked up front, written atomically, never left half-written.

The guarantees (docs/guarantees.md):

- a regular file is replaced atomically: the new text goes to a temporary file beside it, which
  is renamed over it only once completely written, with the old file's mode (a new file gets
  the mode `open()` would give it);
- a symlink is followed and its target replaced that way; the link itself stays;
- a character device or a FIFO (`/dev/null`, `/dev/stdout`, a named pipe) is written through,
  never replaced; any other special file (a block device, a socket) is refused;
- an output that is one of the command's inputs is refused before anything is read;
- every failure (no such folder, no permission, a full disk, a folder like /proc that cannot
  hold a temporary file) is an :class:`~etprof.errors.OutputError`, and an interrupted write
  (Ctrl-C, SIGTERM) leaves the previous file as it was and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from etprof.errors import OutputError

_FIX = "choose another output path"


@dataclass(frozen=True)
class Target:
    """Where an output really goes: `path` after following symlinks; `through` for a device or
    FIFO, written in place; `mode`, the mode of the file it replaces (None: a new file)."""

    path: Path
    through: bool = False
    mode: int | None = None


def check_writable(path: Path, inputs: Iterable[Path | None] = ()) -> Target:
    """Fail early, before any work, when `path` cannot be written or is one of `inputs`."""
    target = Path(os.path.realpath(path))
    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None  # a new file, or a dangling symlink: its target is created
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputError(f"cannot write {path}: it is a symlink loop", _FIX) from None
        raise OutputError(f"cannot write {path}: {exc.strerror}", _FIX) from None
    _check_not_input(path, target, st, inputs)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"output {path} is a directory", "give a file name")
    if st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        if not os.access(path, os.W_OK):
            raise OutputError(f"cannot write {path}: permission denied", _FIX)
        # written by the name given: /dev/stdout into a pipe resolves to "pipe:[...]", a name
        # no open() can find, while the name itself still opens the pipe
        return Target(Path(path), through=True)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputError(
            f"output {path} is a special file (not a regular file, a character device or a FIFO)",
            _FIX,
        )
    parent = target.parent
    if not parent.is_dir():
        raise OutputError(
            f"cannot write {path}: folder {parent} does not exist",
            "create it or choose another output path",
        )
    if st is not None and not os.access(target, os.W_OK):
        raise OutputError(f"cannot write {path}: permission denied", _FIX)
    _probe(parent, path)
    return Target(target, mode=None if st is None else stat.S_IMODE(st.st_mode))


def _check_not_input(
    path: Path, target: Path, st: os.stat_result | None, inputs: Iterable[Path | None]
) -> None:
    for given in inputs:
        if given is None:
            continue
        same = Path(os.path.realpath(given)) == target
        if not same and st is not None:
            with contextlib.suppress(OSError):
                same = os.path.samefile(path, given)
        if same:
            raise OutputError(
                f"output {path} is also an input ({given}): writing it would destroy it",
                "choose another output path",
            )


def _probe(parent: Path, path: Path) -> None:
    """Create and remove a temporary file in `parent`: the one sure test that it can hold the
    output's (`os.access` says yes for /proc as root, where creating a file fails)."""
    try:
        with _signals_deferred():
            fd, probe = tempfile.mkstemp(prefix=".etprof-probe.", dir=parent)
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise OutputError(
            f"cannot write {path}: cannot create a file in {parent} ({exc.strerror})", _FIX
        ) from None


@contextlib.contextmanager
def atomic_path(path: Path, inputs: Iterable[Path | None] = ()) -> Iterator[Path]:
    """Yield a path to write the output of `path` to: a temporary file beside its target that
    replaces the target only if the block succeeds (the device itself for a device or FIFO).

    An OSError inside the block (a full disk) becomes an OutputError naming `path`.
    """
    target = check_writable(path, inputs)
    if target.through:
        try:
            yield target.path
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}", _FIX) from None
        return
    tmp: str | None = None
    try:
        # a signal between creating the file and knowing its name would leave it behind
        with _signals_deferred():
            fd, tmp = tempfile.mkstemp(
                prefix=f".{target.path.name}.", suffix=".part", dir=target.path.parent
            )
        try:
            os.fchmod(fd, _default_mode() if target.mode is None else target.mode)
        finally:
            os.close(fd)
        yield Path(tmp)
        _sync(tmp)
        os.replace(tmp, target.path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}", _FIX) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _default_mode() -> int:
    """What a plain open() would give a new file: 0666 minus the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _sync(tmp: str) -> None:
    """Flush the new file to disk before it replaces the old one: after a crash the path holds
    the old file or the new one, never an empty one."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done (they are delivered right after)."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, OSError):  # not on every platform
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def write_text(path: Path, text: str, inputs: Iterable[Path | None] = ()) -> None:
    with atomic_path(path, inputs) as tmp:
        tmp.write_text(text, encoding="utf-8")
