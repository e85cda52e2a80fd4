"""One CSV file read by pandas' C parser in several threads, each on its own range of lines: on a
large table the same frame as one `pd.read_csv`, in about the time of its largest part (the parser
lets go of the GIL while it tokenizes and converts). Where the parts might not add up to that frame
(a quote, which may hold a line break; parts whose columns came out of different kinds; anything
the parser refused), the file is read again in one piece, whose frame or error is then the answer."""

import codecs
import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from typing_extensions import override

from litlab.machine import cpu_cores

PART_BYTES = 32 << 20  # the least one thread is given: on less, starting it costs more than it saves
QUOTE = b'"'
# Encodings in which every byte 0x0A is a line break and no other byte is one: a line starts after it.
LINE_SAFE = frozenset({"utf-8", "utf-8-sig", "ascii", "iso8859-1", "iso8859-15", "cp1252"})
# Columns one part reads as integers and another as floats (a missing value, a decimal point) are
# floats in the whole file too: pd.concat gives them the same float64.
NUMBERS = frozenset({np.dtype("int64"), np.dtype("float64")})


class Stop(Exception):
    """A part stopped reading: it saw a quote character (a quoted field may hold a line break, so a
    line need not be a row), or the read as a whole was given up (another part stopped, Ctrl-C)."""


class LineRange(io.RawIOBase):
    """Bytes [start, end) of the file at `path`, read as a file of their own; raises Stop at a quote,
    or at the next read once `stop` is set."""

    def __init__(self, path: str, start: int, end: int, stop: threading.Event) -> None:
        super().__init__()
        # Closed with this object, which the BufferedReader around it closes.
        self.file = open(path, "rb")  # noqa: SIM115
        self.file.seek(start)
        self.left, self.stop = end - start, stop

    @override
    def readable(self) -> bool:
        return True

    @override
    def readinto(self, buffer: Any) -> int:
        data = self.file.read(min(len(buffer), self.left))  # bytes: searched at memchr's speed
        if QUOTE in data or self.stop.is_set():
            raise Stop
        buffer[: len(data)] = data
        self.left -= len(data)
        return len(data)

    @override
    def close(self) -> None:
        self.file.close()
        super().close()


def line_starts(path: str, encoding: str, part_bytes: int = PART_BYTES) -> list[int]:
    """Where each part of the file begins, at the start of a line, one part per core and per
    `part_bytes`: [0] alone where the file is small, there is one core, or the encoding may hide a
    line break inside a character (UTF-16)."""
    size = os.path.getsize(path)
    parts = min(cpu_cores(), size // part_bytes)
    if parts < 2 or codecs.lookup(encoding).name not in LINE_SAFE:
        return [0]
    starts = [0]
    with open(path, "rb") as f:
        for k in range(1, parts):
            f.seek(size * k // parts)
            f.readline()  # to the end of the line the cut fell in
            if f.tell() > starts[-1] and f.tell() < size:
                starts.append(f.tell())
    return starts


def read_csv(path: str, part_bytes: int = PART_BYTES, **options: Any) -> pd.DataFrame:
    """`pd.read_csv(path, **options)`, read in parts where the file is large enough to gain from it."""
    starts = line_starts(path, options.get("encoding", "utf-8"), part_bytes)
    if len(starts) > 1:
        frame = read_parts(path, starts, options)
        if frame is not None:
            return frame
    return pd.read_csv(path, **options)


def read_parts(path: str, starts: list[int], options: dict[str, Any]) -> pd.DataFrame | None:
    """The file's frame from its parts read at once, or None where they may not add up to it."""
    ends, stop = [*starts[1:], os.path.getsize(path)], threading.Event()
    try:
        names = pd.read_csv(path, nrows=0, **options).columns  # a repeated name already renamed ('y.1')

        def part(k: int) -> pd.DataFrame:
            given = {} if k == 0 else {"header": None, "names": list(names)}
            try:
                with io.BufferedReader(LineRange(path, starts[k], ends[k], stop), 1 << 20) as lines:
                    return pd.read_csv(lines, **given, **options)
            except BaseException:  # the frame will not come from the parts: the others stop reading
                stop.set()
                raise

        pool = ThreadPoolExecutor(max_workers=len(starts))
        try:
            frames = list(pool.map(part, range(len(starts))))
        except BaseException:  # Ctrl-C too: each part stops at its next read, not at its end
            stop.set()
            raise
        finally:
            pool.shutdown()
    except (Stop, ValueError, OSError):  # the whole file's read gives the frame, or names the error
        return None
    if not all(joinable(frames[0], frame) for frame in frames):
        return None
    return pd.concat(frames, ignore_index=True)


def joinable(first: pd.DataFrame, other: pd.DataFrame) -> bool:
    """Whether two parts' columns are of one kind each, as the whole file's read would make them."""
    if not (first.columns.equals(other.columns) and isinstance(other.index, pd.RangeIndex)):
        return False  # a row longer than the header made its first value the index
    return all(a == b or {a, b} <= NUMBERS for a, b in zip(first.dtypes, other.dtypes, strict=True))
