"""The cores this process may use, and worker-process pools: one way for every stage.

Pools start their workers from a ``forkserver`` (a clean server process forks them, with the
heavy imports preloaded once), never as a fork of the caller, which may hold threads
(torch, ONNX Runtime, tqdm); where there is no forkserver, ``spawn``. Workers ignore Ctrl-C
(the parent cancels the work). A worker that dies (killed, out of memory) becomes one
:class:`InferKitError` naming the stage, never a hang or a traceback.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from infer_kit.errors import InferKitError

T = TypeVar("T")
R = TypeVar("R")


def cpu_count() -> int:
    """The cores this process may use (its affinity mask where the OS has one)."""
    if hasattr(os, "process_cpu_count"):
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def pool_context(preload: Sequence[str] = ()) -> multiprocessing.context.BaseContext:
    """A forkserver context with ``preload`` imported once in the server; spawn where there is none."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        if preload:
            context.set_forkserver_preload(list(preload))
        return context
    return multiprocessing.get_context("spawn")


def can_start_workers() -> bool:
    """False when worker processes could not re-import ``__main__`` (code piped into ``python -``).

    forkserver and spawn workers import the parent's main script by path; when it has a
    path that is not a file they die on start-up, so the work then runs in this process.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return path is None or getattr(main, "__spec__", None) is not None or os.path.isfile(path)


def _start_worker(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    # Ctrl-C is handled by the parent, which cancels the work; workers just finish their task.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def process_pool(workers: int, *, what: str, hint: str, initializer: Callable[..., None] | None = None,
                 initargs: tuple[Any, ...] = (), preload: Sequence[str] = ()) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` processes; a dead worker is reported as "a ``what`` worker process died"."""
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=pool_context(preload),
                                   initializer=_start_worker, initargs=(initializer, initargs))
    try:
        yield executor
    except BrokenProcessPool:
        raise InferKitError(f"a {what} worker process died (killed, or out of memory)", hint=hint) from None
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def in_order(executor: ProcessPoolExecutor, func: Callable[[T], R], tasks: Sequence[T], *,
             window: int) -> Iterator[R]:
    """``func`` over ``tasks`` in submission order, at most ``window`` in flight (results never pile up)."""
    pending = deque(executor.submit(func, task) for task in tasks[:window])
    next_task = len(pending)
    while pending:
        result = pending.popleft().result()
        if next_task < len(tasks):
            pending.append(executor.submit(func, tasks[next_task]))
            next_task += 1
        yield result


def as_completed(executor: ProcessPoolExecutor, func: Callable[[T], R], tasks: Iterable[T], *,
                 window: int) -> Iterator[R]:
    """``func`` over ``tasks`` in completion order, at most ``window`` in flight."""
    queue = iter(tasks)
    pending: set[Future[R]] = set()
    for task in queue:
        pending.add(executor.submit(func, task))
        if len(pending) >= window:
            break
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            task = next(queue, None)
            if task is not None:
                pending.add(executor.submit(func, task))
            yield future.result()
