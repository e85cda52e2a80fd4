"""What runs and sweeps leave behind, read back: TensorBoard event files, a run's HParams session,
a sweep's HParams experiment summary, and each job's metrics.json."""

import json
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2


def events(folder: Path) -> EventAccumulator:
    """Every scalar, image and tensor of the event files in `folder`, loaded."""
    ea = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    return ea


def session_hparams(ea: EventAccumulator) -> dict[str, object]:
    """The hyperparameters of the run's HParams session, as TensorBoard reads them (bool, number, string)."""
    content = ea.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    return {k: getattr(v, v.WhichOneof("kind")) for k, v in start.session_start_info.hparams.items()}


def experiment_summary(sweep_dir: Path) -> tuple[set[str], set[str]]:
    """(hyperparameter names, metric names) of the experiment summary at a sweep's root."""
    content = events(sweep_dir).PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    return {h.name for h in experiment.hparam_infos}, {f"{m.name.group}:{m.name.tag}" for m in experiment.metric_infos}


def job_metrics(sweep_dir: Path) -> dict[str, dict]:
    """Each job's metrics.json in a sweep dir, by job dir name ("0", "1", ...)."""
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/metrics.json")}
