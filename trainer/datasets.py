"""Real labelled datasets written as ImageNet-layout trees, for training and for the inference pipeline.

A dataset folder ``DIR`` holds::

    DIR/train/<class>/train_00000001.png   class folders for ``infer-kit train``
    DIR/val/<class>/val_00000001.png
    DIR/val_flat/val_00000001.png          the same val images, flat, for ``preprocess``/``run``
    DIR/val_label.txt                      ModelZoo labels of val_flat: ``val_00000001.png 9``
    DIR/class_index.json                   {"0": ["0_tshirt_top", "T-shirt/top"], ...}
    DIR/dataset.json                       written last: the dataset is complete

Class folder names start with the label (zero-padded), so sorted folder order is label
order and ImageFolder-style indices equal the source labels. Every file is written
atomically and existing files are kept, so an interrupted run is finished by rerunning
it; a rerun on a complete folder is a no-op.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer_kit.console import log, progress
from infer_kit.errors import InferKitError
from infer_kit.fsutil import atomic_write, read_json, remove_stale_partials, write_json_atomic
from infer_kit.labels import write_class_index, write_val_labels

if TYPE_CHECKING:
    import numpy as np

FASHION_MNIST_SOURCE = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "val": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MARKER = "dataset.json"
IN_PROGRESS = ".dataset.in-progress.json"
IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class Split:
    """Images (N, H, W) or (N, H, W, 3) uint8 and their integer labels."""

    images: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class DatasetResult:
    """Where a dataset was written and what it holds."""

    root: Path
    name: str
    classes: list[str]
    counts: dict[str, int]
    written: int
    already_complete: bool

    @property
    def train_dir(self) -> Path:
        return self.root / "train"

    @property
    def val_flat(self) -> Path:
        return self.root / "val_flat"

    @property
    def val_labels(self) -> Path:
        return self.root / "val_label.txt"

    def describe_counts(self) -> str:
        """``20000 train, 10000 val``."""
        return counts_text(self.counts)


def class_folder_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """``["T-shirt/top", ...]`` -> ``["0_tshirt_top", ...]``: label-prefixed, so sorting keeps label order."""
    width = len(str(len(names) - 1))
    folders = []
    for index, name in enumerate(names):
        slug = "".join(ch if ch.isalnum() else "_" for ch in name.lower().replace("-", ""))
        slug = "_".join(part for part in slug.split("_") if part)
        folders.append(f"{index:0{width}d}_{slug}" if slug else f"{index:0{width}d}")
    return folders


# ---- sources --------------------------------------------------------------------------------------------------


def read_idx(path: str | os.PathLike[str], limit: int | None = None) -> np.ndarray:
    """Parse an IDX file (the MNIST format; ``.gz`` or plain), reading at most ``limit`` items."""
    import numpy as np

    path = Path(path)
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            header = handle.read(4)
            if len(header) != 4 or header[0] != 0 or header[1] != 0 or header[2] not in IDX_DTYPES:
                raise InferKitError(f"{path} is not an IDX file (bad magic number {header.hex()})")
            ndim = header[3]
            dims = [int.from_bytes(handle.read(4), "big") for _ in range(ndim)]
            count = dims[0] if limit is None else min(dims[0], limit)
            dtype = np.dtype(IDX_DTYPES[header[2]])
            item = int(np.prod(dims[1:], dtype=np.int64)) if ndim > 1 else 1
            data = handle.read(count * item * dtype.itemsize)
    except FileNotFoundError:
        raise InferKitError(f"dataset file not found: {path}") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InferKitError(f"cannot read {path}: {exc}", hint="the file is damaged; reinstall it") from None
    if len(data) != count * item * dtype.itemsize:
        raise InferKitError(f"{path} is truncated: expected {count} items of {dims[1:]}")
    return np.frombuffer(data, dtype=dtype).reshape([count, *dims[1:]]).astype(dtype.newbyteorder("="))


def load_fashion_mnist(
    source: str | os.PathLike[str] = FASHION_MNIST_SOURCE, limit_train: int | None = None, limit_val: int | None = None
) -> tuple[dict[str, Split], list[str]]:
    """Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (idx files), the first N items of each split."""
    source = Path(source)
    for images_name, labels_name in FASHION_MNIST_FILES.values():
        for name in (images_name, labels_name):
            if not (source / name).is_file():
                raise InferKitError(
                    f"Fashion-MNIST source not found: {source / name}",
                    hint="install it with 'apt-get install dataset-fashion-mnist' (or pass --source DIR)",
                )
    limits = {"train": limit_train, "val": limit_val}
    splits = {}
    for split, (images_name, labels_name) in FASHION_MNIST_FILES.items():
        images = read_idx(source / images_name, limits[split])
        labels = read_idx(source / labels_name, limits[split])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise InferKitError(
                f"{source}: {images_name} and {labels_name} do not match ({images.shape} vs {labels.shape})"
            )
        splits[split] = Split(images, labels.astype("int64"))
    return splits, list(FASHION_MNIST_CLASSES)


def load_digits(
    size: int = 32, limit_train: int | None = None, limit_val: int | None = None, val_every: int = 5
) -> tuple[dict[str, Split], list[str]]:
    """scikit-learn's packaged 8x8 digits (1,797 scans), upscaled to ``size`` px; every 5th image of a class is val."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    pixels = np.clip(bunch.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    resample = Image.Resampling.BILINEAR
    images = np.stack([np.asarray(Image.fromarray(p).resize((size, size), resample)) for p in pixels])
    labels = bunch.target.astype("int64")
    rank_in_class = np.zeros(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rank_in_class[members] = np.arange(len(members))
    is_val = rank_in_class % val_every == 0
    splits = {
        "train": Split(images[~is_val][:limit_train], labels[~is_val][:limit_train]),
        "val": Split(images[is_val][:limit_val], labels[is_val][:limit_val]),
    }
    return splits, list(DIGIT_NAMES)


# ---- writing --------------------------------------------------------------------------------------------------


def write_dataset(
    root: str | os.PathLike[str], name: str, splits: dict[str, Split], class_names: list[str],
    params: dict[str, Any] | None = None,
) -> DatasetResult:
    """Write ``splits`` as the ImageNet-layout tree described in the module docstring."""
    root = Path(root)
    params = dict(params or {})
    identity = {"name": name, "params": params}
    folders = class_folder_names(class_names)
    counts = {split: int(len(data.labels)) for split, data in splits.items()}
    done = _already_complete(root, identity)
    if done is not None:
        return done
    _check_target(root, identity)
    _check_splits(name, splits, len(folders))
    write_json_atomic(root / IN_PROGRESS, identity)
    written = 0
    for split, data in splits.items():
        written += _write_split(root, split, data, folders)
    written += _link_flat_val(root, splits["val"], folders)
    write_val_labels(root / "val_label.txt",
                     ((_file_name("val", i), int(label)) for i, label in enumerate(splits["val"].labels)))
    write_class_index(root / "class_index.json", folders, list(class_names))
    write_json_atomic(root / MARKER, {**identity, "classes": folders, "counts": counts,
                                      "layout": "train/<class>, val/<class>, val_flat + val_label.txt"})
    (root / IN_PROGRESS).unlink(missing_ok=True)
    log.debug(f"{root}: wrote {name} ({counts_text(counts)}, {written} new files)")
    return DatasetResult(root, name, folders, counts, written, False)


def counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {split}" for split, count in counts.items())


def _file_name(split: str, index: int) -> str:
    return f"{split}_{index + 1:08d}.png"


def _already_complete(root: Path, identity: dict[str, Any]) -> DatasetResult | None:
    """The finished dataset recorded in ``root``'s marker, or None; another dataset there is an error."""
    marker = root / MARKER
    if not marker.is_file():
        return None
    data = read_json(marker, what="dataset marker")
    recorded = {"name": data.get("name"), "params": data.get("params")}
    if recorded != identity:
        raise InferKitError(
            f"{root} already holds a different dataset ({_describe(recorded)}, not {_describe(identity)})",
            hint="choose another folder or delete this one",
        )
    missing = _missing_files(root, dict(data["counts"]))
    if missing:  # the marker stays: _check_target takes it as this same dataset, to be completed
        log.warning(f"{root}: {missing} file(s) of the finished {identity['name']} dataset are missing; "
                    "writing them again")
        return None
    log.debug(f"{root}: {identity['name']} already complete ({counts_text(data['counts'])}); nothing to do")
    return DatasetResult(root, str(data["name"]), list(data["classes"]), dict(data["counts"]), 0, True)


def _missing_files(root: Path, counts: dict[str, int]) -> int:
    """How many of the images and label files a finished dataset records are not there (a user deleted some)."""
    def images(folder: Path, pattern: str) -> int:
        return sum(1 for _ in folder.glob(pattern)) if folder.is_dir() else 0

    missing = sum(max(0, int(count) - images(root / split, "*/*.png")) for split, count in counts.items())
    missing += max(0, int(counts.get("val", 0)) - images(root / "val_flat", "*.png"))
    return missing + sum(not (root / name).is_file() for name in ("val_label.txt", "class_index.json"))


def _describe(identity: dict[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in sorted((identity.get("params") or {}).items()))
    return f"{identity.get('name')}" + (f" with {params}" if params else "")


def _check_target(root: Path, identity: dict[str, Any]) -> None:
    """``root`` must be new, empty, or an unfinished write of this same dataset (which is then completed)."""
    if root.exists() and not root.is_dir():
        raise InferKitError(f"dataset folder {root} exists and is not a folder")
    if (root / IN_PROGRESS).is_file():
        unfinished = read_json(root / IN_PROGRESS, what="dataset progress file")
        if unfinished != identity:
            raise InferKitError(
                f"{root} holds an unfinished write of another dataset ({_describe(unfinished)})",
                hint="delete the folder or rerun that exact command",
            )
    elif root.is_dir() and not (root / MARKER).is_file():  # a marker is this dataset's (_already_complete checked)
        found = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
        if found:
            raise InferKitError(
                f"{root} is not empty and is not an unfinished infer-kit dataset (found {', '.join(found[:3])})",
                hint="choose a new or empty folder",
            )


def _check_splits(name: str, splits: dict[str, Split], num_classes: int) -> None:
    for split in ("train", "val"):
        data = splits.get(split)
        if data is None or len(data.labels) == 0:
            raise InferKitError(f"{name}: the {split} split is empty", hint="raise --limit-train/--limit-val")
        if int(data.labels.min()) < 0 or int(data.labels.max()) >= num_classes:
            raise InferKitError(f"{name}: {split} labels outside 0..{num_classes - 1}")
        absent = sorted(set(range(num_classes)) - {int(label) for label in data.labels})
        if absent:
            raise InferKitError(
                f"{name}: the {split} split has no images of class(es) {', '.join(map(str, absent))}",
                hint="raise --limit-train/--limit-val so every class is present",
            )


def _write_split(root: Path, split: str, data: Split, folders: list[str]) -> int:
    from PIL import Image

    for folder in set(folders[int(label)] for label in data.labels):
        (root / split / folder).mkdir(parents=True, exist_ok=True)
        remove_stale_partials(root / split / folder)
    written = 0
    items = progress(range(len(data.labels)), total=len(data.labels), desc=f"writing {split}", unit="img")
    for index in items:
        target = root / split / folders[int(data.labels[index])] / _file_name(split, index)
        if target.exists():
            continue
        with atomic_write(target, "wb") as handle:
            Image.fromarray(data.images[index]).save(handle, format="PNG")
        written += 1
    return written


def _link_flat_val(root: Path, data: Split, folders: list[str]) -> int:
    """The val images again, flat: hard links to the class-folder files (copies where links fail)."""
    flat = root / "val_flat"
    flat.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(flat)
    written = 0
    for index, label in enumerate(data.labels):
        name = _file_name("val", index)
        target = flat / name
        if target.exists():
            continue
        source = root / "val" / folders[int(label)] / name
        partial = flat / f".{name}.link.partial"
        partial.unlink(missing_ok=True)
        try:
            os.link(source, partial)
        except OSError:
            shutil.copyfile(source, partial)
        os.replace(partial, target)
        written += 1
    return written


# ---- the named datasets ---------------------------------------------------------------------------------------


def write_fashion_mnist(
    root: str | os.PathLike[str], *, limit_train: int | None = None, limit_val: int | None = None,
    source: str | os.PathLike[str] = FASHION_MNIST_SOURCE,
) -> DatasetResult:
    """Fashion-MNIST (28x28 grayscale, 10 classes) as an ImageNet-layout tree under ``root``."""
    params = {"limit_train": limit_train, "limit_val": limit_val}
    done = _already_complete(Path(root), {"name": "fashion-mnist", "params": params})
    if done is not None:
        return done
    splits, names = load_fashion_mnist(source, limit_train, limit_val)
    return write_dataset(root, "fashion-mnist", splits, names, params)


def write_digits(
    root: str | os.PathLike[str], *, size: int = 32, limit_train: int | None = None, limit_val: int | None = None,
) -> DatasetResult:
    """scikit-learn's digits (10 classes, always installed) upscaled to ``size`` px, as an ImageNet-layout tree."""
    params = {"size": size, "limit_train": limit_train, "limit_val": limit_val}
    done = _already_complete(Path(root), {"name": "digits", "params": params})
    if done is not None:
        return done
    splits, names = load_digits(size, limit_train, limit_val)
    return write_dataset(root, "digits", splits, names, params)
