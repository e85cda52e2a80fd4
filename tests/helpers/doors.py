"""The hostile-input suite's shared parts: a refusal as one row of a door's table, the broken
forms a user or a client can produce, and the promise every refusal keeps.

Each `tests/test_doors_*.py` module holds a `REFUSALS` list of `Refusal` rows, runs each one and
checks it with `assert_refused` (or `assert_http_refused` for the server). `tests/test_doors_table.py`
gathers every module's rows into the table in docs/faults.md, so that the guide lists exactly
what the suite tries.
"""

import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import pytest

from litlab.errors import USER_ERROR_EXIT


class Form(Enum):
    """A way an input can be broken, as the table in docs/faults.md names it."""

    MISSING = "missing"
    EMPTY = "empty"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    WRONG_TYPE = "wrong type"
    WRONG_SHAPE = "wrong shape"
    OUT_OF_RANGE = "out of range"
    HUGE = "huge"
    HIDDEN = "hidden file"
    LINK = "link"
    DUPLICATE = "duplicate"
    NON_FINITE = "non-finite"
    LOCKED = "locked"
    READ_ONLY = "read-only"
    TWO_PROCESSES = "two processes at once"
    ESCAPES = "escapes its folder"
    FULL_DISK = "full disk"
    TOO_FEW = "too few"
    CRAFTED = "crafted to run code"
    MISMATCHED = "of another run"  # a sound file that belongs to another model, data or record


@dataclass(frozen=True)
class Refusal:
    """One hostile input at one door, and a piece of the one line that must refuse it.

    door: the entry point as typed, e.g. "train.py data=image_folder", "serve.py (HTTP)".
    reads: the argument or file the door reads, e.g. "data.path", "bundle.json", "POST /predict".
    form: how it is broken. says: text the refusal's line must contain (the value it names).
    args: the command-line arguments (or request) the test gives; `{name}` fields are filled
    from the test's fixtures.
    """

    door: str
    reads: str
    form: Form
    says: str
    args: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        return f"{self.door} {self.reads} {self.form.value}".replace(" ", "_")


def assert_refused(code: int, out: str, err: str, says: str) -> None:
    """The promise: one `Error:` line on stderr naming the value, exit code 2, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == USER_ERROR_EXIT, (code, out[-2000:], err[-4000:])
    assert len(lines) == 1 and lines[0].startswith("Error: "), err[-4000:]
    assert says in lines[0], lines[0]
    assert "Traceback" not in out + err


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time: compared before and after
    a refusal, it shows that nothing earlier was lost or rewritten."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def zero_byte_files(folder: Path) -> list[str]:
    """Files left empty under a real name (a write that never finished)."""
    return [str(p) for p in folder.rglob("*") if p.is_file() and os.path.getsize(p) == 0]


def as_params(rows: list[Refusal], group: Callable[[Refusal], Hashable] = lambda row: row.door) -> list:
    """`rows` as pytest parameters: the first row of each group (each door, unless `group` says
    otherwise) runs in the fast suite, the others are marked slow, which keeps the fast suite
    within its budget while every door is still tried there."""
    seen: set[Hashable] = set()
    params = []
    for row in rows:
        params.append(pytest.param(row, id=row.id, marks=[pytest.mark.slow] if group(row) in seen else []))
        seen.add(group(row))
    return params


DISKS = ("ro", "full")  # the `{name}`s of a read-only and a full small disk (tests/helpers/disks.py): "" if unmounted


def assert_refused_on_disks(
    cli: Callable[..., tuple[int, str, str]], row: Refusal, args: list[str], names: dict[str, str], earlier: Path,
    on_disk: list[str],
) -> None:  # fmt: skip
    """`row` run at its door with `args` is refused (assert_refused), nothing under `earlier` changed, and
    the small disks hold only what they held (`on_disk` on the read-only one, the filler on the full one).
    Skips a row that names a disk this machine could not mount."""
    if any("{" + disk + "}" in arg for arg in row.args for disk in DISKS) and "" in (names[d] for d in DISKS):
        pytest.skip("mounting a small tmpfs is not permitted here")
    before = snapshot(earlier)
    code, out, err = cli(row.door.split()[0], *args)
    assert_refused(code, out, err, row.says.format(**names))
    assert snapshot(earlier) == before, "an earlier file was changed, or a new one left behind"
    for disk in filter(None, (names[d] for d in DISKS)):
        assert sorted(p.name for p in Path(disk).iterdir()) in (on_disk, ["filler"])  # nothing written there
