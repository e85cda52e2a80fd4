"""LightningModules (training logic) wrapping plain nn.Module networks (nets.py)."""

from litlab.models.backbone import Backbone
from litlab.models.base import SupervisedModule
from litlab.models.cnn import CNN
from litlab.models.linear import LinearRegression, LogisticRegression
from litlab.models.mlp import MLP

__all__ = ["Backbone", "CNN", "MLP", "LinearRegression", "LogisticRegression", "SupervisedModule"]
