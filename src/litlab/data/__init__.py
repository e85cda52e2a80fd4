"""LightningDataModules, each a SplitDataModule: it splits one dataset, declares its task and serves
batches, cut from tensors held in memory or, for an image folder too large for memory, decoded
from the files."""

from litlab.data.arrays import Arrays
from litlab.data.base import SplitDataModule
from litlab.data.csv import CSVDataModule
from litlab.data.image_csv import ImageCSVDataModule
from litlab.data.image_folder import ImageFolderDataModule
from litlab.data.sklearn_sets import BreastCancerDataModule, DiabetesDataModule, DigitsDataModule
from litlab.data.synthetic import SyntheticRegressionDataModule
from litlab.data.torchvision_sets import CIFAR10DataModule, FashionMNISTDataModule, MNISTDataModule

__all__ = [
    "Arrays",
    "BreastCancerDataModule",
    "CIFAR10DataModule",
    "CSVDataModule",
    "DiabetesDataModule",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "ImageCSVDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "SplitDataModule",
    "SyntheticRegressionDataModule",
]
