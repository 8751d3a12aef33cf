"""Top-k scoring: label ranks, top-k predictions, and the accumulators that sum them up.

The ModelZoo script sorts each output with ``np.argsort(-prediction)`` and looks for the
label among the first k entries. Sorting 1000 values per image is not needed: the label's
position in that order is its **rank**, the number of scores above the label's score plus
the tied scores the sort puts before it, so one comparison pass per image is enough. Only a
row whose label score is tied with another score while fewer than k scores are above it needs
its full order, and gets it from the tie rule (:mod:`infer_kit.postprocess.ties`: numpy's own
argsort on the float32 values by default, as the scorer; or class-index order; or numpy's
scalar introsort restated).

Workers score chunks of files (:func:`score_chunk`) and send back only ranks and top-k
indices, never the score rows, so a run of any size is scored in bounded memory.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from infer_kit.postprocess.run_outputs import BinLayout, OutputFile, OutputProblem, ProblemLog, read_output
from infer_kit.postprocess.ties import check_tie_break, descending_order


def label_ranks(rows: Any, labels: Any, tie_break: str = "index", window: int | None = None) -> Any:
    """Position of each row's label in that row's descending order (0 = top-1), ties by ``tie_break``.

    With ``window`` only positions below it are exact under the numpy rules (a label with at
    least ``window`` scores above it keeps rank = that count, which is all top-k needs).
    """
    import numpy as np

    rows = _scores(rows, tie_break)
    labels = np.asarray(labels, dtype=np.int64)
    positions = np.arange(rows.shape[1]) if rows.ndim == 2 else np.arange(0)
    picked = rows[np.arange(len(rows)), labels][:, None]
    above = (rows > picked).sum(axis=1)
    equal = rows == picked
    if tie_break == "index":
        tied_before = (equal & (positions[None, :] < labels[:, None])).sum(axis=1)
        return (above + tied_before).astype(np.int32)
    ranks = above.astype(np.int32)
    tied = equal.sum(axis=1) > 1
    if window is not None:
        tied &= above < window
    which = np.nonzero(tied)[0]
    if which.size:
        order = descending_order(rows[which], tie_break)
        ranks[which] = np.argmax(order == labels[which][:, None], axis=1)
    return ranks


def top_indices(rows: Any, k: int, tie_break: str = "index") -> Any:
    """The first ``k`` class indices of each row in descending order, equal scores by ``tie_break``."""
    import numpy as np

    rows = _scores(rows, tie_break)
    n, width = rows.shape
    k = min(k, width)
    if n == 0 or k == 0:
        return np.zeros((n, k), dtype=np.int32)
    if k == width:
        return descending_order(rows, tie_break)[:, :k].astype(np.int32)
    part = np.argpartition(-rows, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(rows, part, axis=1)
    order = np.lexsort((part, -values), axis=1)
    top = np.take_along_axis(part, order, axis=1)
    # Where the k-th score is tied with a score outside the selection, partitioning chose
    # arbitrarily among the tied classes; under the numpy rules any tie inside the top k also
    # needs the rule's own order: redo those rows with the full order.
    kth = np.take_along_axis(rows, top[:, -1:], axis=1)
    ambiguous = (rows >= kth).sum(axis=1) > k
    if tie_break != "index" and k > 1:
        ordered = np.take_along_axis(rows, top, axis=1)
        ambiguous |= (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
    if ambiguous.any():
        top[ambiguous] = descending_order(rows[ambiguous], tie_break)[:, :k]
    return top.astype(np.int32)


def _scores(rows: Any, tie_break: str) -> Any:
    """The rows as the tie rule compares them: float32 (the scorer's dtype) for the numpy rules."""
    import numpy as np

    rows = np.asarray(rows)
    check_tie_break(tie_break)
    if tie_break != "index" and rows.dtype != np.float32:
        rows = rows.astype(np.float32)
    return rows


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
    tie_break: str = "index"


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
    window = min(task.topk, task.width)
    ranks = label_ranks(rows, labels, task.tie_break, window) if len(good) else np.zeros(0, dtype=np.int32)
    return ChunkScore(good, ranks, top_indices(rows, task.topk, task.tie_break), problems)


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
