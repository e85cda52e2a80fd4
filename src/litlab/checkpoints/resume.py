"""What a run resumed from a checkpoint needs to end exactly as an uninterrupted one would."""

import logging
import os
import random
from pathlib import Path

import lightning as L
import numpy as np
import torch
from typing_extensions import override

from litlab.checkpoints import store
from litlab.compat import completed_epochs, global_rank
from litlab.errors import UserError
from litlab.files.run_record import RunRecord
from litlab.hydra_job import in_multirun

log = logging.getLogger(__name__)


class RandomState(L.Callback):
    """Keeps the random generators (torch's CPU and CUDA, numpy's, python's) in every checkpoint
    and restores them on resume, so that dropout and augmentation draw the same numbers as in
    an uninterrupted run. Lightning keeps none of them. Batch order needs none: it is seeded
    by the epoch (litlab.data.batches)."""

    @override
    def state_dict(self) -> dict:
        state = np.random.get_state()
        assert isinstance(state, tuple)  # the legacy tuple form, the default
        name, keys, pos, has_gauss, cached = state
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            # plain lists and tuples, which torch.load(weights_only=True) reads
            "numpy": [name, keys.tolist(), pos, has_gauss, cached],
            "python": random.getstate(),
        }

    @override
    def load_state_dict(self, state_dict: dict) -> None:
        torch.set_rng_state(state_dict["torch"])
        cuda = state_dict["cuda"]
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        name, keys, pos, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        version, internal, gauss = state_dict["python"]
        random.setstate((version, tuple(internal), gauss))


def check_resumable(path: Path, model: L.LightningModule, max_epochs: int | None = None) -> None:
    """Fail before training if checkpoint `path` cannot continue `model`: a file of another kind,
    the weights of another model (another model=, hidden sizes or data), or weights that are not
    finite. Other data of the same shape is refused when the DataModule's state is restored. A
    checkpoint that has all `max_epochs` already is said to have nothing left to train."""
    ckpt = store.load(path)
    weights = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(weights, dict) or "loops" not in ckpt:
        raise UserError(f"ckpt_path={str(path)!r} holds no training state to resume; give a .ckpt written by train.py")
    wrong = [k for k, v in model.state_dict().items() if k not in weights or weights[k].shape != v.shape]
    if wrong:
        raise UserError(
            f"ckpt_path={str(path)!r} holds a different model ({wrong[0]} does not match): resume with the model "
            "and data it was trained with, as in the config.yaml of its run"
        )
    broken = [k for k, v in weights.items() if torch.is_tensor(v) and v.is_floating_point() and not v.isfinite().all()]
    if broken:
        raise UserError(
            f"ckpt_path={str(path)!r} holds non-finite weights ({broken[0]} has NaN or inf): training diverged "
            "before it was saved, and would go on from NaN. Resume from a checkpoint of an earlier epoch, or "
            "start anew with a lower optimizer.lr"
        )
    done = completed_epochs(ckpt)
    if done is not None and max_epochs is not None and max_epochs >= 0 and done >= max_epochs:
        log.warning(
            "ckpt_path=%s has %d of trainer.max_epochs=%d epochs: nothing left to train, its weights are only "
            "tested; give trainer.max_epochs=%d or more to train on",
            path, done, max_epochs, done + 1,
        )  # fmt: skip


def requeued_checkpoint(output_dir: Path) -> Path | None:
    """A SLURM job that was requeued (preempted, or `scontrol requeue`) runs its command again,
    in the same dir: SLURM_RESTART_COUNT > 0 and its record says the attempt before was
    interrupted (it saved its state on SLURM's SIGTERM). Returns that run's last.ckpt to resume
    from (None: start again). Rank 0 keeps the interrupted attempt's record as
    metrics_before_restart_<N>.json; every rank reads the same answer from either file."""
    restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
    if restarts == 0:
        return None
    record, kept = RunRecord.path(output_dir), output_dir / f"metrics_before_restart_{restarts}.json"
    for path in (record, kept):
        try:
            if RunRecord.load(path).status == "interrupted":
                break
        except FileNotFoundError:
            continue
    else:
        return None
    if global_rank() == 0 and record.exists():
        record.rename(kept)
    return store.last_checkpoint(output_dir)


def rerun_checkpoint(output_dir: Path) -> Path | None:
    """A sweep's job run again in its own dir (the same `-m` command on the same hydra.sweep.dir;
    the sweeper keeps the jobs that finished, litlab.sweeps.plan): one that was interrupted, failed
    or killed resumes from its last.ckpt (None: it starts again). Rank 0 keeps the attempt's record
    as metrics_before_rerun_<N>.json."""
    if not in_multirun():
        return None
    record = RunRecord.path(output_dir)
    if global_rank() == 0 and record.exists():
        if store.finished(output_dir):
            return None  # a finished run: start_run refuses to overwrite it
        attempt = 1 + len(list(output_dir.glob("metrics_before_rerun_*.json")))
        record.rename(output_dir / f"metrics_before_rerun_{attempt}.json")
    return store.last_checkpoint(output_dir)
