"""Writing tensor files in parallel worker processes, streaming and crash-safe.

Each worker decodes, transforms and writes its own images (only file names go in and a
few numbers come back), so memory stays bounded by the images in flight whatever the
folder size. Every file is written to a hidden temporary name in the destination and
renamed into place: a killed run leaves complete files or none.

Workers come from a ``forkserver`` (the server imports PIL and numpy once; workers fork
from it), not from a fork of the caller, which may hold threads (torch, tqdm). A worker
that dies (killed, out of memory) turns into an :class:`InferKitError`, never a hang.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from infer_kit.errors import InferKitError
from infer_kit.fsutil import write_bytes_atomic
from infer_kit.preprocess.transforms import BadImage, load_rgb, sample_bytes
from infer_kit.spec import PreprocessSpec
from infer_kit.workers import as_completed, can_start_workers, process_pool

MAX_CHUNK = 16
# Below this many images starting worker processes costs more than it saves.
MIN_PARALLEL_IMAGES = 24
TASKS_PER_WORKER = 3
# Imported once in the forkserver; the workers fork from it.
PRELOAD = ("numpy", "infer_kit.preprocess.writer")


@dataclass(frozen=True)
class Job:
    """What every worker needs to know, sent once per worker."""

    spec: PreprocessSpec
    layout: str
    dst: str


@dataclass(frozen=True)
class Task:
    """One image to write: its position in the caller's list, source path and key."""

    index: int
    path: str
    key: str


@dataclass(frozen=True)
class Outcome:
    """What became of one task: bytes written, or why the image was bad."""

    index: int
    nbytes: int
    reason: str | None = None


def write_one(task: Task, job: Job) -> Outcome:
    """Decode, transform and atomically write one image."""
    try:
        data = sample_bytes(load_rgb(task.path), job.spec, job.layout)
    except BadImage as exc:
        return Outcome(task.index, 0, exc.reason)
    target = Path(job.dst) / f"{task.key}.bin"
    try:
        write_bytes_atomic(target, data)
    except OSError as exc:
        raise InferKitError(f"cannot write {target}: {exc.strerror or exc}", hint="check the free space and "
                            "permissions of the destination, then rerun with --resume") from None
    return Outcome(task.index, len(data))


def effective_workers(tasks: int, workers: int) -> int:
    """Worker processes actually used for ``tasks`` images (1 = in this process)."""
    if tasks < MIN_PARALLEL_IMAGES or not can_start_workers():
        return 1
    return max(1, min(workers, len(_chunk_bounds(tasks, workers))))


def write_tensors(tasks: Sequence[Task], job: Job, *, workers: int,
                  lock_file: Path | None = None) -> Iterator[list[Outcome]]:
    """Yield the outcomes of ``tasks`` chunk by chunk (in completion order).

    With one worker, or too few images to share, the work runs in this process.
    Close the generator (``contextlib.closing``) to stop early: pending chunks are cancelled.
    """
    if not tasks:
        return
    chunks = [tasks[start:stop] for start, stop in _chunk_bounds(len(tasks), workers)]
    workers = effective_workers(len(tasks), workers)
    if workers <= 1:
        for part in chunks:
            yield [write_one(task, job) for task in part]
        return
    yield from _write_in_pool(chunks, job, workers, lock_file)


def _write_in_pool(chunks: list[Sequence[Task]], job: Job, workers: int,
                   lock_file: Path | None) -> Iterator[list[Outcome]]:
    with process_pool(workers, what="preprocessing", initializer=_init_worker, initargs=(job,), preload=PRELOAD,
                      lock_file=lock_file,
                      hint="the files it finished are kept; rerun with --resume to finish the rest") as executor:
        yield from as_completed(executor, _write_chunk, (list(part) for part in chunks),
                                window=workers * TASKS_PER_WORKER)


def _chunk_bounds(tasks: int, workers: int) -> list[tuple[int, int]]:
    """Small chunks (a few per worker in flight) keep the cores busy until the end."""
    size = max(1, min(MAX_CHUNK, math.ceil(tasks / (max(workers, 1) * TASKS_PER_WORKER))))
    return [(start, min(start + size, tasks)) for start in range(0, tasks, size)]


_job: Job | None = None


def _init_worker(job: Job) -> None:
    global _job
    _job = job


def _write_chunk(tasks: list[Task]) -> list[Outcome]:
    assert _job is not None, "worker not initialised"
    return [write_one(task, _job) for task in tasks]
