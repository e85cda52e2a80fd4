"""One sweep at a time in a sweep dir: the same grid command started twice at once would run the
same jobs twice, into the same job dirs, each taking the other's for its own to resume. A grid
sweep holds an exclusive lock on `<sweep dir>/.sweep.lock` while it runs; the workers of one
Optuna study share the dir (their job dirs are named by trial number, which the study hands out
once) and hold a shared lock, so a grid sweep and a search never mix either. The file names the
process (`pid@host`) that took it last. The kernel releases a lock when its process ends, however
it ends; the last holder removes the file, so a file found with no holder was left by a killed
sweep: it is taken over, and the log says so."""

import fcntl
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from litlab.errors import UserError

log = logging.getLogger(__name__)

LOCK = ".sweep.lock"
SHARED_WAIT_S = 10.0  # how long a worker waits for another one's moment of exclusive hold


@contextmanager
def sweep_lock(sweep_dir: Path, shared: bool = False) -> Iterator[None]:
    """Hold `sweep_dir`'s lock while the block runs (`shared`: beside other holders of a shared
    lock); a UserError if a sweep that excludes this one holds it."""
    path = sweep_dir / LOCK
    fd = locked(path, shared)
    try:
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the last holder: nobody needs the file
            path.unlink(missing_ok=True)  # before the lock goes: a sweep that opens it later makes a new one
        except BlockingIOError:
            pass  # other workers of the search hold it still
        finally:
            os.close(fd)


def locked(path: Path, shared: bool) -> int:
    """An open descriptor of `path` holding its lock, exclusive or (`shared`) shared, the file
    naming this process. Taken again if the file was removed (by the sweep that held it, as it
    ended) between opening and locking: that lock guards nothing."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        alone = take(fd, fcntl.LOCK_EX)
        if not alone and not (shared and take_within(fd, fcntl.LOCK_SH, SHARED_WAIT_S)):
            refuse(path, fd)
        if not same_file(path, fd):
            os.close(fd)
            continue
        if alone:
            left_by = owner(fd)
            if left_by:
                log.warning("%s was left by process %s, which ended without releasing it: taking it over", path,
                            left_by)  # fmt: skip
            if shared and not take(fd, fcntl.LOCK_SH):  # let the search's other workers in
                refuse(path, fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}@{socket.gethostname()}\n".encode(), 0)
        return fd


def take(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def take_within(fd: int, kind: int, seconds: float) -> bool:
    """`take`, tried again for up to `seconds`: a worker of the search that starts at the same moment
    holds the lock exclusively for as long as it checks the file, or as it removes it on ending."""
    deadline = time.monotonic() + seconds
    while not take(fd, kind):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def owner(fd: int) -> str:
    return os.pread(fd, 300, 0).decode(errors="replace").strip()


def refuse(path: Path, fd: int) -> NoReturn:
    holder = owner(fd) or "?"
    os.close(fd)
    raise UserError(
        f"hydra.sweep.dir={str(path.parent)!r} is in use by another sweep (process {holder}); wait for it to end "
        "(then the same command finishes what is left), or give a new hydra.sweep.dir"
    )


def same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
