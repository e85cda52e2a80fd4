"""A CSV file read in parts, in threads, is the frame one pd.read_csv gives, or the same error."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from litlab.machine import cpu_cores
from litlab.readers import csv_parts

ROWS = 3000


def table(rows: int = ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows).astype(np.float32),
            "n": rng.integers(0, 100, size=rows),
            "word": rng.choice(["red", "green", "blue"], size=rows),
            "flag": rng.choice([True, False], size=rows),
            "y": rng.integers(0, 2, size=rows),
        }
    )


def written(tmp_path, text: str, name: str = "t.csv", encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def starts(path: str) -> list[int]:
    """Three parts of any file: the cuts each at a line's start, whatever the cores of the machine."""
    size = os.path.getsize(path)
    cuts = []
    with open(path, "rb") as f:
        for k in (1, 2):
            f.seek(size * k // 3)
            f.readline()
            cuts.append(f.tell())
    return [0, *cuts]


def read_both(path: str, **options) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    return csv_parts.read_parts(path, starts(path), options), pd.read_csv(path, **options)


def test_a_plain_table_read_in_parts_is_the_whole_file_s_frame_to_the_bit(tmp_path):
    path = written(tmp_path, table().to_csv(index=False))
    parts, whole = read_both(path)
    assert parts is not None  # read in parts, not once more in one piece
    pd.testing.assert_frame_equal(parts, whole, check_exact=True)
    assert list(parts.dtypes.astype(str)) == ["float64", "int64", "object", "bool", "int64"]


def test_a_header_naming_a_column_twice_gives_each_part_pandas_own_names_for_them(tmp_path):
    path = written(tmp_path, table().to_csv(index=False).replace("x,n,word,flag,y", "x,n,word,flag,x", 1))
    parts, whole = read_both(path)
    assert parts is not None and list(parts.columns) == ["x", "n", "word", "flag", "x.1"]
    pd.testing.assert_frame_equal(parts, whole, check_exact=True)


def test_a_missing_value_in_one_part_only_makes_the_column_float_as_in_the_whole_file(tmp_path):
    text = table().to_csv(index=False).splitlines()
    text[-5] = text[-5].replace(text[-5].split(",")[1], "", 1)  # the last part's n: one empty cell
    path = written(tmp_path, "\n".join(text) + "\n")
    parts, whole = read_both(path)
    assert parts is not None and whole["n"].dtype == np.float64
    pd.testing.assert_frame_equal(parts, whole, check_exact=True)


def test_spreadsheet_separators_and_decimal_commas_and_windows_line_ends(tmp_path):
    frame = table()
    path = written(tmp_path, frame.to_csv(index=False, sep=";", decimal=",", lineterminator="\r\n"))
    parts, whole = read_both(path, sep=";", decimal=",")
    assert parts is not None
    pd.testing.assert_frame_equal(parts, whole, check_exact=True)
    assert np.allclose(parts["x"], frame["x"])


@pytest.mark.parametrize(
    ("why", "change"),
    [
        ("a quoted field holds a line break", lambda lines: lines.insert(2000, '0.5,1,"two\nlines",True,0')),
        ("a word in the last part makes a number column text", lambda lines: lines.insert(2900, "0.5,many,red,True,0")),
        ("a row longer than the header", lambda lines: lines.insert(2500, "0.5,1,red,True,0,9")),
        ("a row shorter than the header", lambda lines: lines.insert(2500, "0.5,1")),
    ],
)
def test_where_the_parts_may_not_add_up_the_whole_file_s_read_is_the_answer(tmp_path, why, change):
    lines = table().to_csv(index=False).splitlines()
    change(lines)
    path = written(tmp_path, "\n".join(lines) + "\n")
    assert csv_parts.read_parts(path, starts(path), {}) is None, why
    try:
        whole = pd.read_csv(path)
    except pd.errors.ParserError as e:
        with pytest.raises(pd.errors.ParserError) as parts:
            csv_parts.read_csv(path, part_bytes=1024)
        assert str(parts.value) == str(e)  # the same error, its line counted in the whole file
        return
    pd.testing.assert_frame_equal(csv_parts.read_csv(path, part_bytes=1024), whole, check_exact=True)


def test_an_encoding_error_is_the_whole_file_s_and_utf16_is_read_in_one_piece(tmp_path):
    text = table().to_csv(index=False)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(text.encode() + b"0.5,1,caf\xe9,True,0\n")
    with pytest.raises(UnicodeDecodeError) as whole:
        pd.read_csv(bad)
    with pytest.raises(UnicodeDecodeError) as parts:
        csv_parts.read_csv(str(bad), part_bytes=1024)
    assert parts.value.start == whole.value.start  # the byte of the whole file, not of a part
    wide = written(tmp_path, text, "wide.csv", encoding="utf-16")
    assert csv_parts.line_starts(wide, "utf-16", part_bytes=1024) == [0]
    whole = pd.read_csv(wide, encoding="utf-16")
    pd.testing.assert_frame_equal(csv_parts.read_csv(wide, part_bytes=1024, encoding="utf-16"), whole)


def test_a_file_is_cut_at_line_starts_one_part_per_core(tmp_path):
    path = written(tmp_path, table().to_csv(index=False))
    cuts = csv_parts.line_starts(path, "utf-8", part_bytes=1024)
    assert len(cuts) == min(cpu_cores(), os.path.getsize(path) // 1024)
    data = Path(path).read_bytes()
    assert all(data[cut - 1 : cut] == b"\n" for cut in cuts[1:])
    assert csv_parts.line_starts(path, "utf-8") == [0]  # a small file: one piece


def test_a_part_stops_at_its_next_read_once_the_read_is_given_up(tmp_path):
    """Ctrl-C, or another part's quote: the parts still reading stop within a buffer, not at their end."""
    import threading

    path = written(tmp_path, table().to_csv(index=False))
    stop = threading.Event()
    with csv_parts.LineRange(path, 0, os.path.getsize(path), stop) as part:
        assert len(part.read(1024)) == 1024
        stop.set()
        with pytest.raises(csv_parts.Stop):
            part.read(1024)
