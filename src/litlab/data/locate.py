"""Find a dataset's files: the user's data dir, a copy installed on the system, or a download."""

import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from litlab.errors import UserError


class DataFilesError(UserError):
    """The dataset's files are missing, truncated or corrupt."""


def find_file(folder: Path, name: str) -> Path | None:
    """`folder/name`, or its gzipped copy `folder/name.gz`."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def why_not(folder: Path, missing: Sequence[str]) -> str:
    """Why `folder` did not supply the files: it is not there, not a folder, or lacks `missing`."""
    if folder.is_dir():
        return f"missing {', '.join(missing)}"
    return "not a folder" if folder.exists() else "no such dir"


@contextmanager
def undone_if_failed(data_dir: Path) -> Iterator[None]:
    """A download into `data_dir`: if it fails, what it made there (the dirs it created, a
    partial archive) is removed, so that no empty or half-filled dataset dir is left behind
    for the next run to find. Entries that were there before are never touched."""
    made = [p for p in (data_dir, *data_dir.parents) if not p.exists()]  # deepest first
    before = set(data_dir.iterdir()) if data_dir.is_dir() else set()
    try:
        yield
    except BaseException:
        if made:
            shutil.rmtree(made[-1], ignore_errors=True)
        else:
            for new in set(data_dir.iterdir()) - before:
                shutil.rmtree(new, ignore_errors=True) if new.is_dir() else new.unlink(missing_ok=True)
        raise


def locate(
    dataset: str,
    names: Sequence[str],
    folders: Sequence[Path],
    download: Callable[[], Path] | None,
    how_to_supply: str,
) -> dict[str, Path]:
    """The first of `folders` that holds all `names` (plain or .gz), else the folder that
    `download()` fills. Raises one error (one line) listing every place tried and why it failed."""
    tried = []
    for folder in folders:
        found = {n: find_file(folder, n) for n in names}
        missing = [n for n, p in found.items() if p is None]
        if not missing:
            return found  # type: ignore[return-value]  # no None left
        tried.append(f"{folder}: {why_not(folder, missing)}")
    if download is None:
        tried.append("download: off (data.download=false)")
    else:
        try:
            folder = download()
        except Exception as e:  # noqa: BLE001 - any failure (no network, bad mirror) is reported with the rest
            reason = " ".join(str(e).split())  # one line, as the whole error is
            tried.append(f"download with torchvision: failed ({type(e).__name__}: {reason})")
        else:
            found = {n: find_file(folder, n) for n in names}
            if all(found.values()):
                return found  # type: ignore[return-value]
            tried.append(f"download with torchvision into {folder}: finished but the files are not there")
    raise DataFilesError(
        f"{dataset}: could not find the files {', '.join(names)}. Tried, in order: {'; '.join(tried)}. {how_to_supply}"
    )
