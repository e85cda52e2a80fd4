"""Files written whole. Everything a run or a sweep writes for later reading (checkpoints,
metrics.json, config.yaml, reports, sweep.log lines) goes to a temporary name in its own folder
and is renamed over the real name once complete (os.replace: atomic on POSIX), so a crash, Ctrl-C
or a full disk leaves the old file or the new one, never a truncated one under the real name.
A full disk is a DiskFull error: one line naming the file and what to do."""

import errno
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from litlab.errors import UserError


class DiskFull(UserError):
    """No space left on the device a run writes to; the message names the file."""


def disk_full(error: BaseException, path: str | Path | None = None) -> DiskFull:
    where = path if path is not None else (getattr(error, "filename", None) or "a file")
    return DiskFull(f"no space left on device writing {where}; free space or set paths.log_dir=... to a disk with room")


def is_disk_full(error: BaseException | None) -> bool:
    """ENOSPC or EDQUOT (a quota is a full disk to the user too), raised or behind what was: torch.save
    reports a full disk as a RuntimeError raised while handling the OSError."""
    seen = set()
    while error is not None and id(error) not in seen:  # a chain can loop back on itself
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def check_in_a_folder(path: Path, key: str) -> None:
    """The nearest existing one of `path`'s parents is a folder (the rest can be made): else a
    UserError naming the setting `key` and the file in the way."""
    above = next((p for p in path.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise UserError(f"{key}={str(path)!r}: {str(above)!r} is a file, not a folder; give a path in a folder")


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def written_whole(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write the file to: renamed to `path` when the block
    ends, removed if it raises. A full disk becomes DiskFull naming `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp's 0600 would make the real file private
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as f:  # on the disk before the rename makes it the real file
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException as e:
        temporary.unlink(missing_ok=True)
        if is_disk_full(e):
            raise disk_full(e, path) from e
        raise


def write_text(path: str | Path, text: str) -> None:
    with written_whole(path) as temporary:
        temporary.write_text(text)


def write_json(path: str | Path, value: Any) -> None:
    write_text(path, json.dumps(value, indent=2))


def write_with(path: str | Path, write: Callable[[Path], object]) -> None:
    """`write(temporary_path)` (e.g. a DataFrame's to_csv, a figure's savefig), then renamed to `path`."""
    with written_whole(path) as temporary:
        write(temporary)


@contextmanager
def folder_locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on `folder` itself while the block runs, for processes that each read what
    several write and then write a file there (an Optuna search's workers and best.yaml): the last
    one to take it reads what every other one had written."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # and with it the lock


def append_line(path: str | Path, line: str) -> None:
    """`line` added to the text file `path` whole or not at all: under an exclusive lock (parallel
    jobs append to one sweep.log), and cut back to its old end if the disk fills mid-line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (line.replace("\n", " ") + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        end = os.lseek(fd, 0, os.SEEK_END)
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
        except OSError as e:
            os.ftruncate(fd, end)
            if is_disk_full(e):
                raise disk_full(e, path) from e
            raise
    finally:
        os.close(fd)  # and with it the lock
