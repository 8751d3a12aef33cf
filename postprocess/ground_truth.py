"""Where the labels come from: a ``val_label.txt``, or a folder ``preprocess`` wrote.

``--labels`` takes the ModelZoo ``val_label.txt`` (``name.EXT index`` lines), or a
preprocessed folder: its ``manifest.json`` key ``labels`` names the label file (else
``val_label.txt`` in the folder is used). Class names, for reports only, come from a
``class_index.json`` beside the label file (or named by the manifest's ``class_index``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from infer_kit.artifacts import FOLDER_MANIFEST
from infer_kit.errors import InferKitError
from infer_kit.fsutil import read_json
from infer_kit.labels import read_class_index, read_val_labels

VAL_LABELS = "val_label.txt"
CLASS_INDEX = "class_index.json"


@dataclass(frozen=True)
class GroundTruth:
    """Image key -> 0-based class index, where it came from, and class names when known."""

    labels: Mapping[str, int]
    source: str
    class_names: tuple[str, ...] | None = None

    def name(self, index: int) -> str | None:
        if self.class_names is None or not 0 <= index < len(self.class_names):
            return None
        return self.class_names[index]


def load_ground_truth(labels: str | os.PathLike[str] | Mapping[str, int] | GroundTruth) -> GroundTruth:
    """Resolve ``labels`` (a label file, a preprocessed folder, or a mapping) to a :class:`GroundTruth`."""
    if isinstance(labels, GroundTruth):
        return labels
    if isinstance(labels, Mapping):
        if not labels:
            raise InferKitError("the label mapping is empty")
        return GroundTruth(dict(labels), "<mapping>")
    path = Path(labels)
    if path.is_dir():
        label_file, index_file = _from_folder(path)
    elif path.name.endswith(".json"):
        raise InferKitError(
            f"{path} is a JSON file, not a label file",
            hint=f"give the {VAL_LABELS} ('<image file> <class index>' lines) that preprocess wrote beside "
            f"{CLASS_INDEX}, or the preprocessed folder itself",
        )
    else:
        label_file, index_file = path, path.parent / CLASS_INDEX
    names = tuple(name for _, name in read_class_index(index_file)) if index_file.is_file() else None
    return GroundTruth(read_val_labels(label_file), str(label_file), names)


def _from_folder(folder: Path) -> tuple[Path, Path]:
    manifest_path = folder / FOLDER_MANIFEST
    manifest = read_json(manifest_path, what="folder manifest") if manifest_path.is_file() else {}
    manifest = manifest if isinstance(manifest, dict) else {}
    named = manifest.get("labels")
    label_file = folder / str(named) if named else folder / VAL_LABELS
    if not label_file.is_file():
        where = f"{manifest_path} names {named}, which is missing" if named else f"no {VAL_LABELS} in {folder}"
        raise InferKitError(
            f"cannot find labels for folder {folder}: {where}",
            hint="pass --labels val_label.txt, or rerun 'infer-kit preprocess' on a class-folder tree",
        )
    index_name = manifest.get("class_index")
    index_file = folder / str(index_name) if index_name else label_file.parent / CLASS_INDEX
    return label_file, index_file
