"""The thin trainer (pytorch/examples recipe, AMP, DDP through torchrun) and the real datasets it trains on."""

from infer_kit.trainer.config import TrainConfig
from infer_kit.trainer.datasets import FASHION_MNIST_SOURCE, DatasetResult, write_digits, write_fashion_mnist
from infer_kit.trainer.photos import IMAGENET_PHOTOS, write_imagenet_photos
from infer_kit.trainer.training import TABLE_HEADER, TrainResult, train

__all__ = [
    "FASHION_MNIST_SOURCE", "IMAGENET_PHOTOS", "TABLE_HEADER", "DatasetResult", "TrainConfig", "TrainResult", "train",
    "write_digits", "write_fashion_mnist", "write_imagenet_photos",
]
