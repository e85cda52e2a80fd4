"""The data check before training: rows per split and class, how imbalanced the classes are,
rows whose content appears in two splits (a test score that overstates), and constant feature
columns. A plain dict (data_report.json), a few lines for the console, and warnings only where
the user should act. ID-like columns are the CSV reader's to name (data.csv), on the raw columns."""

from itertools import combinations

import numpy as np

from litlab.data.base import SplitDataModule
from litlab.data_spec import InputKind

SPLITS = ("train", "val", "test")
IMBALANCE_WARN = 10.0  # the largest class this many times the smallest: worth a warning
SHOWN = 5  # source rows named per finding
HASHED_ROWS = 1 << 14  # rows hashed at once


def row_hashes(x: np.ndarray) -> np.ndarray:
    """A 64-bit hash per row of `x` (N, ...), vectorized: equal rows share one; a shared hash is
    confirmed byte for byte before it counts (shared_rows). (N,) uint64."""
    rows = np.ascontiguousarray(x).reshape(len(x), -1).view(np.uint8)  # (N, B) bytes
    if rows.shape[1] % 8:  # whole 64-bit words: zero-padded to the next multiple of 8 bytes
        padded = np.zeros((len(rows), -(-rows.shape[1] // 8) * 8), dtype=np.uint8)
        padded[:, : rows.shape[1]] = rows
        rows = padded
    words = rows.view(np.uint64)  # (N, W)
    multipliers = np.random.default_rng(0).integers(1, 2**63, words.shape[1], dtype=np.uint64) | np.uint64(1)
    hashes = np.empty(len(words), dtype=np.uint64)
    with np.errstate(over="ignore"):  # multiplication and sum modulo 2**64, on purpose
        for start in range(0, len(words), HASHED_ROWS):  # in blocks: the (rows, W) products stay in cache
            block = slice(start, start + HASHED_ROWS)
            np.sum(words[block] * multipliers, axis=1, dtype=np.uint64, out=hashes[block])
    return hashes


def members(values: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Which of `values` (N,) are in `ordered` (M,), sorted, by binary search: on a million 64-bit
    hashes about 8x faster than np.isin's hash table. (N,) bool."""
    if not len(ordered):
        return np.zeros(len(values), dtype=bool)
    return ordered[np.searchsorted(ordered, values).clip(max=len(ordered) - 1)] == values


def shared_rows(
    first: np.ndarray, second: np.ndarray, h1: np.ndarray, h2: np.ndarray, ordered1: np.ndarray
) -> list[int]:
    """Positions of the rows of `second` whose content is also a row of `first` (both (N, ...)),
    given their row_hashes `h1` and `h2`, and `h1` sorted."""
    candidates = np.flatnonzero(members(h2, ordered1))
    if not len(candidates):
        return []
    by_hash: dict[int, list[bytes]] = {}
    for i in np.flatnonzero(members(h1, np.sort(h2[candidates]))):
        by_hash.setdefault(int(h1[i]), []).append(first[i].tobytes())
    return [int(i) for i in candidates if second[i].tobytes() in by_hash.get(int(h2[i]), [])]


def duplicates_across(dm: SplitDataModule) -> dict[str, dict]:
    """For each pair of splits, the rows of the second whose content is also in the first,
    counted, with the first few as source rows."""
    arrays = {s: dm.contents(s) for s in SPLITS}
    hashes = {s: row_hashes(a) for s, a in arrays.items()}  # each split's once
    ordered = {s: np.sort(hashes[s]) for s in SPLITS[:-1]}  # sorted once, for each pair it is first in
    found = {}
    for first, second in combinations(SPLITS, 2):
        shared = shared_rows(arrays[first], arrays[second], hashes[first], hashes[second], ordered[first])
        if shared:
            rows = dm.row_indices(second)[shared[:SHOWN]]
            found[f"{first}-{second}"] = {"rows": len(shared), f"{second}_rows": [int(r) for r in rows]}
    return found


def constant_columns(dm: SplitDataModule) -> list[str]:
    """Feature columns (as encoded) with one value in every row: they carry no information."""
    columns = dm.spec.columns
    if dm.spec.kind is not InputKind.TABLE or columns is None:
        return []
    x = dm.arrays.held  # (N, F)
    return [name for j, name in enumerate(columns.features) if np.all(x[:, j] == x[0, j])]


def rows_per_class(dm: SplitDataModule, split: str) -> dict[str, int]:
    names = dm.spec.class_names or ()
    counts = np.bincount(dm.split_labels(split).numpy(), minlength=len(names))
    return dict(zip(names, counts.tolist(), strict=True))


def data_report(dm: SplitDataModule) -> dict:
    """What the data check found (see the module docstring), as plain values."""
    spec = dm.spec
    report: dict = {"rows": {s: len(dm.split_labels(s)) for s in SPLITS}}
    if spec.task.is_classification:
        per_class = {s: rows_per_class(dm, s) for s in SPLITS}
        counts = list(per_class["train"].values())
        report.update(per_class=per_class, imbalance_ratio=round(max(counts) / max(min(counts), 1), 2))
    report["duplicates"] = duplicates_across(dm)
    report["constant_columns"] = constant_columns(dm)
    return report


def summary_lines(report: dict) -> list[str]:
    """The report in a few console lines."""
    rows = report["rows"]
    lines = [f"rows: train {rows['train']}, val {rows['val']}, test {rows['test']}"]
    if "imbalance_ratio" in report:
        train = report["per_class"]["train"]
        lines.append(f"classes: {len(train)}, train rows per class {min(train.values())}-{max(train.values())} "
                     f"(imbalance {report['imbalance_ratio']}:1)")  # fmt: skip
    if report.get("constant_columns"):
        lines.append(f"constant columns (no information): {report['constant_columns']}")
    return lines


def warnings_for(report: dict) -> list[str]:
    """What the user should act on: rows shared between splits, strongly imbalanced classes."""
    found = []
    for pair, dup in report["duplicates"].items():
        first, second = pair.split("-")
        rows = dup[f"{second}_rows"]
        found.append(f"{dup['rows']} {second} row(s) have the same content as {first} rows (source rows {rows}...): "
                     f"the {second} score overstates; remove the duplicates from the data")  # fmt: skip
    if report.get("imbalance_ratio", 0) >= IMBALANCE_WARN:
        found.append(f"the classes are imbalanced {report['imbalance_ratio']}:1 in the train split; "
                     "model.class_weight=balanced weighs them")  # fmt: skip
    return found
