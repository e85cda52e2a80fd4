"""What the training data was, kept in the checkpoint: each source file's path, size and sha256
(or, for built-in sets, the sha256 of the arrays), so evaluate.py can refuse other data."""

import hashlib
from pathlib import Path

import numpy as np

from litlab.errors import UserError


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def of_files(files: list[Path], key: str) -> dict:
    """`key` is the setting that says where the files are (data.path, data.data_dir)."""
    entries = [{"path": str(p), "size": p.stat().st_size, "sha256": sha256_file(p)} for p in files]
    return {"key": key, "files": entries}


def of_arrays(x: np.ndarray, y: np.ndarray) -> dict:
    h = hashlib.sha256()
    for a in (x, y):
        h.update(str((a.dtype, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return {"key": "data", "arrays_sha256": h.hexdigest()}


def missing_files(saved: dict) -> list[str]:
    return [f["path"] for f in saved.get("files", []) if not Path(f["path"]).is_file()]


def check_same(saved: dict, now: dict) -> None:
    """Raise a UserError naming what differs between the data trained on and the data found now.
    Paths may differ (moved files); sizes and contents may not, nor the names within a set of files."""
    key = saved.get("key", "data")
    if "arrays_sha256" in saved:
        if saved["arrays_sha256"] != now.get("arrays_sha256"):
            raise UserError(f"{key}: the dataset differs from the one trained on (its content hash changed)")
        return
    before, after = saved["files"], now.get("files", [])
    names = [Path(f["path"]).name for f in before]  # a set of files (MNIST) keeps its names; one file may be renamed
    if len(before) != len(after) or (len(before) > 1 and names != [Path(f["path"]).name for f in after]):
        raise UserError(f"{key}: the files are {[Path(f['path']).name for f in after]}, trained on {names}")
    for b, a in zip(before, after, strict=True):
        if (b["size"], b["sha256"]) != (a["size"], a["sha256"]):
            raise UserError(
                f"{key}: {a['path']} changed since training (size {b['size']} -> {a['size']} bytes, sha256 "
                f"{b['sha256'][:12]}... -> {a['sha256'][:12]}...); evaluate the data it was trained on, or retrain"
            )
