"""Top-k scoring: label ranks, top-k predictions, and the accumulators that sum them up.

The ModelZoo script sorts each output with ``np.argsort(-prediction)`` and looks for the
label among the first k entries. Sorting 1000 values per image is not needed: the label's
position in that order is its **rank**, the number of scores above the label's score, so
one comparison pass per image is enough. Ties are broken by class index (the order a stable
sort gives); the ModelZoo's quicksort breaks exact ties arbitrarily, so the two agree on
every output whose label score is not tied with another score at the top-k boundary.

Workers score chunks of files (:func:`score_chunk`) and send back only ranks and top-k
indices, never the score rows, so a run of any size is scored in bounded memory.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from infer_kit.postprocess.run_outputs import BinLayout, OutputFile, OutputProblem, ProblemLog, read_output


def label_ranks(rows: Any, labels: Any) -> Any:
    """Position of each row's label in that row's descending order (0 = top-1), ties by index."""
    import numpy as np

    rows = np.asarray(rows)
    labels = np.asarray(labels, dtype=np.int64)
    picked = rows[np.arange(len(rows)), labels][:, None]
    above = (rows > picked).sum(axis=1)
    tied_before = ((rows == picked) & (np.arange(rows.shape[1])[None, :] < labels[:, None])).sum(axis=1)
    return (above + tied_before).astype(np.int32)


def top_indices(rows: Any, k: int) -> Any:
    """The first ``k`` class indices of each row in descending order, ties by index (stable)."""
    import numpy as np

    rows = np.asarray(rows)
    n, width = rows.shape
    k = min(k, width)
    if n == 0 or k == 0:
        return np.zeros((n, k), dtype=np.int32)
    if k == width:
        return np.argsort(-rows, axis=1, kind="stable").astype(np.int32)
    part = np.argpartition(-rows, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(rows, part, axis=1)
    order = np.lexsort((part, -values), axis=1)
    top = np.take_along_axis(part, order, axis=1)
    # Where the k-th score is tied with a score outside the selection, partitioning chose
    # arbitrarily among the tied classes: redo those rows with a stable sort.
    kth = np.take_along_axis(rows, top[:, -1:], axis=1)
    ambiguous = (rows >= kth).sum(axis=1) > k
    if ambiguous.any():
        top[ambiguous] = np.argsort(-rows[ambiguous], axis=1, kind="stable")[:, :k]
    return top.astype(np.int32)


def load_rows(files: list[OutputFile], width: int, layout: BinLayout | None) -> tuple[Any, list[int], ProblemLog]:
    """Read files into one ``(n, width)`` array; returns it, the positions that loaded, and the problems."""
    import numpy as np

    problems = ProblemLog()
    rows: list[Any] = []
    good: list[int] = []
    for position, file in enumerate(files):
        try:
            values = read_output(file, layout)
        except OutputProblem as problem:
            problems.add(problem.kind, file.name, problem.detail)
            continue
        if values.shape[0] != width:
            problems.add_width(file.name, int(values.shape[0]))
            continue
        rows.append(values)
        good.append(position)
    if not rows:
        return np.zeros((0, width), dtype=np.float32), good, problems
    return np.stack(rows), good, problems


@dataclass(frozen=True)
class ScoreTask:
    """A chunk of files to score against their labels (already in output-index space)."""

    files: list[OutputFile]
    labels: list[int]
    width: int
    layout: BinLayout | None
    topk: int


@dataclass
class ChunkScore:
    """Per-image results of one chunk: which files scored, label ranks, top-k predictions."""

    positions: list[int]
    ranks: Any
    top: Any
    problems: ProblemLog


def score_chunk(task: ScoreTask) -> ChunkScore:
    """Read and score one chunk (runs in a worker process)."""
    import numpy as np

    rows, good, problems = load_rows(task.files, task.width, task.layout)
    labels = np.asarray([task.labels[i] for i in good], dtype=np.int64)
    ranks = label_ranks(rows, labels) if len(good) else np.zeros(0, dtype=np.int32)
    return ChunkScore(good, ranks, top_indices(rows, task.topk), problems)


@dataclass
class TopKAccumulator:
    """Cumulative top-k hits, per-class counts and confusion pairs, added chunk by chunk."""

    topk: int
    classes: int
    count: int = 0
    hits: Any = None
    per_class: dict[int, list[int]] = field(default_factory=dict)  # label -> [images, top1, topk]
    confusion: Counter[tuple[int, int]] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        import numpy as np

        self.hits = np.zeros(min(self.topk, self.classes), dtype=np.int64)

    def add(self, labels: Any, ranks: Any, top1: Any) -> None:
        """``labels`` and ``top1`` in output-index space; ``ranks`` from :func:`label_ranks`."""
        import numpy as np

        labels = np.asarray(labels)
        ranks = np.asarray(ranks)
        self.count += len(labels)
        within = ranks < len(self.hits)
        self.hits += np.bincount(ranks[within], minlength=len(self.hits))[: len(self.hits)]
        for label, rank, pred in zip(labels.tolist(), ranks.tolist(), np.asarray(top1).tolist(), strict=True):
            stats = self.per_class.setdefault(label, [0, 0, 0])
            stats[0] += 1
            stats[1] += rank == 0
            stats[2] += rank < len(self.hits)
            if rank != 0:
                self.confusion[(label, pred)] += 1

    def accuracies(self) -> list[float]:
        """Cumulative top-1..top-k accuracy as fractions."""
        total = 0
        out = []
        for hit in self.hits.tolist():
            total += hit
            out.append(total / self.count if self.count else 0.0)
        return out
