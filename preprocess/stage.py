"""The ``preprocess`` stage: an image folder -> one tensor file per image + manifest + labels.

:func:`preprocess` is the library entry point the CLI and ``pipeline`` call. The spec and
layout come from exactly one of a model file (``target``: its metadata or artifact
manifest decide both, so tensors cannot mismatch the model by accident), a ModelZoo
``preset``, a registry ``arch`` name, or an explicit ``spec`` (see :mod:`infer_kit.resolve`).
Without a model file the layout defaults to ``aipp``, what ``imagenet_torch_preprocess.py``
writes for the AIPP recipe.

Rerun rules: a destination already holding another spec's or layout's tensors is refused,
naming both sides. Without ``resume`` every file is rewritten (the output is
deterministic, so the bytes come out the same); with ``resume`` complete files (right
size) are kept and missing or partial ones are redone.

``engine="ray"`` writes the tensors on a Ray cluster (:mod:`infer_kit.preprocess.ray_write`):
the same files, bytes and manifest; the images and ``dst`` must be on a folder every node sees.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infer_kit.artifacts import FOLDER_MANIFEST, read_folder_manifest, write_folder_manifest
from infer_kit.cluster import RayOptions, check_engine
from infer_kit.console import log, progress
from infer_kit.errors import InferKitError
from infer_kit.fsutil import check_output_dir, remove_stale_partials
from infer_kit.locks import hold
from infer_kit.preprocess.label_files import CLASS_INDEX_FILE, missing_labels, write_tree_labels
from infer_kit.preprocess.ray_write import ClusterWriter
from infer_kit.preprocess.sources import ImageFile, Listing, check_unique_keys, list_images
from infer_kit.preprocess.writer import Job, Task, effective_workers, write_tensors
from infer_kit.resolve import ResolvedSpec, resolve_spec
from infer_kit.spec import LAYOUTS, PreprocessSpec
from infer_kit.workers import cpu_count

ON_ERROR = ("stop", "skip")
DEFAULT_LAYOUT = "aipp"


@dataclass(frozen=True)
class ResolvedInput:
    """The spec and layout the tensors are written for, and where they came from."""

    spec: PreprocessSpec
    layout: str
    source: str
    target: Path | None = None


@dataclass
class PreprocessResult:
    """What a :func:`preprocess` call did (the CLI prints it as the summary)."""

    dst: Path
    manifest_path: Path
    spec: PreprocessSpec
    layout: str
    spec_source: str
    source_kind: str
    total: int
    written: int
    kept: int
    bytes_written: int
    seconds: float
    workers: int
    skipped: list[dict[str, str]] = field(default_factory=list)
    labels_path: Path | None = None
    class_index_path: Path | None = None
    classes: int = 0
    unlabelled: list[str] = field(default_factory=list)
    ignored: int = 0

    @property
    def count(self) -> int:
        """Tensor files in the destination after the run."""
        return self.written + self.kept

    @property
    def bytes_per_file(self) -> int:
        return self.spec.sample_nbytes(self.layout)

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def resolve_input(
    *,
    target: str | os.PathLike[str] | None = None,
    preset: str | None = None,
    arch: str | None = None,
    spec: PreprocessSpec | None = None,
    layout: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> ResolvedInput:
    """Decide spec and layout from exactly one of ``target``, ``preset``, ``arch``, ``spec``."""
    if target is None and preset is None and arch is None and spec is None:
        raise InferKitError(
            "preprocess needs to know which model the tensors are for",
            hint="give --for MODEL_FILE (an exported .onnx or an atc artifact), --arch NAME or --preset NAME",
        )
    if layout is not None and layout not in LAYOUTS:
        raise InferKitError(f"unknown layout {layout!r}", hint="use aipp or float")
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if target is not None and overrides:
        raise InferKitError(
            f"spec overrides ({', '.join('--' + k.replace('_', '-') for k in overrides)}) cannot be combined "
            f"with --for {target}",
            hint="the model file decides the spec; use --arch or --preset to preprocess with another spec",
        )
    resolved = resolve_spec(model=target, preset=preset, arch=arch, spec=spec, overrides=overrides,
                            flags={"model": "--for"})
    assert resolved is not None
    if target is None:
        assert resolved.spec is not None
        return ResolvedInput(resolved.spec, layout or DEFAULT_LAYOUT, resolved.source)
    return _target_input(Path(target), resolved, layout)


def preprocess(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    spec: PreprocessSpec | None = None,
    layout: str | None = None,
    target: str | os.PathLike[str] | None = None,
    preset: str | None = None,
    arch: str | None = None,
    workers: int | None = None,
    resume: bool = False,
    limit: int | None = None,
    on_error: str = "stop",
    labels: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    engine: str = "local",
    address: str | None = None,
    ray_options: RayOptions | None = None,
) -> PreprocessResult:
    """Turn the images under ``src`` into ``dst/<key>.bin`` tensor files (see the module docstring)."""
    started = time.perf_counter()
    cluster = (ray_options or RayOptions()).with_address(address) if check_engine(engine, address) == "ray" else None
    if on_error not in ON_ERROR:
        raise InferKitError(f"unknown --on-error policy {on_error!r}", hint="use stop or skip")
    if limit is not None and limit < 1:
        raise InferKitError(f"--limit must be a positive number of images, got {limit}")
    if workers is not None and workers < 1:
        raise InferKitError(f"--workers must be at least 1, got {workers}")
    resolved = resolve_input(target=target, preset=preset, arch=arch, spec=spec, layout=layout,
                             overrides=overrides)
    src, dst = Path(src), Path(dst)
    check_output_dir(dst, what="destination")
    if src.exists() and dst.exists() and src.resolve() == dst.resolve():
        raise InferKitError(f"destination {dst} is the source folder", hint="write the tensors to a separate folder")
    listing = list_images(src, exclude=[dst])
    images = listing.images[:limit] if limit else listing.images
    check_unique_keys(images)
    _note_ignored(listing)
    unlabelled = _check_labels(labels, images, on_error)
    with hold(dst.parent / f".{dst.name}.lock", what=f"destination {dst}") as lock:
        return _preprocess_locked(images, listing, resolved, dst, lock, resume=resume, workers=workers,
                                  on_error=on_error, labels=labels, unlabelled=unlabelled, started=started,
                                  cluster=cluster)


def _preprocess_locked(images: list[ImageFile], listing: Listing, resolved: ResolvedInput, dst: Path, lock: Path, *,
                       resume: bool, workers: int | None, on_error: str, labels: str | os.PathLike[str] | None,
                       unlabelled: list[str], started: float, cluster: RayOptions | None = None) -> PreprocessResult:
    """Write the tensors, once the destination is this process's alone (another writer is refused)."""
    _check_destination(dst, resolved, {image.key for image in images})
    dst.mkdir(parents=True, exist_ok=True)
    writer = ClusterWriter(cluster) if cluster is not None and images else None
    if writer is not None:  # every node reads the images and writes dst, or one line names the one that cannot
        writer.open(str(images[0].path), dst)
    remove_stale_partials(dst)
    manifest = _manifest(resolved, listing.root, listing.kind, count=0, complete=False)
    write_folder_manifest(dst, manifest)

    nbytes = resolved.spec.sample_nbytes(resolved.layout)
    todo = [image for image in images if not (resume and _is_complete(dst / f"{image.key}.bin", nbytes))]
    kept = len(images) - len(todo)
    if kept:
        log.info(f"resuming: {kept} complete file{'s' if kept > 1 else ''} kept, {len(todo)} to write")
    workers = writer.cpus if writer is not None else effective_workers(len(todo), workers or cpu_count())
    written, bytes_written, skipped = _write_all(todo, dst, resolved, workers, on_error, lock, writer)

    skipped_keys = {item["key"] for item in skipped}
    done = [image for image in images if image.key not in skipped_keys]
    labels_path, class_index_path = _label_files(labels, listing.kind, listing.classes, done, dst)
    seconds = time.perf_counter() - started
    manifest = _manifest(
        resolved, listing.root, listing.kind, count=len(done), complete=True,
        skipped=[{"file": item["file"], "reason": item["reason"]} for item in skipped],
        labels=_relative(labels_path, dst), class_index=_relative(class_index_path, dst),
        classes=len(listing.classes), unlabelled=unlabelled, seconds=round(seconds, 3), workers=workers,
    )
    write_folder_manifest(dst, manifest)
    return PreprocessResult(
        dst=dst, manifest_path=dst / FOLDER_MANIFEST, spec=resolved.spec, layout=resolved.layout,
        spec_source=resolved.source, source_kind=listing.kind, total=len(images), written=written, kept=kept,
        bytes_written=bytes_written, seconds=seconds, workers=workers, skipped=manifest["skipped"],
        labels_path=labels_path, class_index_path=class_index_path, classes=len(listing.classes),
        unlabelled=unlabelled, ignored=len(listing.ignored),
    )


def _target_input(target: Path, resolved: ResolvedSpec, layout: str | None) -> ResolvedInput:
    """The model file decides spec and layout; a ``layout`` that disagrees is refused."""
    if resolved.spec is None:
        raise InferKitError(
            f"model {target} carries no preprocessing spec (no infer-kit metadata or artifact manifest)",
            hint="re-export it with 'infer-kit export', or give --arch NAME or --preset NAME instead",
        )
    if resolved.layout is None:
        raise InferKitError(f"model {target} does not say which input layout it takes",
                            hint="rebuild it with 'infer-kit atc', or give --arch or --preset with --layout")
    if layout is not None and layout != resolved.layout:
        raise InferKitError(
            f"--layout {layout} conflicts with {target}, which takes {resolved.layout} tensors "
            f"({resolved.spec.sample_dtype(resolved.layout)} "
            f"{'x'.join(map(str, resolved.spec.sample_shape(resolved.layout)))})",
            hint="leave out --layout: the model decides it",
        )
    return ResolvedInput(resolved.spec, resolved.layout, resolved.source, target)


def _note_ignored(listing: Listing) -> None:
    if listing.ignored:
        count = len(listing.ignored)
        log.info(f"ignored {count} file{'s' if count > 1 else ''} that {'are' if count > 1 else 'is'} not an image "
                 f"(e.g. {listing.ignored[0]})")
    if listing.ignored_folders:
        count = len(listing.ignored_folders)
        log.info(f"ignored {count} sub-folder{'s' if count > 1 else ''} of the flat source folder "
                 f"(e.g. {listing.ignored_folders[0]}/)")


def _check_labels(labels: str | os.PathLike[str] | None, images: list[ImageFile], on_error: str) -> list[str]:
    if labels is None:
        return []
    missing = missing_labels(labels, images)
    if missing and on_error == "stop":
        raise InferKitError(
            f"label file {labels} has no label for {len(missing)} of {len(images)} images "
            f"(e.g. {', '.join(missing[:3])})",
            hint="give the label file of this image set, or --on-error skip to write the tensors anyway",
        )
    if missing:
        log.warning(f"{len(missing)} images have no label in {labels} (e.g. {', '.join(missing[:3])}); "
                    "they are listed under 'unlabelled' in the manifest")
    return missing


def _check_destination(dst: Path, resolved: ResolvedInput, keys: set[str]) -> None:
    """Refuse a destination that holds another spec's tensors, or files this run would not write."""
    if dst.exists() and not dst.is_dir():
        raise InferKitError(f"destination {dst} is a file", hint="give a folder for the tensor files")
    if not dst.is_dir():
        return
    existing = sorted(entry.name for entry in os.scandir(dst) if entry.name.endswith(".bin") and entry.is_file())
    manifest = read_folder_manifest(dst)
    if manifest is None:
        if existing:
            raise InferKitError(
                f"destination {dst} already holds {len(existing)} .bin files without an infer-kit manifest "
                f"(e.g. {existing[0]})",
                hint="use an empty folder, or delete those files",
            )
        if (dst / FOLDER_MANIFEST).exists():
            raise InferKitError(f"{dst / FOLDER_MANIFEST} is not an infer-kit folder manifest",
                                hint="use an empty folder, or delete that file")
        return
    layout = resolved.layout
    if manifest.layout != layout:
        raise InferKitError(
            f"destination {dst} holds {manifest.layout} tensors ({manifest.dtype} {_dims(manifest.shape)}), "
            f"this run writes {layout} tensors ({resolved.spec.sample_dtype(layout)} "
            f"{_dims(resolved.spec.sample_shape(layout))})",
            hint="use another destination folder, or delete this one to replace its tensors",
        )
    diffs = manifest.spec.differences(resolved.spec, layout=layout)
    if diffs:
        raise InferKitError(
            f"destination {dst} holds {layout} tensors of another spec (destination vs this run: {'; '.join(diffs)})",
            hint="use another destination folder, or delete this one to replace its tensors",
        )
    stale = [name for name in existing if name[: -len(".bin")] not in keys]
    if stale:
        raise InferKitError(
            f"destination {dst} holds {len(stale)} .bin files that this run would not write (e.g. {stale[0]}): "
            "they come from other images or a larger --limit",
            hint="use an empty folder, or delete those files",
        )


def _is_complete(path: Path, nbytes: int) -> bool:
    try:
        return path.stat().st_size == nbytes
    except OSError:
        return False


def _write_all(
    images: list[ImageFile], dst: Path, resolved: ResolvedInput, workers: int, on_error: str, lock: Path,
    cluster: ClusterWriter | None = None,
) -> tuple[int, int, list[dict[str, str]]]:
    """Write every image's tensor file; return (files written, bytes written, skipped images)."""
    job = Job(resolved.spec, resolved.layout, str(dst))
    tasks = [Task(index, str(image.path), image.key) for index, image in enumerate(images)]
    written = bytes_written = 0
    skipped: list[dict[str, str]] = []
    if cluster is not None:
        chunks = cluster.write(tasks, job, lock_file=lock)
    else:
        chunks = write_tensors(tasks, job, workers=workers, lock_file=lock)
    with progress(total=len(tasks), desc="preprocess", unit="img") as bar, contextlib.closing(chunks) as outcomes:
        for chunk in outcomes:
            for outcome in chunk:
                image = images[outcome.index]
                if outcome.reason is None:
                    written += 1
                    bytes_written += outcome.nbytes
                    continue
                if on_error == "stop":
                    outcomes.close()
                    raise InferKitError(
                        f"cannot preprocess {image.path}: {outcome.reason}",
                        hint="fix or remove the file, or rerun with --on-error skip "
                        "(and --resume to keep the files already written)",
                    )
                log.warning(f"skipped {image.path}: {outcome.reason}")
                skipped.append({"file": image.relpath, "reason": outcome.reason, "key": image.key})
            bar.update(len(chunk))
    skipped.sort(key=lambda item: item["file"])
    return written, bytes_written, skipped


def _label_files(
    labels: str | os.PathLike[str] | None, kind: str, classes: list[str], done: list[ImageFile], dst: Path
) -> tuple[Path | None, Path | None]:
    if labels is not None:
        return Path(labels), None
    if kind != "tree":
        return None, None
    return write_tree_labels(dst, done, classes), dst / CLASS_INDEX_FILE


def _manifest(resolved: ResolvedInput, root: Path, kind: str, *, count: int, complete: bool,
              **extra: Any) -> dict[str, Any]:
    spec, layout = resolved.spec, resolved.layout
    data = {
        "spec": spec.to_dict(),
        "spec_source": resolved.source,
        "target": str(resolved.target) if resolved.target else None,
        "layout": layout,
        "dtype": spec.sample_dtype(layout),
        "shape": list(spec.sample_shape(layout)),
        "geometry": spec.geometry_dict() if layout == "aipp" else None,
        "bytes_per_file": spec.sample_nbytes(layout),
        "count": count,
        "source": str(root.resolve()),
        "source_kind": kind,
        "complete": complete,
        "skipped": [],
        "labels": None,
        "class_index": None,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    data.update(extra)
    return data


def _dims(shape: tuple[int, ...] | list[int]) -> str:
    return "x".join(str(d) for d in shape)


def _relative(path: Path | None, base: Path) -> str | None:
    if path is None:
        return None
    try:
        return os.path.relpath(path.resolve(), base.resolve())
    except ValueError:
        return str(path.resolve())
