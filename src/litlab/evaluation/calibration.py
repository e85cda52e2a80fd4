"""Temperature scaling (Guo et al. 2017): one scalar T > 0 divides a classifier's logits before
softmax (sigmoid for binary), fitted to minimise the negative log-likelihood of the validation split.
argmax(z / T) = argmax(z) for any T > 0: predictions, and so accuracy, stay as they were; only how
confident they are changes. `evaluate.py calibrate=true` fits T and writes it into a new checkpoint,
whose `SupervisedModule.temperature` then applies it wherever the model predicts."""

import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from litlab import files
from litlab.data_spec import Task
from litlab.errors import UserError

# T is searched in this range: beyond it the validation split says nothing usable (a split predicted
# all right lowers the NLL without end as T -> 0), and the search stops at the bound instead.
BOUNDS = (1e-2, 1e2)
TOLERANCE = 1e-7  # on log T: T to ~7 significant digits
GOLDEN = (math.sqrt(5) - 1) / 2


def _binary_nll(z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(z[:, 0], targets.double(), reduction="none")


def _multiclass_nll(z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(z, targets.long(), reduction="none")


NLL: dict[Task, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    Task.BINARY: _binary_nll,
    Task.MULTICLASS: _multiclass_nll,
}


def example_nll(task: Task, logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """(N,) the negative log-likelihood of each example's true class under softmax (sigmoid) of
    `logits / temperature`; float64, from the logits (N, K), so a confident mistake stays finite."""
    return NLL[task](logits.double() / temperature, targets)


def golden_section(f: Callable[[float], float], lo: float, hi: float, tolerance: float) -> float:
    """The x in [lo, hi] minimising `f`, which must be unimodal there, to within `tolerance`."""
    a, b = lo, hi
    c, d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tolerance:
        if fc <= fd:  # the minimum lies in [a, d]
            b, d, fd = d, c, fc
            c = b - GOLDEN * (b - a)
            fc = f(c)
        else:  # ... in [c, b]
            a, c, fc = c, d, fd
            d = a + GOLDEN * (b - a)
            fd = f(d)
    return (a + b) / 2


def fit_temperature(task: Task, logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The T in BOUNDS minimising the mean NLL of `logits / T` (N, K) against `targets` (N,).

    A bounded golden-section search on log T rather than L-BFGS: the NLL is convex in 1/T (a
    log-sum-exp of functions linear in 1/T, less a linear one), so unimodal in log T, and the
    bracketing search finds its global minimum with no step size or line search to tune; the
    bounds keep T > 0 and finite. ~40 evaluations of an (N, K) sum. A minimum on a bound (a val split
    predicted all right: its NLL falls without end as T -> 0) is a UserError: no T is fitted."""
    if task not in NLL:
        raise UserError(f"calibrate=true applies to classifiers; this checkpoint's task is {task}")
    logits = logits.detach().double()

    def mean_nll(log_t: float) -> float:
        return float(example_nll(task, logits, targets, math.exp(log_t)).mean())

    lo, hi = math.log(BOUNDS[0]), math.log(BOUNDS[1])
    log_t = golden_section(mean_nll, lo, hi, TOLERANCE)
    if min(log_t - lo, hi - log_t) < 1e-3:
        raise UserError(at_bound(log_t < 0, logits, targets, task))
    return math.exp(log_t)


def at_bound(low: bool, logits: torch.Tensor, targets: torch.Tensor, task: Task) -> str:
    """Why no temperature fits: the val split's NLL falls on to one of BOUNDS."""
    n = len(targets)
    predicted = (logits[:, 0] > 0).long() if task is Task.BINARY else logits.argmax(1)
    wrong = int((predicted != targets).sum())
    why = (
        f"with {wrong} of its {n} rows predicted wrong it shows no over-confidence to correct, and T -> 0 would "
        "make every probability 0 or 1"
        if low
        else f"its {n} rows ({wrong} predicted wrong) are fitted best by uniform probabilities"
    )
    return (
        f"calibrate=true: the val split's NLL keeps falling as T -> {'0' if low else 'infinity'} (to the search's "
        f"bound {BOUNDS[0 if low else 1]}): {why}; no temperature fitted, nothing written. A larger val split "
        "(train with data.split=...) may hold the errors it needs"
    )


def write_calibrated(source: str | Path, target: str | Path, temperature: float) -> None:
    """A copy of checkpoint `source` whose model hyperparameter `temperature` is `temperature`,
    written whole to `target`; `source` itself is not touched."""
    ckpt = torch.load(source, map_location="cpu", weights_only=True)
    hparams = ckpt.get("hyper_parameters")
    if not isinstance(hparams, dict):
        raise UserError(f"{source}: the checkpoint holds no hyper_parameters to store the temperature in")
    hparams["temperature"] = float(temperature)
    files.write_with(target, lambda path: torch.save(ckpt, path))
