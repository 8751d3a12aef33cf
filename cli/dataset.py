from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from infer_kit.trainer import DatasetResult

LAYOUT_HELP = """\b
Layout written under DIR:
  DIR/train/<class>/*.png, DIR/val/<class>/*.png   for 'infer-kit train --data DIR'
  DIR/val_flat/*.png + DIR/val_label.txt           for 'infer-kit preprocess' / 'evaluate'
  DIR/class_index.json, DIR/dataset.json (written last: complete)
Rerunning on a complete folder does nothing; an interrupted run is finished by rerunning it."""

_limit_options = [
    click.option("--limit-train", type=click.IntRange(min=1), help="Keep the first N training images."),
    click.option("--limit-val", type=click.IntRange(min=1), help="Keep the first N validation images."),
]


def _limits(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_limit_options):
        func = option(func)
    return func


@click.group(name="dataset")
def command() -> None:
    """Write a real labelled dataset as an ImageNet-layout tree (train/, val/, val_flat/ + val_label.txt)."""


@command.command(name="fashion-mnist", epilog=LAYOUT_HELP)
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@_limits
@click.option("--source", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder with the *-idx?-ubyte.gz files [default: /usr/share/datasets/fashion-mnist].")
def fashion_mnist(directory: Path, limit_train: int | None, limit_val: int | None, source: Path | None) -> None:
    """Fashion-MNIST (10 classes, 60,000 train + 10,000 val, 28x28) from Debian's dataset-fashion-mnist.

    \b
    Examples:
      infer-kit dataset fashion-mnist data/fmnist
      infer-kit dataset fashion-mnist data/fmnist-small --limit-train 20000 --limit-val 2000
    """
    from infer_kit.trainer import FASHION_MNIST_SOURCE, write_fashion_mnist

    result = write_fashion_mnist(directory, limit_train=limit_train, limit_val=limit_val,
                                 source=source or FASHION_MNIST_SOURCE)
    _summary(result)


@command.command(name="digits", epilog=LAYOUT_HELP)
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@_limits
@click.option("--size", type=click.IntRange(min=8, max=512), default=32, show_default=True,
              help="Side of the upscaled images in pixels.")
def digits(directory: Path, limit_train: int | None, limit_val: int | None, size: int) -> None:
    """scikit-learn's handwritten digits (10 classes, 1,433 train + 364 val, 8x8 upscaled): always available.

    \b
    Example:
      infer-kit dataset digits data/digits --size 32
    """
    from infer_kit.trainer import write_digits

    _summary(write_digits(directory, size=size, limit_train=limit_train, limit_val=limit_val))


@command.command(name="imagenet-photos")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
def imagenet_photos(directory: Path) -> None:
    """Seven real photos with a clear ImageNet-1k label, from scikit-image and scikit-learn (no download).

    \b
    Written under DIR: val_flat/<photo> (copied unchanged), val_label.txt (ImageNet indices),
    class_index.json (the 1000 ImageNet classes), dataset.json (written last).
    Example:
      infer-kit dataset imagenet-photos demo-work/photos
    """
    from infer_kit.trainer import IMAGENET_PHOTOS, write_imagenet_photos

    result = write_imagenet_photos(directory)
    state = "already complete" if result.already_complete else f"{result.written} files written"
    click.echo(f"{result.name}: {len(IMAGENET_PHOTOS)} photos in {result.root} ({state})")
    for photo in IMAGENET_PHOTOS:
        click.echo(f"  {photo.file:<20} {photo.label:>4} {photo.what:<10} from {photo.package}/{photo.path}")
    click.echo(f"  val:   {result.val_flat} + {result.val_labels}")


def _summary(result: DatasetResult) -> None:

    state = "already complete" if result.already_complete else f"{result.written} files written"
    click.echo(f"{result.name}: {result.describe_counts()}, {len(result.classes)} classes in {result.root} ({state})")
    click.echo(f"  train: infer-kit train --data {result.root} ...")
    click.echo(f"  val:   {result.val_flat} + {result.val_labels}")
