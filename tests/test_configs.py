"""Every option of every config group composes and instantiates."""

import io

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from hydra_plugins.litlab_sweepers.optuna_sweeper import OptunaSweeper
from litlab.run.build import build_callbacks, build_datamodule, build_loggers, build_model, resolve_cfg_monitor
from tests.helpers.config import CONF
from tests.helpers.data_files import write_image_folder, write_image_sets

# A dataset each model can train on, for groups that need a model to instantiate.
MODEL_DATA = {
    "backbone": "digits",
    "cnn": "digits",
    "linear_regression": "diabetes",
    "logistic_regression": "breast_cancer",
    "mlp": "digits",
}


def options(group: str) -> list[str]:
    """The options a user picks: every file of the group's folder."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir())  # a new group is covered without edits here
CASES = [(g, o) for g in GROUPS for o in options(g)]
REQUIRED = {"data", "model", "optimizer", "scheduler", "trainer", "callbacks", "logger", "experiment", "debug"}


def test_every_group_has_options():
    assert set(GROUPS) >= REQUIRED
    assert all(options(g) for g in GROUPS)
    assert set(options("model")) == set(MODEL_DATA)
    assert {"sgd", "adam", "adamw", "rmsprop", "adagrad"} <= set(options("optimizer"))
    assert {"none", "step", "cosine", "onecycle", "plateau"} <= set(options("scheduler"))


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_option_composes_and_instantiates(make_cfg, tmp_path, group, option):
    extra = []
    if group == "data" and option == "csv":
        csv = tmp_path / "t.csv"
        csv.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
        extra = [f"data.path={csv}", "data.target=y"]
    if group == "data" and option == "image_folder":
        extra = [f"data.path={write_image_folder(tmp_path / 'pictures', per_class=20)}", f"data.cache_dir={tmp_path}"]
    if group == "data" and option == "image_csv":
        root = write_image_folder(tmp_path / "pictures", per_class=20)
        rows = [f"{f.relative_to(root)},{f.parent.name}\n" for f in sorted(root.rglob("*.png"))]
        (root / "labels.csv").write_text("file,label\n" + "".join(rows))
        extra = [f"data.path={root / 'labels.csv'}", "data.target=label", f"data.cache_dir={tmp_path}"]
    if group == "model":
        extra = [f"data={MODEL_DATA[option]}"]
    cfg = make_cfg(f"{group}={option}", *extra)
    if "download" in cfg.data:  # an image set: tiny files in torchvision's layout, never a download
        cfg.paths.data_dir = str(write_image_sets(tmp_path / "data"))
        cfg.data.download = False

    dm = build_datamodule(cfg)
    dm.setup()
    # What goes into a checkpoint must load back with torch.load(weights_only=True).
    buf = io.BytesIO()
    torch.save({"state": dm.state_dict(), "hparams": dict(dm.hparams)}, buf)
    buf.seek(0)
    assert torch.load(buf, weights_only=True)["state"]["spec"] == dm.spec.to_state()
    model = build_model(cfg, dm)
    resolve_cfg_monitor(cfg, model)
    x, _ = next(iter(dm.train_dataloader()))
    assert model(x).shape == (len(x), dm.spec.num_outputs)

    optimizer = instantiate(cfg.optimizer)(model.parameters())
    assert optimizer.param_groups[0]["lr"] == cfg.optimizer.lr
    if group == "scheduler":  # SupervisedModule.configure_optimizers, one-cycle and plateau included, for real
        short = L.Trainer(accelerator="cpu", fast_dev_run=2, logger=False, enable_progress_bar=False)
        short.fit(model, datamodule=dm)
        assert short.lr_scheduler_configs or option == "none"

    if cfg.get("tune"):  # tune=lr_find: its settings are a class's arguments too
        assert instantiate(cfg.tune).num_training == cfg.tune.num_training
    loggers = build_loggers(cfg)
    callbacks = build_callbacks(cfg, has_logger=bool(loggers))
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        pytest.skip("composed, and data and model built; a Trainer with accelerator=gpu needs a GPU")
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    assert trainer.default_root_dir == str(tmp_path)  # the run writes into its own dir


def test_unknown_option_lists_valid_ones(make_cfg):
    with pytest.raises(MissingConfigException) as e:
        make_cfg("model=resnet")
    assert "mlp" in str(e.value) and "cnn" in str(e.value)


HYDRA_PLUGINS = {"sweeper": Sweeper, "launcher": Launcher}
PLUGIN_CASES = [(kind, p.stem) for kind in HYDRA_PLUGINS for p in sorted((CONF / "hydra" / kind).glob("*.yaml"))]


@pytest.mark.parametrize(("kind", "option"), PLUGIN_CASES, ids=[f"hydra/{k}={o}" for k, o in PLUGIN_CASES])
def test_sweeper_and_launcher_options_name_installed_plugins(kind, option):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra/{kind}={option}"], return_hydra_config=True)
    assert issubclass(get_class(cfg.hydra[kind]._target_), HYDRA_PLUGINS[kind])


def test_hparams_search_uses_the_optuna_sweeper_with_storage_in_the_sweep_dir():
    for name in options("hparams_search"):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train", overrides=[f"hparams_search={name}"], return_hydra_config=True)
        sweeper = cfg.hydra.sweeper
        assert sweeper._target_.endswith("optuna_sweeper.OptunaSweeper") and sweeper.params
        assert sweeper.storage == f"sqlite:///{cfg.hydra.sweep.dir}/optuna.db"
        # auto: the way the monitored metric is better, as the metric declares it (val/acc: maximize)
        assert sweeper.direction == "auto" and cfg.monitor.metric == "val/acc"
        assert OptunaSweeper.objective_direction(sweeper.direction, cfg.monitor) == "maximize"


@pytest.mark.parametrize(
    ("overrides", "optimizer", "batch_size", "precision"),
    [
        (["model=logistic_regression"], "LBFGS", "full", "64-true"),  # the linear models' own default
        (["model=linear_regression", "data=diabetes"], "LBFGS", "full", "64-true"),
        (["model=logistic_regression", "optimizer=adam"], "Adam", 64, "32-true"),  # the command line wins
        (["model=mlp", "optimizer=lbfgs"], "LBFGS", "full", "64-true"),  # any model with L-BFGS
        (["model=logistic_regression", "data.batch_size=64"], "LBFGS", 64, "64-true"),
        (["experiment=synthetic_linear"], "Adam", 32, "32-true"),
        (["model=mlp"], "Adam", 64, "32-true"),
    ],
)
def test_lbfgs_brings_its_batch_and_precision_without_the_optimizer_file_writing_them(
    overrides, optimizer, batch_size, precision
):
    lbfgs = OmegaConf.load(CONF / "optimizer" / "lbfgs.yaml")
    assert "data" not in lbfgs and "trainer" not in lbfgs  # the optimizer file stays in its lane
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    assert cfg.optimizer._target_.endswith(optimizer)
    assert (cfg.data.batch_size, cfg.trainer.precision) == (batch_size, precision)
