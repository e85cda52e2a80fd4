"""Callbacks a test adds to the next in-process run's Trainer, to see what the run did inside."""

import lightning as L
import pytest
import torch

import litlab.run.build
import litlab.run.train

BUILD_TRAINER = litlab.run.build.build_trainer


def spy_on(monkeypatch: pytest.MonkeyPatch, spy: L.Callback) -> None:
    """Give the next run's Trainer the callback `spy` as well."""
    build = BUILD_TRAINER

    def with_spy(*args, extra_callbacks):
        return build(*args, extra_callbacks=[*extra_callbacks, spy])

    monkeypatch.setattr(litlab.run.train, "build_trainer", with_spy)


class ForwardDtypes(L.Callback):
    """The dtypes the Linear layers compute in while training: under bf16-mixed, autocast's bfloat16."""

    def __init__(self) -> None:
        self.dtypes: set[torch.dtype] = set()

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        def record(layer: torch.nn.Module, inputs, output: torch.Tensor) -> None:
            if layer.training:
                self.dtypes.add(output.dtype)

        for layer in pl_module.modules():
            if isinstance(layer, torch.nn.Linear):
                layer.register_forward_hook(record)
