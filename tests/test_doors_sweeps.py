"""The hostile-input table of sweeps and the commands that read them: `train.py -m` and where it
writes (hydra.sweep.dir), the Optuna search's storage, `litlab report`, `litlab dashboard` and
`litlab mlflow-ui`. Each broken input is one `Error:` line naming it, exit 2, before any job
runs or any server starts, and nothing an earlier sweep wrote is touched."""

import json
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import lightning as L
import pytest
from typing_extensions import override

from litlab.errors import UserError
from litlab.files.run_record import RunRecord
from litlab.sweeps.jobs import job_rows, unreadable
from litlab.sweeps.lock import LOCK, same_file, sweep_lock
from litlab.sweeps.plan import PLAN, read_plan, write_plan
from tests.helpers.config import QUICK, ROOT, SHRINK
from tests.helpers.disks import fill, mount, read_only, unmount
from tests.helpers.doors import Form, Refusal, as_params, assert_refused, assert_refused_on_disks
from tests.helpers.processes import started

SWEEP, OPTUNA = "train.py -m", "train.py -m hparams_search=digits_mlp"
REPORT, DASHBOARD, MLFLOW_UI = "litlab report", "litlab dashboard", "litlab mlflow-ui"
GRID = ("-m", "seed=1,2")
SEARCH = ("-m", "hparams_search=digits_mlp")

REFUSALS: list[Refusal] = [
    # train.py -m: the sweep dir, before any job
    Refusal(SWEEP, "hydra.sweep.dir", Form.DUPLICATE, "holds a sweep of other jobs (job 0 was [seed=7]",
            (*GRID, "hydra.sweep.dir={other_sweep}")),
    Refusal(SWEEP, "hydra.sweep.dir", Form.TWO_PROCESSES, "is in use by another sweep (process {holder})",
            (*GRID, "hydra.sweep.dir={busy_sweep}")),
    Refusal(SWEEP, "hydra.sweep.dir", Form.READ_ONLY, "hydra.sweep.dir='{ro}/sweep' cannot be created: Read-only",
            (*GRID, "hydra.sweep.dir={ro}/sweep")),
    Refusal(SWEEP, "hydra.sweep.dir", Form.WRONG_TYPE, "cannot be created: Not a directory",
            (*GRID, "hydra.sweep.dir={a_file}/sweep")),
    Refusal(SWEEP, "hydra.sweep.dir", Form.FULL_DISK, "no space left on device writing {full}/sweep",
            (*GRID, "hydra.sweep.dir={full}/sweep")),
    # the Optuna search's storage, before any trial
    Refusal(OPTUNA, "hydra.sweeper.storage", Form.CORRUPT, "cannot be opened: file is not a database",
            (*SEARCH, "hydra.sweeper.storage=sqlite:///{garbage}")),
    Refusal(OPTUNA, "hydra.sweeper.storage", Form.MISSING, "hydra.sweeper.storage='postgresql://litlab@127.0.0.1:9/"
            "none' cannot be opened", (*SEARCH, "hydra.sweeper.storage=postgresql://litlab@127.0.0.1:9/none")),
    Refusal(OPTUNA, "hydra.sweeper.storage journal:", Form.MISSING, "cannot be opened: [Errno 2] No such file",
            (*SEARCH, "hydra.sweeper.storage=journal:{tmp}/no_dir/journal.log")),
    Refusal(OPTUNA, "hydra.sweeper.study_name", Form.WRONG_TYPE, "hydra.sweeper.study_name=\"bob's search\" is invalid",
            (*SEARCH, "hydra.sweeper.study_name=\"bob's search\"")),
    Refusal(OPTUNA, "hydra.sweep.dir", Form.TWO_PROCESSES, "is in use by another sweep (process {holder})",
            (*SEARCH, "hydra.sweep.dir={busy_sweep}")),
    # litlab report DIR
    Refusal(REPORT, "DIR", Form.MISSING, "{tmp}/nope: no such dir", ("{tmp}/nope",)),
    Refusal(REPORT, "DIR", Form.EMPTY, "holds no job dirs", ("{empty_dir}",)),
    Refusal(REPORT, "DIR", Form.WRONG_TYPE, "{a_file}: a file, not a dir", ("{a_file}",)),
    Refusal(REPORT, "--metric", Form.OUT_OF_RANGE, "metric 'val/nope' is not one the jobs recorded",
            ("{other_sweep}", "--metric", "val/nope")),
    Refusal(REPORT, "metrics.json", Form.CORRUPT, "{corrupt_job}/1/metrics.json cannot be read", ("{corrupt_job}",)),
    Refusal(REPORT, "metrics.json", Form.EMPTY, "{empty_job}/1/metrics.json cannot be read", ("{empty_job}",)),
    Refusal(REPORT, "metrics.json", Form.TRUNCATED, "{half_job}/1/metrics.json cannot be read", ("{half_job}",)),
    Refusal(REPORT, "metrics.json", Form.WRONG_TYPE, "not a job's record", ("{list_job}",)),
    Refusal(REPORT, ".hydra/overrides.yaml", Form.CORRUPT, "{started_job}/1/.hydra/overrides.yaml cannot be read",
            ("{started_job}",)),
    # litlab dashboard DIR: checked before the server starts
    Refusal(DASHBOARD, "DIR", Form.MISSING, "{tmp}/nope: no such dir", ("{tmp}/nope",)),
    Refusal(DASHBOARD, "DIR", Form.EMPTY, "no best.yaml with a storage and no optuna.db", ("{empty_dir}",)),
    Refusal(DASHBOARD, "optuna.db", Form.CORRUPT, "cannot be read: file is not a database", ("{garbage_study}",)),
    Refusal(DASHBOARD, "best.yaml", Form.CORRUPT, "best.yaml cannot be read", ("{bad_best}",)),
    Refusal(DASHBOARD, "best.yaml", Form.MISSING, "journal:{tmp}/no_dir/journal.log cannot be read",
            ("{journal_best}",)),
    Refusal(DASHBOARD, "--port", Form.WRONG_TYPE, "--port 'abc' is not a port", ("{garbage_study}", "--port", "abc")),
    Refusal(DASHBOARD, "--port", Form.TWO_PROCESSES, "--port {busy} cannot be used",
            ("{garbage_study}", "--port", "{busy}")),
    # litlab mlflow-ui: checked before the server starts
    Refusal(MLFLOW_UI, "--store", Form.MISSING, "--store {tmp}/nope.db: no such file", ("--store", "{tmp}/nope.db")),
    Refusal(MLFLOW_UI, "--store", Form.CORRUPT, "cannot be read as an MLflow store: file is not a database",
            ("--store", "{garbage}")),
    Refusal(MLFLOW_UI, "--store", Form.WRONG_TYPE, "cannot be read as an MLflow store: no such table: experiments",
            ("--store", "{other_db}")),
    Refusal(MLFLOW_UI, "--store", Form.LOCKED, "cannot be read as an MLflow store: database is locked",
            ("--store", "{locked_store}")),
    Refusal(MLFLOW_UI, "--port", Form.WRONG_TYPE, "--port 'abc' is not a port", ("--port", "abc")),
    Refusal(MLFLOW_UI, "--port", Form.OUT_OF_RANGE, "--port '70000' is not a port", ("--port", "70000")),
    Refusal(MLFLOW_UI, "--port", Form.TWO_PROCESSES, "--port {busy} cannot be used", ("--port", "{busy}")),
]  # fmt: skip

HOLD = f"""
import fcntl, os, sys, time
fd = os.open(os.path.join(sys.argv[1], {LOCK!r}), os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.pwrite(fd, f"{{os.getpid()}}\\n".encode(), 0)
print("held", flush=True)
time.sleep(600)
"""  # another sweep, running: it holds the sweep dir's lock as litlab.sweeps.lock does


def job(sweep: Path, num: int, metrics: str | None, overrides: str | None = None) -> str:
    """A job dir in `sweep`: metrics.json and .hydra/overrides.yaml as given (None: not written)."""
    (sweep / str(num) / ".hydra").mkdir(parents=True)
    if metrics is not None:
        (sweep / str(num) / "metrics.json").write_text(metrics)
    if overrides is not None:
        (sweep / str(num) / ".hydra" / "overrides.yaml").write_text(overrides)
    return str(sweep)


def sweeps(tmp: Path) -> dict[str, str]:
    """An earlier sweep of other jobs (seed=7, seed=8), and copies of it with job 1 broken."""
    other = tmp / "other_sweep"
    record = {"status": "completed", "monitor": "val/loss", "mode": "min", "val": {"val/loss": 0.5},
              "test": {"test/loss": 0.6}}  # fmt: skip
    for num, seed in ((0, 7), (1, 8)):
        job(other, num, json.dumps({**record, "overrides": [f"seed={seed}"]}))
    (other / "sweep_plan.json").write_text(json.dumps({"jobs": {"0": ["seed=7"], "1": ["seed=8"]}}))
    whole = (other / "1" / "metrics.json").read_text()
    names = {"other_sweep": str(other)}
    broken = {"corrupt_job": ("{'status': 'comp", None), "empty_job": ("", None), "half_job": (whole[:40], None),
              "list_job": ('["completed"]', None), "started_job": (None, "- seed=8\n- [unclosed")}  # fmt: skip
    for name, (metrics, overrides) in broken.items():
        shutil.copytree(other / "0", tmp / name / "0")
        names[name] = job(tmp / name, 1, metrics, overrides)
    return names


def studies(tmp: Path, garbage: Path) -> dict[str, str]:
    """Optuna sweep dirs whose study cannot be read: a garbage optuna.db, a best.yaml that is not
    YAML, and one naming a journal in a dir that does not exist."""
    made = {name: tmp / name for name in ("garbage_study", "bad_best", "journal_best")}
    for folder in made.values():
        folder.mkdir()
    shutil.copy(garbage, made["garbage_study"] / "optuna.db")
    (made["bad_best"] / "best.yaml").write_text("storage: [unclosed\n")
    (made["journal_best"] / "best.yaml").write_text(f"storage: journal:{tmp}/no_dir/journal.log\n")
    return {name: str(path) for name, path in made.items()}


def stores(tmp: Path) -> dict[str, str]:
    """An SQLite file that is no MLflow store, and a copy of a store's tables (an empty
    `experiments` is what mlflow_ui.py reads) locked by another writer in the `locked` fixture."""
    with sqlite3.connect(tmp / "other.db") as db:
        db.execute("CREATE TABLE runs (id TEXT)")
    with sqlite3.connect(tmp / "store.db") as db:
        db.execute("CREATE TABLE experiments (name TEXT)")
    return {"other_db": str(tmp / "other.db"), "locked_store": str(tmp / "store.db")}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Iterator[tuple[dict[str, str], Path]]:
    """Every `{name}` a row names, a sweep dir another process holds, a port another server holds,
    a read-only and a full disk ("" where tmpfs cannot be mounted here)."""
    tmp = tmp_path_factory.mktemp("doors_sweeps")
    (tmp / "garbage.db").write_bytes(b"not an SQLite database\n" * 40)
    (tmp / "a_file").write_text("a file\n")
    (tmp / "empty_dir").mkdir()
    (tmp / "busy_sweep").mkdir()
    names = {"tmp": str(tmp), "garbage": str(tmp / "garbage.db"), "a_file": str(tmp / "a_file"),
             "empty_dir": str(tmp / "empty_dir"), "busy_sweep": str(tmp / "busy_sweep"),
             **sweeps(tmp), **studies(tmp, tmp / "garbage.db"), **stores(tmp)}  # fmt: skip
    disks = tmp_path_factory.mktemp("sweep_disks")
    names["ro"] = str(disks / "ro") if mount(disks / "ro") else ""
    if names["ro"]:
        read_only(disks / "ro")
    names["full"] = str(disks / "full") if mount(disks / "full") else ""
    if names["full"]:
        fill(disks / "full", leave=0)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    locked = sqlite3.connect(names["locked_store"], isolation_level=None)
    locked.execute("BEGIN EXCLUSIVE")  # a writer mid-transaction: readers wait, then give up
    with started([sys.executable, "-c", HOLD, names["busy_sweep"]], stdout=subprocess.PIPE, text=True) as (holder,):
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield {**names, "busy": str(busy.getsockname()[1]), "holder": str(holder.pid)}, tmp
    locked.close()
    busy.close()
    for disk in ("ro", "full"):
        unmount(disks / disk)


def command_line(row: Refusal, names: dict[str, str], tmp_path: Path) -> list[str]:
    """The row's arguments (after the verb of a `litlab VERB` door); a sweep's then get the shrunk run's, and a
    fresh sweep dir unless the row gives one."""
    args = [arg.format(**names) for arg in row.args]
    if not row.door.startswith("train.py"):
        return [*row.door.split()[1:], *args]
    where = [] if any(a.startswith("hydra.sweep.dir=") for a in args) else [f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    return [*args, *SHRINK, *where]


@pytest.mark.parametrize("row", as_params(REFUSALS))
def test_a_hostile_sweep_input_is_refused_in_one_line(files, cli, tmp_path, row):
    names, tmp = files
    assert_refused_on_disks(cli, row, command_line(row, names, tmp_path), names, tmp, on_disk=[])


def test_a_broken_sweep_log_does_not_stop_the_report(files, cli, tmp_path):
    """sweep.log is for people (the report reads each job's metrics.json): garbage in it changes nothing."""
    names, _ = files
    sweep = Path(shutil.copytree(names["other_sweep"], tmp_path / "sweep"))
    (sweep / "sweep.log").write_bytes(b"\x00\xff half a line")
    code, out, err = cli(*REPORT.split(), str(sweep))
    assert code == 0, err[-2000:]
    assert "2 jobs: 2 completed" in (sweep / "report.md").read_text()
    assert (sweep / "sweep.log").read_bytes() == b"\x00\xff half a line"


class HoldUntil(L.Callback):
    """Holds a job at the start of its training until the file `path` exists (at most 240 s): the
    sweep is then surely running while a test starts another one beside it."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        deadline = time.monotonic() + 240
        while not self.path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.mark.e2e
@pytest.mark.slow  # a sweep of two jobs and a second one refused, in processes of their own: ~20 s
def test_a_second_sweep_into_a_running_sweeps_dir_is_refused_and_the_first_finishes(tmp_path):
    sweep, go = tmp_path / "sweep", tmp_path / "go"
    hold = ["+callbacks.hold._target_=tests.test_doors_sweeps.HoldUntil", f"+callbacks.hold.path={go}"]
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", "seed=1,2", *QUICK, "logger=none", *hold,
           f"hydra.sweep.dir={sweep}"]  # fmt: skip
    with (
        open(tmp_path / "first.err", "w") as err,
        started(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err) as (first,),
    ):
        deadline = time.monotonic() + 120
        while not (sweep / LOCK).exists():  # the first sweep has started
            assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "first.err").read_text()[-3000:]
            time.sleep(0.1)
        second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        go.touch()  # the first sweep's jobs may go on
        assert_refused(
            second.returncode, second.stdout, second.stderr, f"is in use by another sweep (process {first.pid}@"
        )
        assert first.wait(timeout=240) == 0, (tmp_path / "first.err").read_text()[-3000:]
    lines = (sweep / "sweep.log").read_text().splitlines()
    assert len(lines) == 2 and all(" completed " in line for line in lines), lines  # each job once, by the first
    assert not (sweep / LOCK).exists()


def test_the_report_s_rows_are_every_job_dir_and_every_planned_job_and_a_foreign_file_is_named(tmp_path):
    """Rows of a sweep dir read in this process: a finished job (its record), a started one (Hydra's
    overrides.yaml only), one of the plan that never started; then each file litlab did not write refused
    in one line naming it."""
    write_plan(tmp_path, [["lr=0.1", "optuna.trial=0"], ["lr=0.2"], ["lr=0.3", "hparams_search=x"]])
    done = RunRecord("completed", overrides=["lr=0.1", "optuna.trial=0"], test={"test/acc": 0.9}, monitor="val/acc",
                     mode="max", wall_time_s=1.5)  # fmt: skip
    done.write(tmp_path / "0")
    (tmp_path / "1" / ".hydra").mkdir(parents=True)
    overrides = tmp_path / "1" / ".hydra" / "overrides.yaml"
    overrides.write_text("- lr=0.2\n")
    rows = {row["job"]: row for row in job_rows(tmp_path)}
    assert list(rows) == ["0", "1", "2"]
    assert rows["0"] == {"job": "0", "status": "completed", "params": {"lr": "0.1"}, "metrics": {"test/acc": 0.9},
                         "monitor": "val/acc", "mode": "max", "wall_time_s": 1.5, "error": ""}  # fmt: skip
    assert (rows["1"]["status"], rows["1"]["params"]) == ("unfinished", {"lr": "0.2"})
    assert rows["2"] == {"job": "2", "status": "not started", "params": {"lr": "0.3"}, "metrics": {},
                         "monitor": None, "mode": None, "wall_time_s": None,
                         "error": "never started: lr=0.3 hparams_search=x"}  # fmt: skip
    foreign = [
        (overrides, b"lr: 0.2\n", "cannot be read: not a list of overrides;"),
        (overrides, b"\xff\xfe[", "cannot be read: 'utf-8' codec can't decode byte 0xff"),
        (tmp_path / "0" / "metrics.json", b"{", "cannot be read: Expecting property name"),
    ]
    for path, content, says in foreign:
        path.write_bytes(content)
        with pytest.raises(UserError) as refused:
            job_rows(tmp_path)
        assert str(refused.value).startswith(f"{path} {says}")
        assert str(refused.value).endswith("out of the sweep dir (or restore the file) and run the report again")
    assert str(unreadable(overrides, OSError())).startswith(f"{overrides} cannot be read: OSError;")  # no message


@pytest.mark.slow
def test_a_search_s_workers_share_a_sweep_dir_a_grid_sweep_does_not_and_a_dead_owner_s_lock_is_taken_over(
    tmp_path, caplog
):
    me = f"{os.getpid()}@{socket.gethostname()}"
    refused = rf"is in use by another sweep \(process {me}\)"
    with ExitStack() as workers:  # two workers of one search
        workers.enter_context(sweep_lock(tmp_path, shared=True))
        workers.enter_context(sweep_lock(tmp_path, shared=True))
        with pytest.raises(UserError, match=refused), sweep_lock(tmp_path):
            pass  # a grid sweep
    assert not (tmp_path / LOCK).exists()  # the last worker out removed it
    with ExitStack() as grid:
        grid.enter_context(sweep_lock(tmp_path))
        with pytest.raises(UserError, match=refused), sweep_lock(tmp_path, shared=True):
            pass  # a search's worker
        assert (tmp_path / LOCK).read_text() == f"{me}\n"
    (tmp_path / LOCK).write_text("4242@elsewhere\n")  # a sweep killed with -9 left its file, and no lock
    with caplog.at_level(logging.WARNING, logger="litlab.sweeps.lock"), sweep_lock(tmp_path):
        assert (tmp_path / LOCK).read_text() == f"{me}\n"
    assert "was left by process 4242@elsewhere, which ended without releasing it: taking it over" in caplog.text


@pytest.mark.slow  # two sweep processes
def test_a_grid_sweep_killed_with_9_leaves_its_lock_file_which_the_same_command_takes_over(tmp_path):
    sweep_dir = tmp_path / "grid"
    command = [sys.executable, str(ROOT / "train.py"), *GRID, *QUICK, "logger=none", f"hydra.sweep.dir={sweep_dir}"]
    with started(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as (killed,):
        owner = f"{killed.pid}@{socket.gethostname()}\n"
        deadline = time.monotonic() + 120
        while not ((sweep_dir / LOCK).is_file() and (sweep_dir / LOCK).read_text() == owner):
            assert killed.poll() is None and time.monotonic() < deadline, "the sweep never took its lock"
            time.sleep(0.05)
        killed.kill()  # SIGKILL: no cleanup, the file stays (the kernel drops the lock)
        killed.wait(timeout=30)
    assert (sweep_dir / LOCK).read_text() == owner
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    said = f"{sweep_dir / LOCK} was left by process {owner.strip()}, which ended without releasing it: taking it over"
    assert said in again.stdout + again.stderr
    assert [row["status"] for row in job_rows(sweep_dir)] == ["completed", "completed"]
    assert not (sweep_dir / LOCK).exists()


def test_the_report_s_rows_say_how_each_job_ended_in_job_number_order(tmp_path):
    RunRecord("interrupted", signal="SIGTERM", epochs_completed=3, overrides=["lr=0.1"]).write(tmp_path / "2")
    RunRecord("interrupted", signal="SIGINT", epochs_completed=1, resume="litlab train ckpt_path=x",
              overrides=["lr=0.2"]).write(tmp_path / "10")  # fmt: skip
    RunRecord("pruned", pruned_at_epoch=4, monitor="val/acc", val={"val/acc": 0.5}, overrides=["lr=0.3"]).write(
        tmp_path / "9"
    )
    (tmp_path / "9" / ".hydra").mkdir()
    (tmp_path / "9" / ".hydra" / "overrides.yaml").write_text("not: a list")  # unread: the record has them
    rows = job_rows(tmp_path)
    assert [row["job"] for row in rows] == ["2", "9", "10"]  # by number, not as text
    assert [row["error"] for row in rows] == [
        "interrupted by SIGTERM after 3 epoch(s)",
        "pruned at epoch 4 (val/acc=0.5)",
        "interrupted by SIGINT after 1 epoch(s); resume: litlab train ckpt_path=x",
    ]
    assert rows[1]["params"] == {"lr": "0.3"}
    (tmp_path / "file").write_text("x")
    for given, what in ((tmp_path / "file", "a file, not a dir"), (tmp_path / "gone", "no such dir")):
        with pytest.raises(UserError) as refused:
            job_rows(given)
        assert str(refused.value).startswith(f"{given}: {what}; give the dir of a multirun or an Optuna sweep")


@pytest.mark.parametrize(
    ("content", "named"), [(b"4242@elsewhere\n", "4242@elsewhere"), (b"", "?"), (b"\xff7", "\ufffd7")]
)
def test_a_sweep_dir_whose_lock_another_sweep_holds_is_refused_naming_the_holder(tmp_path, content, named):
    """What the lock file says of its holder, whatever it holds: a pid, nothing yet, bytes not UTF-8."""
    import fcntl

    holder = os.open(tmp_path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)  # another sweep's open file
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        os.write(holder, content)
        with pytest.raises(UserError) as refused, sweep_lock(tmp_path):
            pass
        assert str(refused.value).startswith(
            f"hydra.sweep.dir={str(tmp_path)!r} is in use by another sweep (process {named}); wait for it to end"
        )
    finally:
        os.close(holder)
    with sweep_lock(tmp_path):  # released: the next sweep takes it
        assert (tmp_path / LOCK).exists()
    assert not (tmp_path / LOCK).exists()


def test_a_lock_is_on_the_sweep_dir_s_lock_file_only_while_that_file_is_the_one_opened(tmp_path):
    path = tmp_path / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert same_file(path, fd)
        path.unlink()  # the sweep that held it ended: a lock on this file guards nothing
        assert not same_file(path, fd)
        path.write_text("")  # another sweep made a new one
        assert not same_file(path, fd)
    finally:
        os.close(fd)


def test_a_plan_file_that_is_not_litlab_s_is_no_plan(tmp_path):
    for text in ('{"jobs": [["lr=0.1"]]}', '{"jobs": {"0": 1}}', '{"other": 1}', "[]", "{"):
        (tmp_path / PLAN).write_text(text)
        assert read_plan(tmp_path) == {}
    write_plan(tmp_path, [["lr=0.1"], ["lr=0.2"]])
    assert read_plan(tmp_path) == {"0": ["lr=0.1"], "1": ["lr=0.2"]}
