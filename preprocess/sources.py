"""Finding the images to preprocess: a flat folder or a class-folder tree.

* **flat**: ``SRC/*.JPEG`` (the ImageNet val layout); sub-folders are ignored.
* **tree**: ``SRC/<class>/**/<image>`` (torchvision ``ImageFolder``); a class's index is
  the position of its folder in sorted order, the ImageNet convention.

A file is an image candidate when PIL has a decoder registered for its extension; other
files (label lists, CSVs, READMEs) are left alone and counted. Hidden files and folders
are skipped. Each image becomes ``<key>.bin`` with ``key = infer_kit.labels.image_key``
(the name up to its first dot), so two images with the same key are refused before any
work starts: ais_bench and the ModelZoo scripts would silently overwrite one of them.
"""

from __future__ import annotations

import errno
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from infer_kit.errors import InferKitError
from infer_kit.labels import image_key


@dataclass(frozen=True)
class ImageFile:
    """One source image: where it is, its tensor-file key, its class index in a tree."""

    path: Path
    relpath: str
    key: str
    label: int | None = None

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Listing:
    """The images found under ``root`` (sorted by relative path) and what was left aside."""

    root: Path
    kind: str  # "flat" | "tree"
    images: list[ImageFile]
    classes: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    ignored_folders: list[str] = field(default_factory=list)


def image_extensions() -> frozenset[str]:
    """Lower-case extensions (with the dot) of the formats PIL can open here."""
    from PIL import Image

    Image.init()
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def list_images(src: str | os.PathLike[str], *, exclude: Sequence[str | os.PathLike[str]] = ()) -> Listing:
    """List ``src`` as a flat folder or a class tree; folders in ``exclude`` are skipped."""
    root = Path(src)
    if not root.exists():
        raise InferKitError(f"source folder not found: {root}", hint="give the folder that holds the images")
    if not root.is_dir():
        raise InferKitError(f"source is not a folder: {root}", hint="give the folder that holds the images")
    excluded = {Path(p).resolve() for p in exclude}
    extensions = image_extensions()
    files, folders = _scan(root, excluded)
    top_images = [f for f in files if _is_image(f, extensions)]
    ignored = [f for f in files if not _is_image(f, extensions)]
    if top_images:
        images = [ImageFile(root / f, f, image_key(f)) for f in top_images]
        return Listing(root, "flat", images, [], ignored, folders)
    if not folders:
        raise InferKitError(
            f"no images in {root}" + (f" (only {len(ignored)} other files, e.g. {ignored[0]})" if ignored else ""),
            hint="give a folder of images (JPEG, PNG, ...) or a tree of class folders",
        )
    images = []
    for index, folder in enumerate(folders):
        for relpath in _walk(root / folder, excluded, root):
            if _is_image(relpath, extensions):
                images.append(ImageFile(root / relpath, relpath, image_key(relpath), index))
            else:
                ignored.append(relpath)
    if not images:
        raise InferKitError(
            f"no images in {root} or its {len(folders)} sub-folders",
            hint="give a folder of images (JPEG, PNG, ...) or a tree of class folders",
        )
    return Listing(root, "tree", images, list(folders), ignored)


def check_unique_keys(images: Sequence[ImageFile]) -> None:
    """Refuse two images that would be written to the same ``<key>.bin``."""
    groups: dict[str, list[str]] = defaultdict(list)
    for image in images:
        groups[image.key].append(image.relpath)
    clashes = [(key, paths) for key, paths in groups.items() if len(paths) > 1]
    if not clashes:
        return
    key, paths = clashes[0]
    more = f" ({len(clashes) - 1} more name clashes)" if len(clashes) > 1 else ""
    raise InferKitError(
        f"{' and '.join(paths[:3])} would both be written to {key}.bin{more}",
        hint="tensor files are named after the image name up to its first '.', as ais_bench names them; "
        "rename or remove one of the images",
    )


def _entries(folder: Path) -> list[tuple[os.DirEntry[str], str | None]]:
    """The visible entries of ``folder`` in name order, each with its kind (see :func:`_kind`)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise InferKitError(f"cannot list {folder}: {exc.strerror}") from None
    return [(entry, _kind(entry)) for entry in entries if not entry.name.startswith(".")]


def _scan(root: Path, excluded: set[Path]) -> tuple[list[str], list[str]]:
    files, folders = [], []
    for entry, kind in _entries(root):
        if kind == "dir":
            if Path(entry.path).resolve() not in excluded:
                folders.append(entry.name)
        elif kind == "file":
            files.append(entry.name)
    return files, folders


def _walk(folder: Path, excluded: set[Path], root: Path) -> list[str]:
    """Every file under ``folder`` (symlinks followed; a link back into its own ancestors is an error)."""
    found = []
    ancestors = [_identity(root), _identity(folder)]

    def visit(current: Path, base: PurePosixPath) -> None:
        for entry, kind in _entries(current):
            if kind == "file":
                found.append((base / entry.name).as_posix())
            elif kind == "dir" and Path(entry.path).resolve() not in excluded:
                identity = _identity(Path(entry.path))
                if identity in ancestors:
                    raise _loop(Path(entry.path))
                ancestors.append(identity)
                visit(Path(entry.path), base / entry.name)
                ancestors.pop()

    visit(folder, PurePosixPath(folder.relative_to(root).as_posix()))
    return found


def _kind(entry: os.DirEntry[str]) -> str | None:
    """"dir", "file" or None (anything else); a symlink that cannot be resolved because it loops is an error."""
    try:
        if entry.is_dir():
            return "dir"
        if entry.is_file():
            return "file"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _loop(Path(entry.path)) from None
        raise InferKitError(f"cannot read {entry.path}: {exc.strerror}") from None
    return None


def _identity(folder: Path) -> tuple[int, int]:
    info = folder.stat()
    return info.st_dev, info.st_ino


def _loop(link: Path) -> InferKitError:
    try:
        target = os.readlink(link)
    except OSError:
        target = "?"
    return InferKitError(f"symlink loop in the image folder: {link} -> {target} leads back into itself",
                         hint="remove the link, or point it outside the image folder")


def _is_image(relpath: str, extensions: frozenset[str]) -> bool:
    return os.path.splitext(relpath)[1].lower() in extensions
