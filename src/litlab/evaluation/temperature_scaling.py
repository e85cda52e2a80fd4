"""`evaluate.py calibrate=true`: a temperature fitted on the val split's logits
(litlab.evaluation.calibration), each split's calibration before and after it, and the checkpoint
that carries it."""

from pathlib import Path

import torch

from litlab.evaluation.calibration import example_nll, fit_temperature, write_calibrated
from litlab.evaluation.scores import Calibration, TemperatureScaling, calibration
from litlab.evaluation.split_outputs import SplitOutputs
from litlab.models import SupervisedModule


def calibration_at(model: SupervisedModule, outputs: SplitOutputs, temperature: float) -> Calibration:
    """The calibration of `outputs` with the model's logits divided by `temperature`."""
    probs = model.predict_outputs(outputs.logits, temperature)
    return calibration(probs, outputs.targets, example_nll(model.task, outputs.logits, outputs.targets, temperature))


def scale_temperature(
    model: SupervisedModule, splits: dict[str, SplitOutputs], ckpt_path: Path, target: Path
) -> TemperatureScaling:
    """T fitted on `splits["val"]`; every split's calibration with the checkpoint's own
    temperature and with T; the checkpoint `ckpt_path` with T, written to `target`. A temperature
    that cannot be fitted is a UserError before anything is written."""
    val = splits["val"]
    temperature = fit_temperature(model.task, val.logits, val.targets)
    before = {s: calibration_at(model, o, model.temperature) for s, o in splits.items()}
    after = {s: calibration_at(model, o, temperature) for s, o in splits.items()}
    for s, o in splits.items():  # argmax(z / T) = argmax(z): if accuracy moved, something else changed
        kept, scaled = (model.predict_outputs(o.logits, t).argmax(1) for t in (model.temperature, temperature))
        if not torch.equal(kept, scaled):
            raise RuntimeError(f"temperature scaling changed {int((kept != scaled).sum())} predictions of {s}")
    write_calibrated(ckpt_path, target, temperature)
    return TemperatureScaling(temperature, before, after, len(val.targets), str(target))
