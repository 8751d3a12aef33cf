"""Per-image agreement of two runs: torch vs ONNX, ONNX vs emulated OM, fp32 vs fp16/int8.

:func:`compare` pairs output 0 of every image in run A with the same image in run B (the
runs may use different formats, e.g. TXT vs BIN, and each may be several shard folders),
and measures, image by image: whether the top-1 class is the same, how many of the top-5
classes are shared, the max and mean absolute difference of the scores, and their cosine
similarity. The images whose top-1 changed are listed (with their labels, and which run
was right, when labels are given). Chunks are compared on every core; score rows are never
all held in memory.

Disagreement = images whose top-1 changed, plus, when ``atol`` is given, images whose
scores differ by more than ``atol`` anywhere; a limit on it is the caller's gate
(:meth:`infer_kit.gates.Gates.agreement_failures`), checked once the report is written.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infer_kit.console import log
from infer_kit.errors import InferKitError
from infer_kit.fsutil import check_output_file, write_json_atomic
from infer_kit.postprocess.ground_truth import GroundTruth, load_ground_truth
from infer_kit.postprocess.parallel import chunked, map_chunks, resolve_workers
from infer_kit.postprocess.run_outputs import (
    BinLayout,
    OutputFile,
    ProblemLog,
    RunOutputs,
    expected_width,
    find_outputs,
    first_names,
)
from infer_kit.postprocess.scoring import load_rows, top_indices

COMPARE_FORMAT = "infer-kit/comparison"
OVERLAP_K = 5
LARGEST_SHOWN = 20


@dataclass(frozen=True)
class ChangedImage:
    """An image whose top-1 differs between the runs (classes in label-file indices)."""

    image: str
    top1_a: int
    top1_b: int
    label: int | None
    max_abs_diff: float
    cosine: float


@dataclass(frozen=True)
class ImageDifference:
    image: str
    max_abs_diff: float
    cosine: float


@dataclass(frozen=True)
class ComparisonResult:
    run_a: tuple[Path, ...]
    run_b: tuple[Path, ...]
    formats_a: Mapping[str, int]
    formats_b: Mapping[str, int]
    images: int
    classes: int
    overlap_k: int
    top1_agreements: int
    topk_overlap_mean: float  # mean share of the top-k classes both runs have in common
    max_abs_diff: float
    mean_abs_diff: float
    cosine_min: float
    cosine_mean: float
    changed: tuple[ChangedImage, ...]
    largest: tuple[ImageDifference, ...]  # the images with the largest max |diff|
    atol: float | None
    beyond_atol: tuple[str, ...]
    disagreements: int
    label_offset: int
    labelled: int = 0
    accuracy_a: float | None = None
    accuracy_b: float | None = None
    output_path: Path | None = None
    seconds: float = 0.0
    class_names: tuple[str, ...] | None = field(default=None, repr=False)

    @property
    def top1_agreement(self) -> float:
        return self.top1_agreements / self.images if self.images else 1.0

    @property
    def disagreement_pct(self) -> float:
        return 100 * self.disagreements / self.images if self.images else 0.0

    def name(self, index: int | None) -> str | None:
        if index is None or self.class_names is None or not 0 <= index < len(self.class_names):
            return None
        return self.class_names[index]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": COMPARE_FORMAT,
            "version": 1,
            "run_a": {"folders": [str(p) for p in self.run_a], "formats": dict(self.formats_a)},
            "run_b": {"folders": [str(p) for p in self.run_b], "formats": dict(self.formats_b)},
            "images": self.images,
            "classes": self.classes,
            "top1_agreement": self.top1_agreement,
            "top1_changed": len(self.changed),
            f"top{self.overlap_k}_overlap_mean": self.topk_overlap_mean,
            "max_abs_diff": self.max_abs_diff,
            "mean_abs_diff": self.mean_abs_diff,
            "cosine_min": self.cosine_min,
            "cosine_mean": self.cosine_mean,
            "atol": self.atol,
            "beyond_atol": list(self.beyond_atol),
            "disagreements": self.disagreements,
            "disagreement_pct": self.disagreement_pct,
            "labels": {"labelled": self.labelled, "label_offset": self.label_offset,
                       "top1_accuracy_a": self.accuracy_a, "top1_accuracy_b": self.accuracy_b}
            if self.labelled else None,
            "changed": [
                {"image": c.image, "top1_a": c.top1_a, "top1_b": c.top1_b, "label": c.label,
                 "top1_a_name": self.name(c.top1_a), "top1_b_name": self.name(c.top1_b),
                 "label_name": self.name(c.label),
                 "correct": None if c.label is None else ("a" if c.top1_a == c.label else
                                                          "b" if c.top1_b == c.label else "neither"),
                 "max_abs_diff": c.max_abs_diff, "cosine": c.cosine}
                for c in self.changed
            ],
            "largest_differences": [
                {"image": d.image, "max_abs_diff": d.max_abs_diff, "cosine": d.cosine} for d in self.largest
            ],
        }


@dataclass(frozen=True)
class CompareTask:
    files_a: list[OutputFile]
    files_b: list[OutputFile]
    width: int
    layout_a: BinLayout | None
    layout_b: BinLayout | None
    k: int


@dataclass
class ChunkComparison:
    positions: list[int]
    top_a: Any
    top_b: Any
    max_abs: Any
    mean_abs: Any
    cosine: Any
    problems_a: ProblemLog
    problems_b: ProblemLog


def compare_chunk(task: CompareTask) -> ChunkComparison:
    """Load one chunk of both runs and measure each image (runs in a worker process)."""
    import numpy as np

    rows_a, good_a, problems_a = load_rows(task.files_a, task.width, task.layout_a)
    rows_b, good_b, problems_b = load_rows(task.files_b, task.width, task.layout_b)
    row_a = {position: row for row, position in enumerate(good_a)}
    row_b = {position: row for row, position in enumerate(good_b)}
    both = [position for position in good_a if position in row_b]
    a = rows_a[[row_a[p] for p in both]].astype(np.float64) if both else np.zeros((0, task.width))
    b = rows_b[[row_b[p] for p in both]].astype(np.float64) if both else np.zeros((0, task.width))
    diff = np.abs(a - b)
    max_abs = diff.max(axis=1, initial=0.0)
    # einsum, not a matrix product: no BLAS thread pools inside worker processes.
    dot = np.einsum("ij,ij->i", a, b)
    norms = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
    cosine = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), np.where(max_abs == 0, 1.0, 0.0))
    return ChunkComparison(
        positions=both,
        top_a=top_indices(a, task.k),
        top_b=top_indices(b, task.k),
        max_abs=max_abs,
        mean_abs=diff.mean(axis=1) if len(both) else np.zeros(0),
        cosine=cosine,
        problems_a=problems_a,
        problems_b=problems_b,
    )


def compare(
    run_a: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    run_b: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    labels: str | os.PathLike[str] | Mapping[str, int] | GroundTruth | None = None,
    atol: float | None = None,
    output: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    dtype: str | None = None,
    width: int | None = None,
) -> ComparisonResult:
    """Compare two runs image by image (see the module docstring); ``output`` gets the JSON report."""
    started = time.perf_counter()
    if atol is not None and not atol >= 0:  # NaN too: "|diff| > nan" holds for no image
        raise InferKitError(f"--atol must be a number of 0 or more, not {atol}")
    if output is not None:
        check_output_file(output, what="report file")
    truth = load_ground_truth(labels) if labels is not None else None
    outputs_a = find_outputs(run_a, dtype=dtype, width=width)
    outputs_b = find_outputs(run_b, dtype=dtype, width=width)
    _check_same_images(outputs_a, outputs_b)
    classes = _common_width(outputs_a, outputs_b)
    offset = 1 if classes == 1001 else 0
    if truth is not None and offset:
        log.info("label offset 1 (outputs have 1001 classes, index 0 is background)")

    k = min(OVERLAP_K, classes)
    by_key_b = {f.key: f for f in outputs_b.files}
    pairs = [(f, by_key_b[f.key]) for f in outputs_a.files]
    tasks = [CompareTask([a for a, _ in chunk], [b for _, b in chunk], classes, outputs_a.bin_layout,
                         outputs_b.bin_layout, k) for chunk in chunked(pairs)]
    n_workers = resolve_workers(workers, 2 * len(pairs))
    stats = _Totals(atol)
    problems_a, problems_b = ProblemLog(), ProblemLog()
    results = map_chunks(compare_chunk, tasks, sizes=[len(t.files_a) for t in tasks], workers=n_workers,
                         desc="compare")
    for task, chunk in zip(tasks, results, strict=True):
        problems_a.merge(chunk.problems_a)
        problems_b.merge(chunk.problems_b)
        if not (problems_a or problems_b):
            stats.add(task, chunk, truth, offset)
    problems_a.raise_if_any(total=len(pairs), width=classes, width_source="as both runs have",
                            where=f" of run A ({', '.join(map(str, outputs_a.folders))})")
    problems_b.raise_if_any(total=len(pairs), width=classes, width_source="as both runs have",
                            where=f" of run B ({', '.join(map(str, outputs_b.folders))})")

    result = stats.result(outputs_a, outputs_b, classes, k, offset, truth)
    result = _finish(result, output, started)
    return result


class _Totals:
    """Running sums over chunks, plus the per-image lists the report needs."""

    def __init__(self, atol: float | None) -> None:
        self.atol = atol
        self.images = 0
        self.agree = 0
        self.overlap = 0
        self.max_abs = 0.0
        self.sum_mean_abs = 0.0
        self.cos_min = 1.0
        self.cos_sum = 0.0
        self.changed: list[ChangedImage] = []
        self.beyond: list[str] = []
        self.largest: list[ImageDifference] = []
        self.labelled = 0
        self.correct_a = 0
        self.correct_b = 0

    def add(self, task: CompareTask, chunk: ChunkComparison, truth: GroundTruth | None, offset: int) -> None:
        import numpy as np

        n = len(chunk.positions)
        if n == 0:
            return
        keys = [task.files_a[i].key for i in chunk.positions]
        top1_a, top1_b = chunk.top_a[:, 0], chunk.top_b[:, 0]
        self.images += n
        self.agree += int((top1_a == top1_b).sum())
        self.overlap += sum(len(set(a) & set(b)) for a, b in zip(chunk.top_a.tolist(), chunk.top_b.tolist(),
                                                                 strict=True))
        self.max_abs = max(self.max_abs, float(chunk.max_abs.max()))
        self.sum_mean_abs += float(chunk.mean_abs.sum())
        self.cos_min = min(self.cos_min, float(chunk.cosine.min()))
        self.cos_sum += float(chunk.cosine.sum())
        labels = [truth.labels.get(key) if truth is not None else None for key in keys]
        for row, (key, label) in enumerate(zip(keys, labels, strict=True)):
            a, b = int(top1_a[row]) - offset, int(top1_b[row]) - offset
            if label is not None:
                self.labelled += 1
                self.correct_a += a == label
                self.correct_b += b == label
            if a != b:
                self.changed.append(ChangedImage(key, a, b, label, float(chunk.max_abs[row]),
                                                 float(chunk.cosine[row])))
        if self.atol is not None:
            self.beyond.extend(keys[i] for i in np.nonzero(chunk.max_abs > self.atol)[0].tolist())
        order = np.argsort(-chunk.max_abs, kind="stable")[:LARGEST_SHOWN]
        self.largest.extend(ImageDifference(keys[i], float(chunk.max_abs[i]), float(chunk.cosine[i]))
                            for i in order.tolist())
        self.largest = sorted(self.largest, key=lambda d: -d.max_abs_diff)[:LARGEST_SHOWN]

    def result(self, outputs_a: RunOutputs, outputs_b: RunOutputs, classes: int, k: int, offset: int,
               truth: GroundTruth | None) -> ComparisonResult:
        changed_keys = {c.image for c in self.changed}
        disagreements = len(changed_keys | set(self.beyond)) if self.atol is not None else len(changed_keys)
        n = max(self.images, 1)
        return ComparisonResult(
            run_a=outputs_a.folders, run_b=outputs_b.folders,
            formats_a=outputs_a.formats, formats_b=outputs_b.formats,
            images=self.images, classes=classes, overlap_k=k,
            top1_agreements=self.agree,
            topk_overlap_mean=self.overlap / (k * n),
            max_abs_diff=self.max_abs, mean_abs_diff=self.sum_mean_abs / n,
            cosine_min=self.cos_min, cosine_mean=self.cos_sum / n,
            changed=tuple(self.changed), largest=tuple(self.largest),
            atol=self.atol, beyond_atol=tuple(self.beyond), disagreements=disagreements,
            label_offset=offset, labelled=self.labelled,
            accuracy_a=self.correct_a / self.labelled if self.labelled else None,
            accuracy_b=self.correct_b / self.labelled if self.labelled else None,
            class_names=truth.class_names if truth is not None else None,
        )


def _check_same_images(a: RunOutputs, b: RunOutputs) -> None:
    keys_a, keys_b = set(a.keys), set(b.keys)
    only_a = [k for k in a.keys if k not in keys_b]
    only_b = [k for k in b.keys if k not in keys_a]
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} only in run A (first: {first_names(only_a)})")
        if only_b:
            parts.append(f"{len(only_b)} only in run B (first: {first_names(only_b)})")
        raise InferKitError(
            f"the runs cover different images: {'; '.join(parts)}",
            hint="compare runs over the same input folder (all shards of each run)",
        )


def _common_width(a: RunOutputs, b: RunOutputs) -> int:
    width_a, source_a = expected_width(a, where=" of run A")
    width_b, source_b = expected_width(b, where=" of run B")
    if width_a != width_b:
        raise InferKitError(
            f"the runs have different output widths: run A {width_a} ({source_a}), run B {width_b} ({source_b})",
            hint="compare two runs of the same model",
        )
    return width_a


def _finish(result: ComparisonResult, output: str | os.PathLike[str] | None, started: float) -> ComparisonResult:
    from dataclasses import replace

    path = Path(output) if output is not None else None
    result = replace(result, output_path=path, seconds=time.perf_counter() - started)
    if path is not None:
        write_json_atomic(path, result.to_dict())
    log.info("compared %d images in %.1f s%s", result.images, result.seconds, f"; wrote {path}" if path else "")
    return result
