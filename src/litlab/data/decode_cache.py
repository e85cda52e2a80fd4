"""Decoded images kept on disk, so that the second run over the same picture folder starts without
decoding. A cache file is named by the hash of the data's fingerprint (every file's path, size
and sha256) and the decode settings: a changed, added or removed file, or another image size,
is another name, and the stale file is simply not read again. Written whole: a temporary name in
the same folder, then a rename, so a crash never leaves a truncated cache under a real name."""

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from litlab import files

log = logging.getLogger(__name__)

VERSION = 1  # of the cache's content: bump when what load() builds from the files changes


def cache_file(cache_dir: str | Path, fingerprint: dict, settings: dict) -> Path:
    key = json.dumps({"files": fingerprint["files"], "settings": settings, "version": VERSION}, sort_keys=True)
    return Path(cache_dir) / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


def read(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays cached at `path`, or None where there is none (or it cannot be read: decode again)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            return {k: saved[k] for k in saved.files}
    except (OSError, ValueError) as e:
        log.warning("decode cache %s unreadable (%s): decoding again", path, e)
        return None


def write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """`arrays` saved at `path`, whole or not at all. A cache that cannot be written (a read-only or
    full disk) costs the next run a decode, nothing more: a warning, and training goes on."""
    try:
        with files.written_whole(path) as temporary, open(temporary, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]  # mypy cannot rule out a key named allow_pickle
    except OSError as e:  # DiskFull included
        log.warning("decode cache not written to %s (%s); the next run decodes again", path, e)
