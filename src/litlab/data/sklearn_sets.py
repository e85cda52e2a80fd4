"""scikit-learn's bundled datasets: no download, always available."""

from sklearn import datasets
from typing_extensions import override

from litlab.data.arrays import Arrays
from litlab.data.base import SplitDataModule
from litlab.data_spec import InputKind, Task


class DigitsDataModule(SplitDataModule):
    """1,797 handwritten digits as 1x8x8 images, 10 classes."""

    @override
    def load(self) -> Arrays:
        d = datasets.load_digits()
        x = d.images.reshape(-1, 1, 8, 8).astype("float32")  # (N, C, H, W), values 0..16
        return Arrays(x, d.target, Task.MULTICLASS, InputKind.IMAGE, list(d.target_names))


class BreastCancerDataModule(SplitDataModule):
    """569 tumours, 30 features, malignant vs benign."""

    @override
    def load(self) -> Arrays:
        d = datasets.load_breast_cancer()
        return Arrays(d.data, d.target, Task.BINARY, InputKind.TABLE, list(d.target_names), list(d.feature_names))


class DiabetesDataModule(SplitDataModule):
    """442 patients, 10 features, disease progression after one year (regression)."""

    @override
    def load(self) -> Arrays:
        d = datasets.load_diabetes()
        y = d.target.astype("float32")
        return Arrays(d.data, y, Task.REGRESSION, InputKind.TABLE, feature_names=list(d.feature_names))
