"""The cores this process may use, and worker-process pools: one way for every stage.

Pools start their workers from a ``forkserver`` (a clean server process forks them, with the
heavy imports preloaded once), never as a fork of the caller, which may hold threads
(torch, ONNX Runtime, tqdm); where there is no forkserver, ``spawn``. The server and the
workers import the same ``infer_kit`` as the parent, wherever the command was started (the
current folder is not put on their path: a source checkout's ``infer_kit/`` would shadow the
installed package). Workers ignore Ctrl-C: when the command stops (Ctrl-C, SIGTERM, an error),
the parent sends each worker SIGTERM, which ends its task the way an exception does (its
writers finish the file they are writing and remove nothing complete), so a long task such as
one device's whole run does not hold the command up. Workers also die with their
parent: each watches the parent's pid and exits within a fraction of a second of it, however
it died (``kill -9`` included), so nothing keeps writing after its command is gone. A worker
that dies (killed, out of memory) or cannot start becomes one :class:`InferKitError` naming
the stage and, for a start-up failure, why.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
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
    """A forkserver context with ``preload`` imported once in the server; spawn where there is none.

    The server starts as ``python -c``, which would put the current folder first on its path
    (Python 3.11's ``PYTHONSAFEPATH`` keeps it off; Python 3.10 has none, so it gets spawn,
    which takes the parent's path as it is).
    """
    if sys.version_info >= (3, 11) and "forkserver" in multiprocessing.get_all_start_methods():
        from multiprocessing import forkserver

        context = multiprocessing.get_context("forkserver")
        if preload:
            context.set_forkserver_preload(list(preload))
        before = os.environ.get("PYTHONSAFEPATH")
        os.environ["PYTHONSAFEPATH"] = "1"
        try:
            forkserver.ensure_running()  # started now, with the safe path; later pools reuse it
        finally:
            if before is None:
                del os.environ["PYTHONSAFEPATH"]
            else:
                os.environ["PYTHONSAFEPATH"] = before
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


PARENT_POLL_S = 0.2


@dataclass(frozen=True)
class _WorkerStart:
    """What a worker needs before it takes any task (picklable, core types only)."""

    parent: int
    package_dir: str
    report: str
    lock_file: str | None


def _start_worker(start: _WorkerStart, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    # Ctrl-C is handled by the parent, which cancels the work and stops the workers (SIGTERM).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _end_task)
    _die_with(start.parent)
    try:
        here = str(Path(__file__).resolve().parent)
        if here != start.package_dir:
            raise RuntimeError(f"the worker imported infer_kit from {here}, not from {start.package_dir} as the "
                               "command did")
        if start.lock_file is not None:
            from infer_kit.locks import join_as_worker

            join_as_worker(start.lock_file)
        if initializer is not None:
            initializer(*initargs)
    except BaseException as exc:
        Path(start.report).write_text(f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        raise


def _end_task(signum: int, frame: Any) -> None:
    """SIGTERM from the parent: end the running task as an exception does (a task's cleanup runs: writers finish
    the file they are on and stop); an idle worker exits quietly (multiprocessing prints no traceback for it)."""
    raise SystemExit(128 + signum)


def _stop_workers(executor: ProcessPoolExecutor) -> None:
    """Ask every live worker to end its task now; the pool's shutdown then waits for them to finish stopping."""
    processes = getattr(executor, "_processes", None) or {}  # no public API for a pool's processes
    for process in list(processes.values()):
        with contextlib.suppress(Exception):
            if process.is_alive():
                process.terminate()


def _die_with(parent: int) -> None:
    """Exit as soon as ``parent`` is gone (a thread polls; the kernel's parent-death signal helps on Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG: when the server dies

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if not _running(parent):
                os._exit(1)

    threading.Thread(target=watch, name="infer-kit-parent-watch", daemon=True).start()


def _running(pid: int) -> bool:
    """``pid`` exists and has not exited (a dead process its own parent has not reaped yet is a zombie: not running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: the signal probe above is all there is
    return state not in ("Z", "X")


@contextlib.contextmanager
def process_pool(workers: int, *, what: str, hint: str, initializer: Callable[..., None] | None = None,
                 initargs: tuple[Any, ...] = (), preload: Sequence[str] = (),
                 lock_file: str | os.PathLike[str] | None = None) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` processes that die with this one; a dead worker is "a ``what`` worker process died".

    With ``lock_file`` (held by this process, :func:`infer_kit.locks.hold`) every worker joins
    it as a writer, so a later command waits until they are all gone.
    """
    with tempfile.TemporaryDirectory(prefix="infer-kit-workers-") as scratch:
        start = _WorkerStart(os.getpid(), str(Path(__file__).resolve().parent), str(Path(scratch) / "why"),
                             os.fspath(lock_file) if lock_file is not None else None)
        executor = ProcessPoolExecutor(max_workers=workers, mp_context=pool_context(preload),
                                       initializer=_start_worker, initargs=(start, initializer, initargs))
        try:
            yield executor
        except BrokenProcessPool:
            why = Path(start.report)
            if why.is_file():
                raise InferKitError(f"a {what} worker process could not start: {why.read_text()}",
                                    hint="report this if it happens in a plain install") from None
            raise InferKitError(f"a {what} worker process died (killed, or out of memory)", hint=hint) from None
        except BaseException as exc:  # Ctrl-C, SIGTERM or an error here: the workers' tasks stop too
            _stop_workers(executor)
            if isinstance(exc, SystemExit) and type(exc.__cause__).__name__ == "_RemoteTraceback":
                # a task's SystemExit: its worker was sent SIGTERM by someone other than this command
                raise InferKitError(f"a {what} worker process was stopped (SIGTERM)", hint=hint) from None
            raise
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
