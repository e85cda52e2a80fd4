"""The Hydra callback that checks a run's dir before Hydra writes anything into it."""

import contextlib
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from typing_extensions import override

from litlab.compat import is_ddp_child, started_together
from litlab.errors import UserError, exit_on_user_error
from litlab.files import disk_full, is_disk_full
from litlab.files.run_record import RunRecord

# What Hydra writes into a run's dir before the job starts (.hydra/*.yaml, about 8 kB; the log's
# first lines), with a wide margin: a disk without this much room is full to the user.
ROOM = 64 * 1024


class FreshRunDir(Callback):
    """Refuses, with one line and exit code 2, a run whose dir cannot be created or written (a full
    disk, a read-only one), or that already holds a run: Hydra would otherwise rewrite that run's
    `.hydra/` and append to its log before litlab could say no, and its record of how it was made
    would be lost; on a full disk it would leave its config files and the log empty."""

    @override
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if is_ddp_child():
            return  # it joins rank 0's run dir
        show = config.get("extras", {}).get("traceback", False)
        exit_on_user_error(lambda: check_run_dir(config), show)

    @override
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        show = config.get("extras", {}).get("traceback", False)
        exit_on_user_error(lambda: creatable(Path(config.hydra.sweep.dir), "hydra.sweep.dir", config), show)


def check_run_dir(config: DictConfig) -> None:
    run_dir = Path(config.hydra.run.dir)
    if holds_a_run(run_dir):
        raise UserError(
            f"hydra.run.dir={str(run_dir)!r} already holds a run; give each run a new dir (leave hydra.run.dir "
            "unset for a fresh, dated one). To continue that run: litlab train ckpt_path=" + str(run_dir)
        )
    creatable(run_dir, "hydra.run.dir", config)


def holds_a_run(run_dir: Path) -> bool:
    """Anything in it; when all ranks start at once (torchrun, srun), only a run's results count:
    the other ranks of this run may already have written Hydra's .hydra/ and log there."""
    if not run_dir.is_dir():
        return False
    if started_together():
        return RunRecord.exists(run_dir) or (run_dir / "checkpoints").exists()
    return any(run_dir.iterdir())


def creatable(folder: Path, key: str, config: DictConfig) -> None:
    """Create `folder` now and check it takes ROOM bytes, or say which setting to change: Hydra
    would fail with a bare OSError. A refused folder that was made here is removed again."""
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # the leaf first
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as probe:  # no name: nothing is left if this process dies
            probe.write(bytes(ROOM))
            probe.flush()
    except OSError as e:
        for created in made:
            with contextlib.suppress(OSError):
                created.rmdir()
        if is_disk_full(e):
            raise disk_full(e, folder) from None
        raise unusable(folder, key, config, e) from None


def unusable(folder: Path, key: str, config: DictConfig, error: OSError) -> UserError:
    """`key=folder` cannot be created or written: the setting to change (paths.log_dir where the
    folder is under it)."""
    log_dir = config.get("paths", {}).get("log_dir")
    where = f" (under paths.log_dir={log_dir!r})" if log_dir and folder.is_relative_to(Path(log_dir)) else ""
    fix = "paths.log_dir" if where else key
    verb = "written" if folder.is_dir() else "created"
    return UserError(
        f"{key}={str(folder)!r}{where} cannot be {verb}: {error.strerror or error}. Set {fix}= to a writable dir"
    )
