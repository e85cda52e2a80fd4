"""Finding and reading checkpoints. Every load is `torch.load(weights_only=True)`: a checkpoint
holds tensors and plain values, and one that would build other objects (and so could run code)
is refused. A URL is downloaded first and then loaded the same way."""

import hashlib
import logging
import os
import shutil
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TypeVar

import torch
from hydra.utils import get_class

from litlab.errors import UserError
from litlab.files.run_record import RunRecord

ENTRY = "litlab"  # the key litlab adds to Lightning's checkpoint: the classes that wrote it
URL_SCHEMES = ("http://", "https://")
T = TypeVar("T")
# Modules of DataModules renamed since checkpoints named them: old prefix -> new prefix.
MOVED = {"litlab.data.images.": "litlab.data.torchvision_sets."}
log = logging.getLogger(__name__)
DOWNLOAD_TIMEOUT_S = 60
CHECKPOINTS = "checkpoints"  # a run dir's folder of checkpoints
LAST = "last.ckpt"  # the end of the latest epoch (checkpoints.callbacks.LastCheckpoint)
INTERRUPTED = "interrupted.ckpt"  # the moment a signal stopped the run (run.interrupts)


def resolve(ckpt_path: str, log_dir: str | Path, prefer: str = "last", key: str = "ckpt_path") -> Path:
    """The local checkpoint file that `ckpt_path` names: a file; a run dir or its checkpoints
    dir (its `last.ckpt`, or with prefer='best' the best one its record names); `latest`, the same in
    the run under `log_dir` that wrote a last.ckpt most recently; or an http(s) URL, downloaded
    to torch's hub cache. `key`: the setting that gave it, as errors name it."""
    text = str(ckpt_path)
    if text == "latest":
        return in_run_dir(latest_run(Path(log_dir), key), prefer, key)
    if text.startswith(URL_SCHEMES):
        return download(text, key)
    if "://" in text:
        raise UserError(f"{key}={text!r}: only local paths and http(s) URLs are supported; download it first")
    path = Path(text).expanduser()
    if path.is_dir():
        return in_run_dir(path, prefer, key)
    if not path.is_file():
        raise UserError(
            f"{key}={text!r}: no such file; give a .ckpt written by train.py, its run dir, or 'latest' "
            f"(e.g. {key}=logs/train/runs/<run>/checkpoints/last.ckpt)"
        )
    return path


def in_run_dir(path: Path, prefer: str, key: str = "ckpt_path") -> Path:
    """The checkpoint of run dir `path` (or of its checkpoints dir): its `last.ckpt`, or with
    prefer='best' the best checkpoint its own record (RunRecord.best_ckpt) names. A run
    interrupted before its first epoch ended has only its `interrupted.ckpt`: that one then."""
    folder = path / CHECKPOINTS if (path / CHECKPOINTS).is_dir() else path
    if prefer == "best":
        record = RunRecord.find(folder.parent if folder.name == CHECKPOINTS else folder)
        best = record.best_checkpoint_name if record is not None else None
        if best is not None and (folder / best).is_file():
            return folder / best
        log.warning("%s records no best checkpoint (an unfinished run?): using its latest checkpoint", path)
    for name in (LAST, INTERRUPTED):
        if (folder / name).is_file():
            return folder / name
    raise UserError(
        f"{key}={str(path)!r}: no {LAST} or {INTERRUPTED} in {folder}; give a run dir of train.py or a .ckpt file"
    )


def finished(run_dir: Path) -> bool:
    """Run `run_dir`'s own record says it ran to its end (none, or one unreadable, does not)."""
    record = RunRecord.find(run_dir)
    return record is not None and record.finished


def last_checkpoint(run_dir: Path) -> Path | None:
    """The run's checkpoints/last.ckpt, where there is one."""
    last = run_dir / CHECKPOINTS / LAST
    return last if last.is_file() else None


def latest_run(log_dir: Path, key: str = "ckpt_path") -> Path:
    """The run dir (or the job dir of a grid sweep or an Optuna search, in their default dirs)
    under `log_dir` whose last.ckpt was written most recently."""
    jobs = ("runs/*", "multiruns/*/*", "hparams_search/*/*")  # conf/hydra/default.yaml, conf/hparams_search
    patterns = [f"train/{job}/{CHECKPOINTS}/{LAST}" for job in jobs]
    found = [p for pattern in patterns for p in log_dir.glob(pattern)]
    if not found:
        raise UserError(
            f"{key}=latest: no run with checkpoints/{LAST} under paths.log_dir={str(log_dir)!r}; "
            "train one first, or give the checkpoint's path"
        )
    return max(found, key=lambda p: p.stat().st_mtime).parents[1]


def download(url: str, key: str = "ckpt_path") -> Path:
    """`url` saved under torch's hub cache (TORCH_HOME), fetched anew on every call."""
    name = Path(urllib.parse.urlparse(url).path).name or "checkpoint.ckpt"
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    dest = Path(torch.hub.get_dir()) / "checkpoints" / f"{digest}-{name}"
    try:
        fetch_whole(url, dest)
    except OSError as e:
        raise UserError(f"{key}={url!r} could not be downloaded ({e}); check the URL or give a local file") from e
    return dest


def fetch_whole(url: str, dest: Path) -> None:
    """`url` into `dest`, whole: under a temp name, renamed once complete; an OSError leaves nothing."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(partial, "wb") as f:
            shutil.copyfileobj(response, f)
    except OSError:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, dest)


def load(path: str | Path, key: str = "ckpt_path") -> dict:
    """The checkpoint at local `path`, read with weights_only=True; one clear error otherwise."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same kind of answer
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        reason = next((line for line in lines if "unsupported global" in line.lower()), None)
        if reason is not None:  # a pickle that names a class or function to call: the danger itself
            raise UserError(
                f"{key}={str(path)!r} was refused: loading it would build objects other than tensors and plain "
                f"values, which can run code ({reason}); litlab loads checkpoints with "
                "weights_only=True. Give a checkpoint written by train.py"
            ) from e
        # Bytes that are no pickle at all (noise, a cut file) fail the same weights-only unpickler:
        # its own line says what it met ("Unsupported operand 95"), not the advice around it.
        first = next((line for line in lines if line.startswith("Unsupported")), lines[0] if lines else None)
        raise UserError(
            f"{key}={str(path)!r} is not a readable PyTorch checkpoint ({first or type(e).__name__}); "
            "give a .ckpt of train.py"
        ) from e


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def entry(model: object, datamodule: object | None) -> dict:
    """What litlab adds to a checkpoint: the model and DataModule classes, for get_class()."""
    return {
        "model_class": class_path(type(model)),
        "datamodule_class": class_path(type(datamodule)) if datamodule is not None else None,
    }


def checkpoint_classes(path: str | Path) -> tuple[dict, dict]:
    """The model and DataModule classes litlab recorded in checkpoint `path`, and the checkpoint."""
    checkpoint = load(path)
    classes = checkpoint.get(ENTRY) if isinstance(checkpoint, dict) else None
    if not classes or not classes.get("datamodule_class"):
        raise UserError(
            f"ckpt_path={str(path)!r} was not written by litlab's train.py "
            "(it has no 'litlab' entry naming its model and data classes)"
        )
    return classes, checkpoint


def recorded_class(classes: dict, key: str, base: type[T]) -> type[T]:
    """The class a checkpoint names under `key` ('model_class', 'datamodule_class'): only one of
    litlab's own, a subclass of `base`. Importing any other module could run its code."""
    name = str(classes.get(key) or "")
    name = next((new + name[len(old) :] for old, new in MOVED.items() if name.startswith(old)), name)
    cls = get_class(name) if name.startswith("litlab.") else None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise UserError(f"ckpt_path: its {key} {name!r} is not a litlab {base.__name__}; give a checkpoint of train.py")
    return cls
