"""The package layout: imports go downward only, and checkpoints written before the move still load."""

import ast
import shutil
from pathlib import Path

import pytest
from omegaconf import open_dict

from litlab.run.evaluate import evaluate
from tests.helpers.config import ROOT, compose_cfg

SRC = ROOT / "src" / "litlab"
# Lower layers first: a module may import from its own layer and the layers before it, never after.
LAYERS = [
    {"errors", "values", "compat", "hydra_job", "arguments", "conf", "machine"},
    {"files", "ports", "data_spec"},  # the data contract: torch-free, read by the bundle runtime too
    {"checkpoints", "readers", "review", "weights"},  # weights: where a run's weights start, freeze, average
    {"data", "models", "runtime"},  # runtime: prediction from a bundle, without torch
    {"evaluation", "inference", "sweeps", "speed"},  # speed: the models' training step
    {"run"},  # the jobs and the command line
]


def layer_of(module: str) -> int:
    """`litlab.review.console` -> the index of the layer holding `review`."""
    top = module.split(".")[1]
    return next(i for i, names in enumerate(LAYERS) if top in names)


def litlab_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("litlab."):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("litlab.")]
    return found


def test_every_module_sits_in_a_layer_and_imports_only_downward():
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == SRC:
            continue
        module = "litlab." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        here = layer_of(module)
        upward += [f"{module} imports {m}" for m in litlab_imports(path) if layer_of(m) > here]
    assert not upward, upward


def room_layers() -> dict[str, int]:
    """Each room (a subpackage or top-level module) at 1 + the highest layer of the rooms it imports."""
    imports: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        room = path.relative_to(SRC).with_suffix("").parts[0]
        if room != "__init__":
            imports.setdefault(room, set()).update(m.split(".")[1] for m in litlab_imports(path))
    layers: dict[str, int] = {}

    def layer(room: str, seen: tuple[str, ...]) -> int:
        assert room not in seen, f"import circle: {' -> '.join((*seen, room))}"
        if room not in layers:
            layers[room] = 1 + max((layer(r, (*seen, room)) for r in imports[room] - {room}), default=0)
        return layers[room]

    for room in imports:
        layer(room, ())
    return layers


def test_rooms_stand_at_most_six_layers_high_without_circles():
    layers = room_layers()
    assert max(layers.values()) <= 6, sorted(layers.items(), key=lambda kv: kv[1])
    assert {room for room, n in layers.items() if n == 1} <= LAYERS[0]


def test_a_checkpoint_written_before_the_move_still_evaluates(tmp_path):
    """tests/data/breast_cancer_logistic_v1.ckpt names its classes by their import paths of then."""
    ckpt = tmp_path / "old.ckpt"
    shutil.copy(ROOT / "tests" / "data" / "breast_cancer_logistic_v1.ckpt", ckpt)
    cfg = compose_cfg(tmp_path / "eval", f"ckpt_path={ckpt}", config_name="eval", shrink=False)
    with open_dict(cfg):
        cfg.trainer.accelerator, cfg.trainer.enable_progress_bar = "cpu", False
    test = evaluate(cfg)["test"]
    # The figures the run printed when it wrote the checkpoint.
    assert test["test/acc"] == pytest.approx(0.9651, abs=5e-5)
    assert test["test/f1"] == pytest.approx(0.9629, abs=5e-5)
