"""Chunked work over many output files, on every core.

Parsing 50,000 TXT outputs is CPU-bound, so chunks of files go to a process pool
(:func:`infer_kit.workers.process_pool`).
Small jobs stay in-process, where a pool's start-up would cost more than it saves.
Results come back in submission order, so the caller can stream them into accumulators.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from infer_kit.console import progress
from infer_kit.errors import InferKitError
from infer_kit.workers import cpu_count, in_order, process_pool

T = TypeVar("T")
R = TypeVar("R")

CHUNK_FILES = 400
POOL_MIN_FILES = 3000


def resolve_workers(workers: int | None, files: int) -> int:
    """``None``: all cores for large jobs, one process for small ones; otherwise as asked."""
    if workers is not None:
        if workers < 1:
            raise InferKitError(f"--workers must be at least 1, not {workers}")
        return workers
    if files < POOL_MIN_FILES:
        return 1
    return cpu_count()


def chunked(items: Sequence[T], size: int | None = None) -> list[Sequence[T]]:
    """Consecutive slices of ``size`` items (default :data:`CHUNK_FILES`)."""
    size = size or CHUNK_FILES
    return [items[start:start + size] for start in range(0, len(items), size)]


def map_chunks(
    func: Callable[[T], R],
    tasks: Sequence[T],
    *,
    sizes: Sequence[int],
    workers: int,
    desc: str,
) -> Iterator[R]:
    """``func`` over ``tasks`` in order, in ``workers`` processes, with a progress bar counting files."""
    bar = progress(total=sum(sizes), desc=desc, unit="file")
    try:
        if workers <= 1 or len(tasks) <= 1:
            for task, size in zip(tasks, sizes, strict=True):
                result = func(task)
                bar.update(size)
                yield result
            return
        yield from _pooled(func, tasks, sizes, workers, bar)
    finally:
        bar.close()


def _pooled(func: Callable[[T], R], tasks: Sequence[T], sizes: Sequence[int], workers: int, bar: Any) -> Iterator[R]:
    with process_pool(min(workers, len(tasks)), what="scoring",
                      hint="rerun; if it happens again, pass --workers 1") as executor:
        for size, result in zip(sizes, in_order(executor, func, tasks, window=2 * workers), strict=True):
            bar.update(size)
            yield result
