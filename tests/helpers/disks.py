"""Real small disks for the tests of full and read-only disks: a tmpfs mounted in the test's own
dir, filled to its last byte or remounted read-only, and unmounted afterwards. Mounting needs the
permission to (root, or a user namespace); where it is missing, the tests that need it skip."""

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def mount(disk: Path, size: str = "1m") -> bool:
    """Mount a tmpfs of `size` at `disk` (made here); False where mounting is not permitted."""
    disk.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
                          capture_output=True).returncode == 0  # fmt: skip


def unmount(disk: Path) -> None:
    subprocess.run(["umount", "-l", str(disk)], check=False)


@contextlib.contextmanager
def tmpfs(disk: Path, size: str = "3m") -> Iterator[Path]:
    """A small tmpfs mounted at `disk` while the block runs; skips the test where mounting is not permitted."""
    if not mount(disk, size):
        pytest.skip("mounting a small tmpfs is not permitted here")
    try:
        yield disk
    finally:
        unmount(disk)


def read_only(disk: Path) -> None:
    """Remount the tmpfs at `disk` read-only: a read-only disk even to root, whom file modes do not stop."""
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True, capture_output=True)


def fill(disk: Path, leave: int) -> None:
    """Fill `disk` to its last byte, then free `leave` bytes of it again."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):  # no space left: full
        while True:
            f.write(b"\0" * 4096)
    os.truncate(filler, max(0, filler.stat().st_size - leave))
