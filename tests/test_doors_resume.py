"""The hostile-input table of the checkpoints a run leaves: train.py ckpt_path= (resume), evaluate.py
ckpt_path= (loading it; its other arguments are in test_doors_run.py) and `litlab reproduce RUN_DIR`.
Each broken one is one `Error:` line naming it, exit 2, before training, and nothing the earlier run
wrote is changed. A checkpoint whose weights are NaN or inf is refused for a resume: training would
go on from NaN and stop at its first step with a traceback; resume from an earlier epoch instead."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.helpers.config import SHRINK
from tests.helpers.doors import Form, Refusal, as_params, assert_refused, snapshot, zero_byte_files
from tests.helpers.processes import run_in_process

RESUME, EVAL, REPRO = "train.py ckpt_path=", "evaluate.py ckpt_path=", "litlab reproduce"
INIT = "train.py model.init_from="
UNREADABLE = "is not a readable PyTorch checkpoint"
NO_CKPT = "no last.ckpt or interrupted.ckpt in"
NO_RECORD = "no readable metrics.json"
CSV = ("data=csv", "data.path={csv}", "data.target=y", "model.hidden_sizes=[4]")


def file_rows(door: str, *extra: str, key: str = "ckpt_path") -> list[Refusal]:
    """What a checkpoint path can be instead of a checkpoint, the same at every door that loads one."""
    return [
        Refusal(door, key, Form.EMPTY, f"{key}='{{hostile}}/empty.ckpt' {UNREADABLE}",
                (f"{key}={{hostile}}/empty.ckpt", *extra)),
        Refusal(door, key, Form.TRUNCATED, UNREADABLE, (f"{key}={{hostile}}/half.ckpt", *extra)),
        Refusal(door, key, Form.CORRUPT, UNREADABLE, (f"{key}={{hostile}}/noise.ckpt", *extra)),
        Refusal(door, key, Form.MISSING, f"{NO_CKPT} {{hostile}}/no_checkpoints",
                (f"{key}={{hostile}}/no_checkpoints", *extra)),
        Refusal(door, key, Form.WRONG_TYPE, f"{NO_CKPT} {{hostile}}/folder.ckpt",
                (f"{key}={{hostile}}/folder.ckpt", *extra)),
        Refusal(door, key, Form.LINK, f"{key}='{{hostile}}/dangling.ckpt': no such file",
                (f"{key}={{hostile}}/dangling.ckpt", *extra)),
    ]  # fmt: skip


REFUSALS: list[Refusal] = [
    *file_rows(RESUME, *CSV),
    Refusal(RESUME, "ckpt_path + model", Form.MISMATCHED, "holds a different model (net.1.weight does not match)",
            ("ckpt_path={ckpt}", *CSV, "model.hidden_sizes=[8]")),
    Refusal(RESUME, "ckpt_path + data", Form.MISMATCHED, "the checkpoint was trained on other data (data.path: "
            "{hostile}/other.csv changed since training", ("ckpt_path={ckpt}", *CSV, "data.path={hostile}/other.csv")),
    Refusal(RESUME, "ckpt_path", Form.NON_FINITE, "holds non-finite weights (net.1.weight has NaN or inf)",
            ("ckpt_path={hostile}/nan.ckpt", *CSV)),
    *file_rows(EVAL),
    # train.py model.init_from=: the checkpoint a new run starts from
    *file_rows(INIT, *CSV, key="model.init_from"),
    Refusal(INIT, "model.init_from + model", Form.MISMATCHED, "model.init_from='{ckpt}': none of its 4 tensors has "
            "a name and shape of this model's", ("model.init_from={ckpt}", *CSV, "model.hidden_sizes=[8,8]")),
    # litlab reproduce RUN_DIR: the run dir, its record and its config files
    Refusal(REPRO, "RUN_DIR", Form.MISSING, f"{{hostile}}/nowhere: {NO_RECORD}", ("{hostile}/nowhere",)),
    Refusal(REPRO, "RUN_DIR", Form.WRONG_TYPE, f"{NO_RECORD} ([Errno 20] Not a directory", ("{ckpt}",)),
    Refusal(REPRO, "RUN_DIR", Form.LINK, f"{{hostile}}/dangling_run: {NO_RECORD}", ("{hostile}/dangling_run",)),
    Refusal(REPRO, "metrics.json", Form.MISSING, f"{NO_RECORD} ([Errno 2] No such file",
            ("{copies}/no_record",)),
    Refusal(REPRO, "metrics.json", Form.EMPTY, f"{NO_RECORD} (Expecting value", ("{copies}/empty_record",)),
    Refusal(REPRO, "metrics.json", Form.TRUNCATED, f"cut_record: {NO_RECORD} (Unterminated string",
            ("{copies}/cut_record",)),
    Refusal(REPRO, "metrics.json", Form.WRONG_TYPE, f"{NO_RECORD} (not a job's record", ("{copies}/list_record",)),
    Refusal(REPRO, "metrics.json metrics", Form.EMPTY, "records no final val/ or test/ metrics to compare",
            ("{copies}/no_metrics",)),
    Refusal(REPRO, "metrics.json overrides", Form.WRONG_TYPE, f"{NO_RECORD} (not a job's record: its overrides is "
            "str)", ("{copies}/text_overrides",)),
    Refusal(REPRO, ".hydra/config.yaml", Form.MISSING, "{copies}/no_hydra/.hydra/config.yaml is missing or "
            "unreadable (FileNotFoundError)", ("{copies}/no_hydra",)),
    Refusal(REPRO, ".hydra/config.yaml", Form.CORRUPT, ".hydra/config.yaml is missing or unreadable",
            ("{copies}/bad_hydra",)),
    Refusal(REPRO, ".hydra/config.yaml", Form.MISMATCHED, "{copies}/edited/.hydra/config.yaml differs from what "
            "the run's recorded overrides compose to now (trainer.max_epochs: 5 -> 1): the file was edited, or "
            "conf/ changed since the run", ("{copies}/edited",)),
    Refusal(REPRO, "config.yaml", Form.MISSING, "{copies}/no_config/config.yaml is missing or unreadable",
            ("{copies}/no_config",)),
]  # fmt: skip


def write_csv(path: Path, seed: int) -> Path:
    x = np.random.default_rng(seed).normal(size=(120, 3))
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": (x[:, 0] > 0).astype(int)}).to_csv(path, index=False)
    return path


def hostile_files(folder: Path) -> None:
    """What a checkpoint path or run dir can be instead, without a checkpoint to start from."""
    folder.mkdir()
    (folder / "empty.ckpt").write_bytes(b"")
    (folder / "noise.ckpt").write_bytes(np.random.default_rng(0).bytes(4096))
    (folder / "no_checkpoints").mkdir()
    (folder / "folder.ckpt").mkdir()
    os.symlink(folder / "gone.ckpt", folder / "dangling.ckpt")
    os.symlink(folder / "gone_run", folder / "dangling_run")
    write_csv(folder / "other.csv", seed=1)  # the same columns, other rows


def broken_checkpoints(folder: Path, ckpt: Path) -> None:
    """A real checkpoint cut in half, and one whose weights hold a NaN."""
    data = ckpt.read_bytes()
    (folder / "half.ckpt").write_bytes(data[: len(data) // 2])
    state = torch.load(ckpt, weights_only=True)
    state["state_dict"]["net.1.weight"][0, 0] = float("nan")
    torch.save(state, folder / "nan.ckpt")


def edited_copies(folder: Path, run: Path) -> None:
    """Copies of the run dir, each with one of its record or config files broken."""
    folder.mkdir()
    record = json.loads((run / "metrics.json").read_text())
    broken = {
        "no_record": lambda d: (d / "metrics.json").unlink(),
        "empty_record": lambda d: (d / "metrics.json").write_text(" "),
        "cut_record": lambda d: (d / "metrics.json").write_text((run / "metrics.json").read_text()[:200]),
        "list_record": lambda d: (d / "metrics.json").write_text("[]"),
        "no_metrics": lambda d: (d / "metrics.json").write_text(json.dumps({**record, "val": {}, "test": {}})),
        "text_overrides": lambda d: (d / "metrics.json").write_text(json.dumps({**record, "overrides": "data=csv"})),
        "no_hydra": lambda d: (d / ".hydra" / "config.yaml").unlink(),
        "bad_hydra": lambda d: (d / ".hydra" / "config.yaml").write_text("trainer: [unclosed\n"),
        "edited": lambda d: (d / ".hydra" / "config.yaml").write_text(
            (run / ".hydra" / "config.yaml").read_text().replace("max_epochs: 1\n", "max_epochs: 5\n")
        ),
        "no_config": lambda d: (d / "config.yaml").unlink(),
    }
    for name, breaking in broken.items():
        shutil.copytree(run, folder / name, symlinks=True)
        breaking(folder / name)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[dict[str, str], Path]:
    """The `{name}`s of the rows that need no trained run (the fast suite's): the CSV, the hostile
    files, and where the run will be."""
    tmp = tmp_path_factory.mktemp("doors_resume")
    write_csv(tmp / "data.csv", seed=0)
    hostile_files(tmp / "hostile")
    return {"csv": str(tmp / "data.csv"), "hostile": str(tmp / "hostile")}, tmp / "run"


@pytest.fixture(scope="module")
def trained(files) -> dict[str, str]:
    """The `{name}`s of the rest: a tiny run of train.py (a 1-epoch MLP on the 120-row CSV, about two
    seconds), checkpoints broken from it, and broken copies of its run dir."""
    names, run = files
    args = [arg.format(**names) for arg in CSV]
    code, _, err = run_in_process("train.py", *SHRINK, "trainer.max_epochs=1", *args, f"hydra.run.dir={run}")
    assert code == 0, err[-3000:]
    ckpt = run / "checkpoints" / "last.ckpt"
    broken_checkpoints(Path(names["hostile"]), ckpt)
    edited_copies(run.parent / "copies", run)
    return {**names, "ckpt": str(ckpt), "copies": str(run.parent / "copies")}


def command_line(row: Refusal, names: dict[str, str], tmp_path: Path) -> list[str]:
    """The row's arguments and, for train.py and evaluate.py, the shrunk run's and a fresh run dir."""
    args = [arg.format(**names) for arg in row.args]
    if row.door == REPRO:
        return ["reproduce", *args, "--into", str(tmp_path / "again")]
    shrink = SHRINK if row.door in (RESUME, INIT) else ["trainer=cpu"]
    return [*args, *shrink, f"hydra.run.dir={tmp_path / 'run'}"]


@pytest.mark.parametrize("row", as_params(REFUSALS))
def test_a_hostile_checkpoint_or_run_dir_is_refused_in_one_line(files, request, tmp_path, row):
    names, run = files
    if any(name in arg for arg in row.args for name in ("{ckpt}", "{copies}", "half.ckpt", "nan.ckpt")):
        names = request.getfixturevalue("trained")
    before = snapshot(run.parent)
    code, out, err = run_in_process(row.door.split()[0], *command_line(row, names, tmp_path))
    assert_refused(code, out, err, row.says.format(**names))
    assert snapshot(run.parent) == before, "an earlier file was changed, or a new one left behind"
    assert zero_byte_files(run) == [] if run.exists() else True
    assert not (tmp_path / "again").exists()  # reproduce ran nothing
