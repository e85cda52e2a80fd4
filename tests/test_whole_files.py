"""Files a run writes for later are written whole: a write that fails part-way leaves the real
name as it was (absent, or holding its previous complete content) and no temporary beside it; one
that succeeds leaves the full content. The fault is real and needs no mount or root: the process's
file size limit (RLIMIT_FSIZE) makes the kernel refuse the write past a given size, part-way
through, as a full disk does."""

import contextlib
import errno
import json
import resource
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from litlab.checkpoints.io import WholeCheckpointIO
from litlab.errors import UserError
from litlab.files import (
    DiskFull,
    append_line,
    check_in_a_folder,
    current_umask,
    disk_full,
    is_disk_full,
    write_json,
    write_text,
    write_with,
)

LIMIT = 64 * 1024  # bytes a file may grow to while the limit is on
BIG = 256 * 1024  # a payload that does not fit under it
SMALL = 1024  # one that does


@contextlib.contextmanager
def file_size_limit(size: int) -> Iterator[None]:
    """Writes past `size` bytes into any file fail with EFBIG (SIGXFSZ ignored, else it would kill
    the process); lowering the soft limit and raising it back needs no privilege."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def checkpoint(size: int) -> dict:
    return {"epoch": 3, "weights": torch.arange(size // 4, dtype=torch.float32)}


def save_checkpoint(path: Path, size: int) -> None:
    WholeCheckpointIO().save_checkpoint(checkpoint(size), path)


def load_checkpoint(path: Path) -> dict:
    return WholeCheckpointIO().load_checkpoint(path)


# Each writer: (write `size` bytes or so to path, read the file back, what that write should read back as).
WRITERS: dict[str, tuple[Callable[[Path, int], None], Callable[[Path], object], Callable[[int], object]]] = {
    "write_text": (lambda p, n: write_text(p, "t" * n), Path.read_text, lambda n: "t" * n),
    "write_json": (lambda p, n: write_json(p, {"values": "j" * n}), lambda p: json.loads(p.read_text()),
                   lambda n: {"values": "j" * n}),
    "write_with": (lambda p, n: write_with(p, lambda tmp: tmp.write_bytes(b"w" * n)), Path.read_bytes,
                   lambda n: b"w" * n),
    "checkpoint": (save_checkpoint, load_checkpoint, checkpoint),
}  # fmt: skip


def same(got: object, expected: object) -> bool:
    if isinstance(expected, dict) and "weights" in expected:
        return (
            isinstance(got, dict)
            and got["epoch"] == expected["epoch"]
            and torch.equal(got["weights"], expected["weights"])
        )
    return got == expected


def refused_past_the_limit(error: BaseException | None) -> bool:
    """The write failed on the size limit (torch.save raises a RuntimeError while handling it), not on
    something else that would leave the files as they were for another reason."""
    while error is not None:
        if isinstance(error, OSError) and error.errno == errno.EFBIG:
            return True
        error = error.__cause__ or error.__context__
    return False


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_write_that_fails_part_way_leaves_no_file_where_there_was_none(tmp_path, writer):
    write, _, _ = WRITERS[writer]
    path = tmp_path / "out"
    with file_size_limit(LIMIT), pytest.raises((OSError, RuntimeError)) as failed:
        write(path, BIG)
    assert refused_past_the_limit(failed.value)
    assert files_in(tmp_path) == []  # neither the real name nor a temporary


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_write_that_fails_part_way_keeps_the_previous_content(tmp_path, writer):
    write, read, expected = WRITERS[writer]
    path = tmp_path / "out"
    write(path, SMALL)
    previous = path.read_bytes()
    with file_size_limit(LIMIT), pytest.raises((OSError, RuntimeError)) as failed:
        write(path, BIG)
    assert refused_past_the_limit(failed.value)
    assert path.read_bytes() == previous  # not a truncated new file under the real name
    assert same(read(path), expected(SMALL))
    assert files_in(tmp_path) == ["out"]  # no temporary left behind


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_write_that_succeeds_leaves_the_full_content_and_only_it(tmp_path, writer):
    write, read, expected = WRITERS[writer]
    path = tmp_path / "out"
    write(path, SMALL)
    write(path, BIG)  # over a previous file, as a run's last.ckpt or metrics.json is
    assert same(read(path), expected(BIG))
    assert files_in(tmp_path) == ["out"]


def test_a_payload_that_fails_with_a_full_disk_is_disk_full_naming_the_file_and_writes_nothing(tmp_path):
    path = tmp_path / "report.csv"
    write_with(path, lambda tmp: tmp.write_text("job,status\n0,completed\n"))

    def half_then_full(tmp: Path) -> None:
        tmp.write_text("job,status\n0,comp")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFull, match=f"writing {path}"):
        write_with(path, half_then_full)
    assert path.read_text() == "job,status\n0,completed\n"
    assert files_in(tmp_path) == ["report.csv"]


def test_a_full_disk_met_outside_litlab_s_writers_names_the_file_the_error_names():
    """A full disk in a library's own write (Lightning's checkpoint, TensorBoard's events) reaches the
    run's one line through `disk_full(error)`: the file comes from the OSError, or is 'a file'."""
    named = OSError(errno.ENOSPC, "No space left on device", "/runs/x/checkpoints/last.ckpt")
    assert "writing /runs/x/checkpoints/last.ckpt;" in str(disk_full(named))
    assert "writing a file;" in str(disk_full(OSError(errno.ENOSPC, "No space left on device")))
    wrapped = RuntimeError("PytorchStreamWriter failed writing file")  # torch.save's: no filename of its own
    wrapped.__context__ = named  # raised while handling the OSError
    assert "writing a file;" in str(disk_full(wrapped))
    assert "writing /runs/x/config.yaml;" in str(disk_full(named, "/runs/x/config.yaml"))  # the writer's own name


def test_a_full_disk_is_found_behind_what_was_raised_and_a_looping_chain_ends():
    full = OSError(errno.ENOSPC, "No space left on device")
    assert is_disk_full(full) and is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied")) and not is_disk_full(None)
    cause_only = RuntimeError("could not save")
    cause_only.__cause__ = full  # `raise ... from` outside an except block: no __context__
    context_only = RuntimeError("PytorchStreamWriter failed")
    context_only.__context__ = full  # raised while handling it, as torch.save does
    assert is_disk_full(cause_only) and is_disk_full(context_only)
    first, second = ValueError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first  # a chain that loops back on itself
    assert not is_disk_full(first)


def test_a_line_appended_is_whole_or_not_there_and_stays_one_line(tmp_path):
    """sweep.log's lines: the folders are made, a line holding a newline stays one line, and a line
    that fails part-way is cut back off, leaving the lines before it exactly as they were."""
    path = tmp_path / "sweep" / "logs" / "sweep.log"
    append_line(path, "job 0 completed")
    append_line(path, "job 1 failed:\nTraceback")
    before = path.read_bytes()
    assert before == b"job 0 completed\njob 1 failed: Traceback\n"
    assert path.stat().st_mode & 0o777 == 0o644 & ~current_umask()
    with file_size_limit(len(before) + 10), pytest.raises(OSError) as failed:
        append_line(path, "job 2 completed " + "x" * 1000)
    assert refused_past_the_limit(failed.value)
    assert path.read_bytes() == before
    append_line(path, "job 3 completed")  # the next line starts where the cut one did
    assert path.read_text().splitlines() == ["job 0 completed", "job 1 failed: Traceback", "job 3 completed"]


def test_a_file_where_a_folder_of_the_path_should_be_is_named_with_the_setting(tmp_path):
    (tmp_path / "taken").write_text("x")
    check_in_a_folder(tmp_path / "new" / "deeper" / "out.csv", "output")  # folders that can be made
    out, taken = tmp_path / "taken" / "sub" / "out.csv", tmp_path / "taken"
    with pytest.raises(UserError) as refused:
        check_in_a_folder(out, "output")
    assert str(refused.value) == f"output={str(out)!r}: {str(taken)!r} is a file, not a folder; give a path in a folder"
