"""Sample inputs for the graph analyses (range check, INT8 calibration): a preprocessed folder, or noise.

A folder ``preprocess`` wrote is read in either layout: ``float`` tensors (float32 CHW) are the
network's input as they are; ``aipp`` tensors (uint8 HWC sources) go through the AIPP numpy
reference first (:func:`infer_kit.aipp.emulate_aipp`), so the network sees what the device's
AIPP would give it. Files that do not fit the model (size, layout, spec) are refused in one line
before anything runs. Without a folder, uniform noise images are normalised with the spec: a weak
proxy for real images, and the record says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer_kit.aipp import DEFAULT_ASSUMPTIONS, AippOp, Assumptions, emulate_aipp, resolve_geometry, source_shape
from infer_kit.artifacts import read_folder_manifest
from infer_kit.errors import InferKitError
from infer_kit.result_files import natural_sort
from infer_kit.spec import PreprocessSpec

if TYPE_CHECKING:
    import numpy as np

SAMPLE_SUFFIXES = (".bin", ".BIN", ".npy", ".NPY")
WEAK_PROXY = "random inputs are a weak proxy for real images: give a preprocessed folder (--calibration PREP_DIR)"


@dataclass(frozen=True)
class SampleSet:
    """Where a graph analysis's inputs come from, and how to read them as float32 NCHW batches."""

    kind: str                     # "folder" | "random"
    count: int
    chw: tuple[int, int, int]
    folder: Path | None = None
    layout: str | None = None     # "float" | "aipp" (folder only)
    files: tuple[Path, ...] = ()
    spec: PreprocessSpec | None = None
    op: AippOp | None = None
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS
    seed: int = 0

    def describe(self) -> str:
        if self.kind == "random":
            return f"{self.count} random image(s) ({WEAK_PROXY})"
        through = ", through AIPP" if self.layout == "aipp" else ""
        return f"{self.count} image(s) from {self.folder} ({self.layout} layout{through})"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "folder": str(self.folder) if self.folder else None,
                "layout": self.layout, "note": WEAK_PROXY if self.kind == "random" else None,
                "first": self.files[0].name if self.files else None}

    def batches(self, batch: int = 4) -> Iterator[np.ndarray]:
        """float32 ``(n, C, H, W)`` batches of at most ``batch`` samples, in file order."""
        import numpy as np

        if self.kind == "random":
            rng = np.random.default_rng(self.seed)
            for start in range(0, self.count, batch):
                yield _noise(rng, min(batch, self.count - start), self.chw, self.spec)
            return
        for start in range(0, self.count, batch):
            arrays = [_load(path) for path in self.files[start:start + batch]]
            if self.layout == "aipp":
                assert self.op is not None
                shape = source_shape(self.op, resolve_geometry(self.op, self.chw[1:]))
                stacked = np.stack([a.reshape(shape) for a in arrays])
                yield emulate_aipp(self.op, stacked, model_hw=self.chw[1:],
                                   assumptions=self.assumptions).astype(np.float32)
            else:
                yield np.stack([a.view(np.float32).reshape(self.chw) for a in arrays])

    def raw_batches(self, batch: int) -> Iterator[tuple[np.ndarray, int]]:
        """The files as they are (uint8 sources or float32 tensors) in batches of exactly ``batch``: the
        last one padded with copies of its first file; (array, real samples in it)."""
        import numpy as np

        for start in range(0, self.count, batch):
            arrays = [_load(path) for path in self.files[start:start + batch]]
            real = len(arrays)
            arrays += [arrays[0]] * (batch - real)
            yield np.stack(arrays), real


def _load(path: Path) -> np.ndarray:
    import numpy as np

    if path.suffix.lower() == ".npy":
        return np.ascontiguousarray(np.load(path, allow_pickle=False)).reshape(-1).view(np.uint8)
    return np.fromfile(path, dtype=np.uint8)


def _noise(rng: Any, n: int, chw: tuple[int, int, int], spec: PreprocessSpec | None) -> np.ndarray:
    import numpy as np

    pixels = rng.random((n, *chw), dtype=np.float32)
    if spec is None:
        return (pixels * 2 - 1).astype(np.float32)
    channels = chw[0]
    mean = np.array(spec.planes(spec.mean)[:channels], np.float32).reshape(1, -1, 1, 1)
    std = np.array(spec.planes(spec.std)[:channels], np.float32).reshape(1, -1, 1, 1)
    return ((pixels - mean) / std).astype(np.float32)


def random_samples(count: int, chw: tuple[int, int, int], spec: PreprocessSpec | None, seed: int = 0) -> SampleSet:
    return SampleSet("random", count, chw, spec=spec, seed=seed)


def sample_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InferKitError(f"sample folder not found: {folder}", hint="give a folder 'infer-kit preprocess' wrote")
    return natural_sort([p for p in folder.iterdir() if p.is_file() and p.suffix in SAMPLE_SUFFIXES])


def folder_samples(folder: str | os.PathLike[str], *, chw: tuple[int, int, int], spec: PreprocessSpec | None,
                   op: AippOp | None, limit: int | None = None, what: str = "calibration",
                   assumptions: Assumptions = DEFAULT_ASSUMPTIONS, strict_limit: bool = False) -> SampleSet:
    """The first ``limit`` tensors of a preprocessed ``folder`` for a network taking float32 ``chw``.

    ``op`` is the AIPP in front of the network (needed to read an ``aipp``-layout folder).
    ``strict_limit``: fewer files than ``limit`` is an error (the user asked for that many).
    """
    path = Path(folder)
    files = sample_files(path)
    if not files:
        raise InferKitError(f"{what} folder {path} holds no .bin or .npy files",
                            hint="give a folder 'infer-kit preprocess' wrote")
    if limit is not None and strict_limit and len(files) < limit:
        raise InferKitError(f"{what} folder {path} holds {len(files)} tensor file(s), fewer than the {limit} asked for",
                            hint=f"preprocess more images, or ask for --samples {len(files)}")
    files = files[:limit] if limit is not None else files
    float_bytes = 4 * chw[0] * chw[1] * chw[2]
    aipp_shape = source_shape(op, resolve_geometry(op, chw[1:])) if op is not None and op.mode == "static" else None
    aipp_bytes = int(aipp_shape[0] * aipp_shape[1] * aipp_shape[2]) if aipp_shape else None
    manifest = read_folder_manifest(path)
    if manifest is not None:
        layout = manifest.layout
        if spec is not None:
            diffs = manifest.spec.differences(spec, layout=layout)
            if diffs:
                raise InferKitError(f"{what} folder {path} was preprocessed with another spec than the model's "
                                    f"(folder vs model: {'; '.join(diffs)})",
                                    hint="preprocess the images with 'infer-kit preprocess --for MODEL'")
    else:
        size = _nbytes(files[0])
        layout = "float" if size == float_bytes else ("aipp" if size == aipp_bytes else "unknown")
    if layout == "aipp" and op is None:
        raise InferKitError(f"{what} folder {path} holds aipp-layout (uint8) images and no AIPP config is in front "
                            "of the network to turn them into its input",
                            hint="preprocess with --layout float, or give a model that carries its spec "
                                 "(atc also takes --aipp CONFIG)")
    expected = {"float": float_bytes, "aipp": aipp_bytes}.get(layout)
    if expected is None:
        raise InferKitError(f"{what} folder {path}: {files[0].name} is {_nbytes(files[0])} bytes, which is neither "
                            f"float32 {'x'.join(map(str, chw))} ({float_bytes} bytes)"
                            + (f" nor uint8 {'x'.join(map(str, aipp_shape))} ({aipp_bytes} bytes)" if aipp_shape
                               else ""), hint="preprocess the images with 'infer-kit preprocess --for MODEL'")
    bad = [f for f in files if _nbytes(f) != expected]
    if bad:
        described = (f"float32 {'x'.join(map(str, chw))}" if layout == "float"
                     else f"uint8 {'x'.join(map(str, aipp_shape or ()))}")
        raise InferKitError(f"{len(bad)} of {len(files)} {what} file(s) in {path} are not {expected} bytes "
                            f"({described}), e.g. {bad[0].name} ({_nbytes(bad[0])} bytes)",
                            hint="preprocess the images with 'infer-kit preprocess --for MODEL'")
    return SampleSet("folder", len(files), chw, folder=path, layout=layout, files=tuple(files), spec=spec,
                     op=op if layout == "aipp" else None, assumptions=assumptions)


def _nbytes(path: Path) -> int:
    if path.suffix.lower() == ".npy":
        import math

        from infer_kit.npy import read_npy_header

        try:
            with path.open("rb") as handle:
                dtype, shape = read_npy_header(handle, str(path))
        except (OSError, ValueError) as exc:
            raise InferKitError(f"cannot read {path}: {exc}") from None
        return math.prod(shape) * dtype.itemsize
    return path.stat().st_size
