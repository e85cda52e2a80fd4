"""What TensorBoard shows of a run: its name, its hyperparameters and final metrics (HParams
tab), and a sweep's experiment summary, which makes HParams open on the swept columns.

Layout, for `tensorboard --logdir <sweep dir>` (or `<run dir>`):
  <sweep dir>/<name>/       the run's curves (train/, val/, test/ tags) and its HParams session
  <sweep dir>/<name>/best/  the final metrics of the best checkpoint (val/acc, test/acc, ...); for
                            a pruned trial the last epoch's val/ ones; for an Optuna trial `epochs`
  <sweep dir>/events...     the experiment summary, written when the sweep ends
<name> is what sets the run apart: its swept overrides (model=mlp,optimizer.lr=0.01), in an
Optuna search its trial and sampled values (trial_3,lr=0.00123,dropout=0.25), or for a single run
its overrides, or `default`.
"""

import json
import time
from collections.abc import Mapping
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, ListConfig, OmegaConf
from tensorboard.plugins.hparams import summary_v2 as hp
from torch.utils.tensorboard import SummaryWriter
from typing_extensions import override

from litlab.files.run_record import RECORD, RunRecord
from litlab.hydra_job import in_multirun, job_overrides, parse_overrides
from litlab.values import is_number

FINAL = "best"  # the sub-run with the best checkpoint's final metrics
CHOICE_GROUPS = ("data", "model", "optimizer", "scheduler", "trainer", "experiment")
SETTINGS = ("model", "optimizer", "scheduler")  # every value of these groups is a hyperparameter
NOT_SETTINGS = ("compile",)  # model keys that do not change what is learned
MAX_NAME = 60  # TensorBoard shows run names up to about this many characters in full
TRIAL = "optuna.trial"  # the override the Optuna sweeper gives each of its jobs: the trial's number
EPOCHS = "epochs"  # best/epochs: the epochs an Optuna trial trained, pruned or not (litlab.sweeps.pruning)

Value = bool | int | float | str


def excluded_keys() -> set[str]:
    """Overrides that name no setting (paths, progress bar...): hydra.job.config.override_dirname."""
    if not HydraConfig.initialized():
        return set()
    return set(HydraConfig.get().job.config.override_dirname.exclude_keys)


def swept_keys() -> set[str]:
    """The keys a multirun varies: its `-m` overrides with several values (as the sweep's
    multirun.yaml keeps them) and the Optuna search space (hydra.sweeper.params)."""
    hc = HydraConfig.get()
    keys = set((hc.sweeper.get("params") or {}).keys())
    saved = Path(hc.sweep.dir) / "multirun.yaml"
    if saved.exists():
        task = OverridesParser.create().parse_overrides(list(OmegaConf.load(saved).hydra.overrides.task))
        keys |= {o.key_or_group for o in task if o.is_sweep_override()}
    return keys


def run_name() -> str:
    """The run's overrides that set it apart, `k=v,k=v`: in a multirun the swept ones, else all
    but those naming no setting; `default` if none. Keys shortened to their last part if long.
    An Optuna trial: `trial_<n>,` then its sampled values, keys always short and floats to 3
    significant figures (Optuna samples 17 digits)."""
    given = parse_overrides(job_overrides())
    excluded = excluded_keys()
    overrides = {k: v for k, v in given.items() if k not in excluded}
    if in_multirun():
        swept = swept_keys()
        overrides = {k: v for k, v in overrides.items() if k in swept}
    if TRIAL in given:
        parser = OverridesParser.create()
        values = {k: short_value(parser.parse_override(f"{k}={v}").value(), v) for k, v in overrides.items()}
        name = ",".join([f"trial_{given[TRIAL]}", *(f"{k}={v}" for k, v in short_keys(values).items())])
    else:
        name = ",".join(f"{k}={v}" for k, v in overrides.items())
        if len(name) > MAX_NAME:
            name = ",".join(f"{k}={v}" for k, v in short_keys(overrides).items())
    return name.replace("/", "_")[: MAX_NAME * 2] or "default"


def short_keys(overrides: dict[str, str]) -> dict[str, str]:
    """Each key by its last part (`optimizer.lr` -> `lr`), unless two keys share it."""
    last = [k.rsplit(".", 1)[-1] for k in overrides]
    return {(s if last.count(s) == 1 else k): v for (k, v), s in zip(overrides.items(), last, strict=True)}


def short_value(value: object, text: str) -> str:
    """An override's parsed `value` with its floats to 3 significant figures (0.0012345678 ->
    0.00123, 123456.0 -> 1.23e+05, [64,64] -> [64, 64]); other values as written (`text`)."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ", ".join(short_value(v, str(v)) for v in value) + "]"
    return text


def tensorboard_tag(key: str) -> str:
    """TensorBoard orders its charts by tag: Lightning's epoch counter and the learning-rate
    monitor's `lr-<Optimizer>` go under trainer/, after the train/ metrics rather than before them."""
    return f"trainer/{key}" if key == "epoch" or key.startswith("lr-") else key


class RunLogger(TensorBoardLogger):
    """Lightning's TensorBoardLogger, writing to `<sweep dir>/<run name>` in a multirun and to
    `<output_dir>/<run name>` otherwise (see the module docstring). A name already taken (a
    resumed sweep repeating a trial) gets the job number appended. Metrics logged after fit
    (the best checkpoint's validate and test) are left out: the curves end where training
    ended, and those results go to the best/ run (log_session)."""

    def __init__(self, output_dir: str) -> None:
        multirun = in_multirun()
        root = Path(HydraConfig.get().sweep.dir) if multirun else Path(output_dir)
        name = run_name() if HydraConfig.initialized() else "default"
        if multirun and (root / name).exists():
            name = f"{name}#{HydraConfig.get().job.num}"
        super().__init__(save_dir=str(root), name="", version=name, default_hp_metric=False)
        self.fit_ended = False

    @override
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if not self.fit_ended:
            super().log_metrics({tensorboard_tag(k): v for k, v in metrics.items()}, step)

    @override
    def finalize(self, status: str) -> None:  # Lightning calls this when fit (or a later stage) ends
        super().finalize(status)
        self.fit_ended = True


def as_value(value: object) -> Value:
    """A value as HParams shows it: booleans, numbers and strings as such, lists as `[64, 64]`."""
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, separators=(", ", ": ")) if isinstance(value, list | dict) else str(value)


def hparams(cfg: DictConfig, not_applying: set[str]) -> dict[str, Value]:
    """The run's hyperparameters: the option chosen in each group (model=mlp), the settings of
    its model, optimizer and scheduler, the batch size, the seed, and every value it overrides. Left out:
    `_target_`-style keys, paths and devices, and the model settings `not_applying` to this run
    (SupervisedModule.settings_not_applying, which the config line leaves out too)."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    found: dict[str, object] = {g: choices[g] for g in CHOICE_GROUPS if choices.get(g) not in (None, "none")}
    for group in SETTINGS:
        for key, value in (cfg.get(group) or {}).items():
            if not str(key).startswith("_") and key not in NOT_SETTINGS:
                found[f"{group}.{key}"] = value
    found["data.batch_size"], found["seed"] = cfg.data.get("batch_size"), cfg.get("seed")
    excluded = excluded_keys()
    for key, text in parse_overrides(job_overrides()).items():
        if key not in excluded and not key.startswith("hydra."):
            found[key] = OmegaConf.select(cfg, key, default=text) if key not in choices else text
    for key in not_applying:
        found.pop(f"model.{key}", None)
    return {k: as_value(v) for k, v in found.items() if v is not None}


def log_session(log_dir: str, params: dict[str, Value], final: dict[str, float], step: int) -> None:
    """The run's HParams session (its hyperparameters) in its run dir `log_dir`, and the best
    checkpoint's final metrics as scalars in `<log_dir>/best`: the val/ curves end where training ended."""
    with SummaryWriter(log_dir=log_dir) as writer:  # Lightning's own writer is closed after fit
        session = hp.hparams_pb(params, trial_id=Path(log_dir).name, start_time_secs=time.time())
        writer.file_writer.add_summary(session)
    log_final(log_dir, final, step)


def log_final(log_dir: str, final: Mapping[str, float], step: int) -> None:
    """Scalars in `<log_dir>/best`, one point each: what HParams shows as the run's metrics."""
    with SummaryWriter(log_dir=str(Path(log_dir) / FINAL)) as writer:
        for tag, value in final.items():
            writer.add_scalar(tag, value, global_step=step)


def domain(values: list[Value]) -> hp.Discrete | hp.RealInterval:
    """Discrete for categories, booleans and a few numbers; an interval for many numbers."""
    distinct = sorted(set(values), key=str)
    numbers = all(is_number(v) for v in distinct)
    if numbers and len(distinct) > 10:
        return hp.RealInterval(float(min(distinct)), float(max(distinct)))  # type: ignore[type-var]
    if numbers:
        return hp.Discrete([float(v) for v in distinct])
    if all(isinstance(v, bool) for v in distinct):
        return hp.Discrete(distinct)
    return hp.Discrete([str(v) for v in distinct])


def write_experiment(sweep_dir: Path, swept: list[str], sessions: list[dict[str, Value]], metrics: list[str]) -> None:
    """TensorBoard's experiment summary at the sweep root: the `swept` hyperparameters with their
    domains, and `metrics` (final values, in each run's `best/`). It replaces the one an earlier
    run of the sweep (a resumed study) wrote: TensorBoard would keep reading the first."""
    params = [hp.HParam(k, domain([s[k] for s in sessions if k in s])) for k in swept if any(k in s for s in sessions)]
    infos = [hp.Metric(m, group=FINAL, display_name=m) for m in metrics]
    for old in sweep_dir.glob("events.out.tfevents.*"):  # the runs' own events are in their subdirs
        old.unlink()
    with SummaryWriter(log_dir=str(sweep_dir)) as writer:
        writer.file_writer.add_summary(hp.hparams_config_pb(params, infos))


def summary_metrics(records: list[RunRecord]) -> list[str]:
    """The metric columns of a sweep's HParams, from its jobs' records, in this order: the
    monitored metric (the objective: HParams colours the lines by the first column and ticks the
    first five), an Optuna search's `epochs`, then the val and the test names the jobs logged.
    Test names only if every job has them: a pruned trial is not tested, and parallel coordinates
    leave out a run that lacks the value of any ticked column."""
    monitor = [r.monitor for r in records if r.monitor][:1]
    epochs = [EPOCHS] if any(TRIAL in parse_overrides(r.overrides) for r in records) else []
    val = [k for r in records for k in r.val or {}]
    test = [k for r in records for k in r.test or {}] if all(r.test for r in records) else []
    return list(dict.fromkeys([*monitor, *epochs, *val, *test]))


def write_sweep_summary(sweep_dir: Path, swept: list[str]) -> None:
    """The experiment summary of a finished sweep over the keys `swept`, from the records of
    its jobs that logged a session (pruned Optuna trials too): only the metrics they logged, in
    summary_metrics' order. TensorBoard applies the first summary it finds to every run under its
    logdir: with `--logdir` on a parent dir (logs/), the runs of other sweeps and single runs show
    under this sweep's columns, and those of another task only the metrics they share with it
    (val/loss, test/loss). Open a sweep's own dir to compare its runs."""
    records = [RunRecord.load(p) for p in sorted(sweep_dir.glob(f"*/{RECORD}"))]
    logged = [r for r in records if r.hparams]
    if logged:
        write_experiment(sweep_dir, swept, [r.hparams or {} for r in logged], summary_metrics(logged))
