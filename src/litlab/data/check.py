"""The data check before training: rows per split and class, how imbalanced the classes are,
rows whose content appears in two splits (a test score that overstates), and constant feature
columns. A plain dict (data_report.json), a few lines for the console, and warnings only where
the user should act. ID-like columns are the CSV reader's to name (data.csv), on the raw columns."""

import hashlib
from itertools import combinations

import numpy as np

from litlab.data.base import InMemoryDataModule
from litlab.data.spec import InputKind

SPLITS = ("train", "val", "test")
IMBALANCE_WARN = 10.0  # the largest class this many times the smallest: worth a warning
SHOWN = 5  # source rows named per finding


def row_hashes(x: np.ndarray) -> list[bytes]:
    """One digest per row of `x` (N, ...): equal rows, and only they, share one."""
    rows = np.ascontiguousarray(x).reshape(len(x), -1)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows]


def duplicates_across(dm: InMemoryDataModule) -> dict[str, dict]:
    """For each pair of splits, the rows of the second whose content is also in the first,
    counted, with the first few as source rows."""
    hashes = {s: row_hashes(dm.split_tensors(s).x.numpy()) for s in SPLITS}
    found = {}
    for first, second in combinations(SPLITS, 2):
        seen = set(hashes[first])
        shared = [i for i, h in enumerate(hashes[second]) if h in seen]
        if shared:
            rows = dm.row_indices(second)[shared[:SHOWN]]
            found[f"{first}-{second}"] = {"rows": len(shared), f"{second}_rows": [int(r) for r in rows]}
    return found


def constant_columns(dm: InMemoryDataModule) -> list[str]:
    """Feature columns (as encoded) with one value in every row: they carry no information."""
    columns = dm.spec.columns
    if dm.spec.kind is not InputKind.TABLE or columns is None:
        return []
    x = dm.arrays.x  # (N, F)
    return [name for j, name in enumerate(columns.features) if np.all(x[:, j] == x[0, j])]


def rows_per_class(dm: InMemoryDataModule, split: str) -> dict[str, int]:
    names = dm.spec.class_names or ()
    counts = np.bincount(dm.split_tensors(split).y.numpy(), minlength=len(names))
    return dict(zip(names, counts.tolist(), strict=True))


def data_report(dm: InMemoryDataModule) -> dict:
    """What the data check found (see the module docstring), as plain values."""
    spec = dm.spec
    report: dict = {"rows": {s: len(dm.split_tensors(s).y) for s in SPLITS}}
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
