"""One sweep at a time in a sweep dir: the same `-m` command started twice at once would run the
same jobs twice, into the same job dirs, each taking the other's for its own to resume. The
sweeper holds an exclusive lock on `<sweep dir>/.sweep.lock` while it runs, and removes the file
when it ends; the kernel releases the lock when the sweep's process ends, however it ends, so a
killed sweep's file locks nothing."""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from litlab.errors import UserError

LOCK = ".sweep.lock"  # holds the process id of the sweep that has it


@contextmanager
def sweep_lock(sweep_dir: Path) -> Iterator[None]:
    """Hold `sweep_dir`'s lock while the block runs; a UserError if another sweep holds it."""
    path = sweep_dir / LOCK
    fd = locked(path)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)  # before the lock goes: a sweep that opens it later makes a new one
        os.close(fd)


def locked(path: Path) -> int:
    """An open descriptor of `path` holding its exclusive lock. Taken again if the file was removed
    (by the sweep that held it, as it ended) between opening and locking: that lock guards nothing."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UserError(
                f"hydra.sweep.dir={str(path.parent)!r} is in use by another sweep (process {owner}); wait for it "
                "to end (then the same command finishes what is left), or give a new hydra.sweep.dir"
            ) from None
        if same_file(path, fd):
            return fd
        os.close(fd)


def same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
