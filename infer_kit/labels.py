"""Label files: the ModelZoo ``val_label.txt`` and a ``class_index.json``.

``val_label.txt`` has one line per image, ``ILSVRC2012_val_00000001.JPEG 65``: the file
name, a space, the 0-based class index. Images are keyed by :func:`image_key`, the file
name up to its first ``.``, which is also how tensor files and ais_bench outputs are named.

``class_index.json`` follows the widely used Keras ImageNet layout:
``{"0": ["n01440764", "tench"], ...}`` (index -> [folder or synset, human-readable name]).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from infer_kit.errors import InferKitError
from infer_kit.fsutil import read_json, read_text, write_json_atomic, write_text_atomic


def image_key(filename: str) -> str:
    """``ILSVRC2012_val_00000001.JPEG`` -> ``ILSVRC2012_val_00000001`` (up to the first dot)."""
    return os.path.basename(filename).split(".")[0]


def read_val_labels(path: str | os.PathLike[str]) -> dict[str, int]:
    """Parse a ``val_label.txt``; malformed or duplicate lines are errors naming file and line."""
    path = Path(path)
    text = read_text(path, what="label file")
    labels: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit() or int(parts[1]) < 0:
            raise InferKitError(
                f"{path}:{number}: malformed label line {line.strip()[:60]!r}",
                hint="expected '<image file name> <0-based class index>'",
            )
        key = image_key(parts[0])
        if key in labels:
            raise InferKitError(f"{path}:{number}: image {key!r} is labelled twice")
        labels[key] = int(parts[1])
    if not labels:
        raise InferKitError(f"label file {path} has no labels")
    return labels


def write_val_labels(path: str | os.PathLike[str], items: Iterable[tuple[str, int]]) -> None:
    """Write ``name index`` lines (ModelZoo format), atomically."""
    write_text_atomic(path, "".join(f"{name} {int(index)}\n" for name, index in items))


def write_class_index(
    path: str | os.PathLike[str], classes: list[str], names: list[str] | None = None
) -> None:
    """Write ``{"0": [folder, name], ...}``; ``names`` default to the folder names."""
    names = names or classes
    write_json_atomic(path, {str(i): [c, n] for i, (c, n) in enumerate(zip(classes, names, strict=True))})


def read_class_index(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Index-ordered ``(folder or synset, name)`` pairs from a ``class_index.json``."""
    data = read_json(path, what="class index")
    try:
        items = sorted(((int(k), v) for k, v in data.items()), key=lambda kv: kv[0])
        if [k for k, _ in items] != list(range(len(items))):
            raise ValueError("indices are not 0..N-1")
        return [(str(v[0]), str(v[1])) for _, v in items]
    except (AttributeError, TypeError, ValueError, IndexError) as exc:
        raise InferKitError(
            f"class index {path} is malformed ({exc})", hint='expected {"0": ["folder", "name"], ...}'
        ) from None

