"""The ``evaluate`` stage: run outputs + labels -> the ModelZoo ``result.json`` (+ details).

:func:`evaluate` lists output 0 of every image in one or more result folders (shards
merge), matches them to the labels, scores them on every core in bounded memory, writes
``result.json`` exactly as ``vision_metric_ImageNet.py`` does, optionally a details JSON
(per-class accuracy, confusion pairs, the images that missed), and returns the scores;
accuracy gates are the caller's (:mod:`infer_kit.gates`), checked after the files are
written, so CI keeps the evidence.

Every problem is an error with counts and the first few names, never a silent skip:
outputs without a label, labels without an output (unless ``allow_partial``, which reports
the coverage), malformed label lines, unreadable, non-numeric, ragged or multi-row outputs,
mixed widths, labels outside the output width.

``engine="ray"`` scores the chunks on a Ray cluster (:mod:`infer_kit.postprocess.ray_scoring`)
and merges them in the same order: the same ``result.json`` and details, byte for byte.

The 1000/1001 rule: an output of width 1001 has a background class at index 0, so with
``label_offset="auto"`` labels are shifted by one (as the ModelZoo does), and the choice is
logged.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from infer_kit.cluster import RayOptions, check_engine
from infer_kit.console import log
from infer_kit.errors import InferKitError
from infer_kit.fsutil import check_output_file, write_json_atomic
from infer_kit.postprocess.ground_truth import GroundTruth, load_ground_truth
from infer_kit.postprocess.parallel import chunked, map_chunks, resolve_workers
from infer_kit.postprocess.ray_scoring import ClusterScoring
from infer_kit.postprocess.result_json import accuracy_strings, write_result_json
from infer_kit.postprocess.run_outputs import (
    OutputFile,
    ProblemLog,
    RunOutputs,
    expected_width,
    find_outputs,
    first_names,
)
from infer_kit.postprocess.scoring import ChunkScore, ScoreTask, TopKAccumulator, score_chunk
from infer_kit.postprocess.ties import DEFAULT_TIE_BREAK, check_tie_break
from infer_kit.result_files import natural_key

RESULT_JSON = "result.json"
DETAILS_FORMAT = "infer-kit/evaluation-details"


@dataclass(frozen=True)
class ClassAccuracy:
    """One class (label-file index): how many images, how many top-1 and top-k hits."""

    label: int
    name: str | None
    images: int
    top1: int
    topk: int

    @property
    def top1_accuracy(self) -> float:
        return self.top1 / self.images

    @property
    def topk_accuracy(self) -> float:
        return self.topk / self.images


@dataclass(frozen=True)
class ConfusionPair:
    """Images of class ``label`` whose top-1 was ``predicted`` (label-file indices; -1 = background)."""

    label: int
    predicted: int
    count: int


@dataclass(frozen=True)
class Misclassified:
    """An image whose top-1 missed: its label, the top-k predicted labels, the label's rank (0-based)."""

    image: str
    label: int
    predicted: tuple[int, ...]
    rank: int | None  # None when the label is not within the top-k


@dataclass(frozen=True)
class EvaluationResult:
    images: int
    classes: int
    topk: int
    hits: tuple[int, ...]  # images whose label is at rank i (i < min(topk, classes))
    accuracies: tuple[float, ...]  # cumulative top-1..top-k, fractions
    result_path: Path
    label_offset: int
    label_offset_reason: str
    labelled: int
    missing: tuple[str, ...]  # labelled images without an output (allow_partial)
    per_class: tuple[ClassAccuracy, ...]
    confusion_pairs: tuple[ConfusionPair, ...]
    misclassified: tuple[Misclassified, ...]
    formats: Mapping[str, int]
    result_dirs: tuple[Path, ...]
    label_source: str
    details_path: Path | None = None
    seconds: float = 0.0
    workers: int = 1
    tie_break: str = DEFAULT_TIE_BREAK

    @property
    def top1(self) -> float:
        return self.accuracies[0]

    @property
    def top5(self) -> float | None:
        return self.accuracies[4] if len(self.accuracies) >= 5 else None

    @property
    def coverage(self) -> float:
        """Share of labelled images that had an output."""
        return self.images / self.labelled if self.labelled else 0.0

    def accuracy_strings(self) -> list[str]:
        """The TopN strings exactly as result.json holds them."""
        return accuracy_strings(self.hits, self.images)

    def to_details(self) -> dict[str, Any]:
        """The ``--details`` document: everything result.json must not hold."""
        names = {c.label: c.name for c in self.per_class if c.name is not None}
        return {
            "format": DETAILS_FORMAT,
            "version": 1,
            "result_dirs": [str(d) for d in self.result_dirs],
            "labels": self.label_source,
            "result_json": str(self.result_path),
            "images": self.images,
            "classes": self.classes,
            "labelled": self.labelled,
            "coverage": self.coverage,
            "missing": list(self.missing),
            "label_offset": self.label_offset,
            "label_offset_reason": self.label_offset_reason,
            "formats": dict(self.formats),
            "topk": self.topk,
            "tie_break": self.tie_break,
            "hits_by_rank": list(self.hits),
            "accuracy": {f"top{i + 1}": acc for i, acc in enumerate(self.accuracies)},
            "per_class": [
                {"label": c.label, "name": c.name, "images": c.images, "top1": c.top1, f"top{self.topk}": c.topk,
                 "top1_accuracy": c.top1_accuracy, f"top{self.topk}_accuracy": c.topk_accuracy}
                for c in self.per_class
            ],
            "confusion_pairs": [
                {"label": p.label, "predicted": p.predicted, "count": p.count,
                 "label_name": names.get(p.label), "predicted_name": names.get(p.predicted)}
                for p in self.confusion_pairs
            ],
            "misclassified": [
                {"image": m.image, "label": m.label, "predicted": list(m.predicted), "rank": m.rank}
                for m in self.misclassified
            ],
        }


def evaluate(
    result_dirs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    labels: str | os.PathLike[str] | Mapping[str, int] | GroundTruth,
    *,
    output: str | os.PathLike[str] | None = None,
    topk: int = 5,
    label_offset: str | int = "auto",
    details: str | os.PathLike[str] | None = None,
    allow_partial: bool = False,
    workers: int | None = None,
    dtype: str | None = None,
    width: int | None = None,
    tie_break: str = DEFAULT_TIE_BREAK,
    engine: str = "local",
    address: str | None = None,
    ray_options: RayOptions | None = None,
) -> EvaluationResult:
    """Score run outputs against labels into ``result.json`` (see the module docstring).

    ``output`` defaults to ``result.json`` beside the first result folder (where the
    ModelZoo recipe puts it); an existing folder means ``<folder>/result.json``.
    ``dtype``/``width`` decode BIN outputs when no run summary says how. ``tie_break`` orders
    equal scores (:mod:`infer_kit.postprocess.ties`; default: numpy's argsort, as the scorer).
    Accuracy gates are checked by the caller (:mod:`infer_kit.gates`). ``engine="ray"`` scores on a
    Ray cluster (``address``: ``auto`` or ``HOST:PORT``).
    """
    started = time.perf_counter()
    ray = check_engine(engine, address) == "ray"
    _check_arguments(topk, label_offset)
    check_tie_break(tie_break)
    if details is not None:
        check_output_file(details, what="details file")
    truth = load_ground_truth(labels)
    outputs = find_outputs(result_dirs, dtype=dtype, width=width)
    result_file = check_output_file(_result_path(output, outputs.folders[0]), what="result file")
    if details is not None:
        check_output_file(details, what="details file", keep={"the result file": result_file})
    missing = _match(outputs, truth, allow_partial)
    classes, width_source = expected_width(outputs)
    offset, reason = _label_offset(label_offset, classes)
    model_labels = _model_labels(outputs.files, truth, offset, classes)

    cluster = ClusterScoring((ray_options or RayOptions()).with_address(address)) if ray else None
    n_workers = cluster.open(str(outputs.files[0].path)) if cluster else resolve_workers(workers, len(outputs.files))
    accumulator, misclassified, problems = _score(outputs, model_labels, classes, topk, n_workers, offset,
                                                  tie_break, cluster)
    problems.raise_if_any(total=len(outputs.files), width=classes, width_source=width_source,
                          hint="rerun 'infer-kit run' for those images, or delete them and pass --allow-partial")

    result_path = write_result_json(result_file, accumulator.count, classes, accumulator.hits.tolist())
    result = EvaluationResult(
        images=accumulator.count,
        classes=classes,
        topk=topk,
        hits=tuple(accumulator.hits.tolist()),
        accuracies=tuple(accumulator.accuracies()),
        result_path=result_path,
        label_offset=offset,
        label_offset_reason=reason,
        labelled=len(truth.labels),
        missing=tuple(missing),
        per_class=_per_class(accumulator, offset, truth),
        confusion_pairs=tuple(
            ConfusionPair(label - offset, predicted - offset, count)
            for (label, predicted), count in sorted(accumulator.confusion.items(), key=lambda kv: (-kv[1], kv[0]))
        ),
        misclassified=tuple(misclassified),
        formats=outputs.formats,
        result_dirs=outputs.folders,
        label_source=truth.source,
        seconds=time.perf_counter() - started,
        workers=n_workers,
        tie_break=tie_break,
    )
    if details is not None:
        details_path = Path(details)
        write_json_atomic(details_path, result.to_details())
        result = replace(result, details_path=details_path)
    log.info("scored %d images (%s) in %.1f s with %d process%s; wrote %s", result.images,
             ", ".join(f"{n} {f.upper()}" for f, n in result.formats.items()), result.seconds, n_workers,
             "" if n_workers == 1 else "es", result_path)
    return result


def _check_arguments(topk: int, label_offset: str | int) -> None:
    if str(label_offset).strip().lower() not in ("auto", "0", "1"):
        raise InferKitError(f"--label-offset must be auto, 0 or 1, not {label_offset!r}")
    if topk < 1:
        raise InferKitError(f"--topk must be at least 1, not {topk}")


def _match(outputs: RunOutputs, truth: GroundTruth, allow_partial: bool) -> list[str]:
    """Refuse outputs without labels; labels without outputs unless ``allow_partial`` (returned)."""
    keys = set(outputs.keys)
    unlabelled = [k for k in outputs.keys if k not in truth.labels]
    if unlabelled:
        raise InferKitError(
            f"{len(unlabelled)} of {len(keys)} outputs {'has' if len(unlabelled) == 1 else 'have'} no label "
            f"in {truth.source} (first: {first_names(unlabelled)})",
            hint="check that the labels belong to these images (keys are file names up to the first '.')",
        )
    missing = sorted((k for k in truth.labels if k not in keys), key=natural_key)
    if missing and not allow_partial:
        raise InferKitError(
            f"{len(missing)} of {len(truth.labels)} labelled images {'has' if len(missing) == 1 else 'have'} "
            f"no output in {', '.join(map(str, outputs.folders))} (first: {first_names(missing)})",
            hint=f"finish the run, add the missing shard, or pass --allow-partial to score the {len(keys)} "
            f"images present ({100 * len(keys) / len(truth.labels):.2f}% coverage)",
        )
    if missing:
        log.warning("partial run: %d of %d labelled images have outputs (%.2f%% coverage); %d missing (first: %s)",
                    len(keys), len(truth.labels), 100 * len(keys) / len(truth.labels), len(missing),
                    first_names(missing))
    return missing


def _label_offset(label_offset: str | int, classes: int) -> tuple[int, str]:
    value = str(label_offset).strip().lower()
    if value == "auto":
        if classes == 1001:
            reason = "auto: outputs have 1001 classes (index 0 is background), so labels are shifted by +1"
            log.info("label offset 1 (%s)", reason)
            return 1, reason
        reason = f"auto: outputs have {classes} classes, labels are used as they are"
        log.info("label offset 0 (%s)", reason)
        return 0, reason
    return int(value), "given"


def _model_labels(files: list[OutputFile], truth: GroundTruth, offset: int, classes: int) -> list[int]:
    shifted = [truth.labels[f.key] + offset for f in files]
    outside = [f"{f.key}={truth.labels[f.key]}" for f, label in zip(files, shifted, strict=True) if label >= classes]
    if outside:
        raise InferKitError(
            f"{len(outside)} label{' does' if len(outside) == 1 else 's do'} not fit outputs of width {classes} "
            f"with label offset {offset} "
            f"(first: {first_names(outside)})",
            hint="check --label-offset and that the label file belongs to this model's classes",
        )
    return shifted


def _score(
    outputs: RunOutputs, model_labels: list[int], classes: int, topk: int, workers: int, offset: int,
    tie_break: str, cluster: ClusterScoring | None = None,
) -> tuple[TopKAccumulator, list[Misclassified], ProblemLog]:
    """Stream chunk results into the accumulator; only misses are kept per image."""
    import numpy as np

    accumulator = TopKAccumulator(topk, classes)
    problems = ProblemLog()
    misclassified: list[Misclassified] = []
    tasks = [ScoreTask(list(files), list(labels), classes, outputs.bin_layout, topk, tie_break)
             for files, labels in zip(chunked(outputs.files), chunked(model_labels), strict=True)]
    sizes = [len(t.files) for t in tasks]
    if cluster is not None:
        results = cluster.map_chunks(score_chunk, tasks, sizes=sizes, desc="evaluate")
    else:
        results = map_chunks(score_chunk, tasks, sizes=sizes, workers=workers, desc="evaluate")
    for task, chunk in zip(tasks, results, strict=True):
        problems.merge(chunk.problems)
        if not chunk.positions:
            continue
        labels = np.asarray([task.labels[i] for i in chunk.positions])
        accumulator.add(labels, chunk.ranks, chunk.top[:, 0])
        if not problems:
            misclassified.extend(_misses(task, chunk, labels, offset))
    return accumulator, misclassified, problems


def _misses(task: ScoreTask, chunk: ChunkScore, labels: Any, offset: int) -> list[Misclassified]:
    misses = []
    for row in (chunk.ranks != 0).nonzero()[0].tolist():
        rank = int(chunk.ranks[row])
        misses.append(Misclassified(
            image=task.files[chunk.positions[row]].key,
            label=int(labels[row]) - offset,
            predicted=tuple(int(p) - offset for p in chunk.top[row].tolist()),
            rank=rank if rank < chunk.top.shape[1] else None,
        ))
    return misses


def _per_class(accumulator: TopKAccumulator, offset: int, truth: GroundTruth) -> tuple[ClassAccuracy, ...]:
    return tuple(
        ClassAccuracy(label - offset, truth.name(label - offset), images, top1, top_k)
        for label, (images, top1, top_k) in sorted(accumulator.per_class.items())
    )


def _result_path(output: str | os.PathLike[str] | None, first_folder: Path) -> Path:
    if output is None:
        return first_folder.resolve().parent / RESULT_JSON
    path = Path(output)
    return path / RESULT_JSON if path.is_dir() else path
