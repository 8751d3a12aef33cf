"""ImageFolder splits and the transforms that follow the model's `PreprocessSpec`.

Evaluation applies the spec exactly as the inference pipeline does (short side to ``resize``
with the spec's long-side rule, centre ``crop`` at the spec's offset, ``(x/255 - mean) / std``,
channel planes in the spec's order), so accuracy measured here is the accuracy the exported
model gets on the same images. Training augmentation ends in the same tensor format.

A class is a sub-folder of ``DIR/train``; its index is its position in sorted order (the
ImageFolder rule), and ``DIR/val`` must hold the same class folders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from infer_kit.errors import InferKitError
from infer_kit.imageops import UnsupportedPixels, center_crop, resize_short_side, to_rgb
from infer_kit.spec import PreprocessSpec
from infer_kit.trainer.distributed import DistEnv

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class SplitIndex:
    """The images of one split: ``samples`` are (path, class index) pairs."""

    root: Path
    classes: list[str]
    samples: list[tuple[Path, int]]

    def __len__(self) -> int:
        return len(self.samples)


def scan_split(data: str | Path, split: str) -> SplitIndex:
    """Index ``data/split/<class>/<image>``; a missing, empty or one-class split is an error."""
    data = Path(data)
    root = data / split
    layout = f"expected {data}/train/<class>/<images> and {data}/val/<class>/<images> (the ImageNet layout)"
    if not data.is_dir():
        raise InferKitError(f"data folder not found: {data}", hint=layout)
    if not root.is_dir():
        raise InferKitError(f"{split} split not found: {root}", hint=layout)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InferKitError(f"{root} has no class folders", hint=layout)
    samples: list[tuple[Path, int]] = []
    for index, name in enumerate(classes):
        images = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not images:
            raise InferKitError(
                f"class folder {root / name} has no images", hint=f"add images ({', '.join(IMAGE_EXTENSIONS[:4])}, ...)"
                " or remove the folder"
            )
        samples.extend((path, index) for path in images)
    if len(classes) < 2:
        raise InferKitError(f"{root} has only one class ({classes[0]}): a classifier needs at least two")
    return SplitIndex(root, classes, samples)


def check_same_classes(train: SplitIndex, val: SplitIndex) -> None:
    """Train and val must name the same class folders, or indices would mean different things."""
    if train.classes == val.classes:
        return
    only_train = sorted(set(train.classes) - set(val.classes))
    only_val = sorted(set(val.classes) - set(train.classes))
    parts = []
    if only_train:
        parts.append(f"only in {train.root.name}: {_names(only_train)}")
    if only_val:
        parts.append(f"only in {val.root.name}: {_names(only_val)}")
    raise InferKitError(
        f"classes differ between {train.root} and {val.root} ({'; '.join(parts)})",
        hint="both splits need the same class folders",
    )


def _names(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


class ImageSamples(Dataset):
    """(image tensor, label) pairs from a list of files; images are decoded as RGB."""

    def __init__(self, samples: list[tuple[Path, int]], transform: Callable[[Image.Image], torch.Tensor]) -> None:
        self.samples = samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        try:
            with Image.open(path) as image:
                rgb = to_rgb(image)
        except (OSError, UnsupportedPixels) as exc:
            raise InferKitError(f"cannot decode image {path}: {exc}", hint="remove or replace the file") from None
        return self.transform(rgb), label


# ---- transforms -----------------------------------------------------------------------------------------------


class ResizeShortSide:
    """Short side to ``spec.resize`` (long side by the spec's rule), with the spec's filter."""

    def __init__(self, spec: PreprocessSpec) -> None:
        self.spec = spec

    def __call__(self, image: Image.Image) -> Image.Image:
        return resize_short_side(image, self.spec)


class CenterCrop:
    """The ``crop x crop`` centre at offset ``int(round((side - crop) / 2))``."""

    def __init__(self, crop: int) -> None:
        self.crop = crop

    def __call__(self, image: Image.Image) -> Image.Image:
        return center_crop(image, self.crop)


class ToModelTensor:
    """uint8 RGB image -> float32 CHW ``(x/255 - mean) / std`` in the spec's channel order."""

    def __init__(self, spec: PreprocessSpec) -> None:
        self.mean = torch.tensor(spec.mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(spec.std, dtype=torch.float32).view(3, 1, 1)
        self.bgr = spec.channel_order == "BGR"

    def __call__(self, image: Image.Image) -> torch.Tensor:
        import numpy as np

        array = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
        tensor = (array.to(torch.float32) / 255.0 - self.mean) / self.std
        return tensor.flip(0) if self.bgr else tensor


def eval_transform(spec: PreprocessSpec) -> Callable[[Image.Image], torch.Tensor]:
    """The inference preprocessing of ``spec``, as a torchvision-style callable."""
    from torchvision import transforms

    return transforms.Compose([ResizeShortSide(spec), CenterCrop(spec.crop), ToModelTensor(spec)])


def train_transform(spec: PreprocessSpec, augment: str) -> Callable[[Image.Image], torch.Tensor]:
    """Training augmentation ending in the spec's tensor format.

    ``standard``: RandomResizedCrop to ``crop`` + horizontal flip (the pytorch/examples recipe);
    ``light``: the eval resize, a random ``crop`` with ``crop // 8`` zero padding + flip (small images);
    ``none``: the eval transform.
    """
    from torchvision import transforms
    from torchvision.transforms import InterpolationMode

    if augment == "none":
        return eval_transform(spec)
    if augment == "standard":
        interpolation = InterpolationMode(spec.interpolation)
        steps: list[Any] = [transforms.RandomResizedCrop(spec.crop, interpolation=interpolation)]
    else:
        steps = [ResizeShortSide(spec), transforms.RandomCrop(spec.crop, padding=spec.crop // 8, pad_if_needed=True)]
    return transforms.Compose([*steps, transforms.RandomHorizontalFlip(), ToModelTensor(spec)])


# ---- loaders --------------------------------------------------------------------------------------------------


class ShardSampler(Sampler[int]):
    """Every ``world_size``-th index from ``rank``: each image evaluated exactly once across ranks."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def train_loader(split: SplitIndex, spec: PreprocessSpec, augment: str, batch_size: int, workers: int,
                 env: DistEnv, seed: int) -> tuple[DataLoader, DistributedSampler]:
    """Shuffled per-epoch by ``sampler.set_epoch`` (the same order on resume); full batches only."""
    dataset = ImageSamples(split.samples, train_transform(spec, augment))
    sampler = DistributedSampler(dataset, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=seed)
    drop_last = len(sampler) >= batch_size
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                        pin_memory=env.device.type == "cuda", drop_last=drop_last)
    return loader, sampler


def val_loader(split: SplitIndex, spec: PreprocessSpec, batch_size: int, workers: int, env: DistEnv) -> DataLoader:
    dataset = ImageSamples(split.samples, eval_transform(spec))
    sampler = ShardSampler(len(dataset), env.rank, env.world_size)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=env.device.type == "cuda")
