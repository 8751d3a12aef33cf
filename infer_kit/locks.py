"""One writer per output folder: a lock file that names its holder, and the workers that write for it.

``hold(lock_file, what)`` takes an exclusive ``flock`` on ``lock_file`` and writes the
holder's pid, command line and start time into it; a second command that wants the same
folder is refused at once with one line naming the holder. The kernel drops a ``flock``
when its process dies (even on ``kill -9``), so the lock of a dead run is simply taken over.

Worker processes that write for the holder take a shared lock on ``<lock_file>.workers``
(:func:`join_as_worker`). A newcomer that takes over from a dead holder waits until that file
is free too, so it never starts while orphans of the earlier run still write (they exit
within a second of their parent, see :mod:`infer_kit.workers`), and refuses if they do not.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from infer_kit.errors import InferKitError

ORPHAN_WAIT_S = 10.0
_worker_locks: list[IO[bytes]] = []  # held for the life of a worker process


def workers_file(lock_file: str | os.PathLike[str]) -> Path:
    path = Path(lock_file)
    return path.with_name(path.name + ".workers")


@contextlib.contextmanager
def hold(lock_file: str | os.PathLike[str], *, what: str) -> Iterator[Path]:
    """Hold ``lock_file`` for the block; refuse in one line when a live process holds it."""
    path = Path(lock_file)
    handle = _acquire(path, what)
    try:
        _wait_for_orphans(workers_file(path), what)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "command": " ".join(sys.argv),
                                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode())
        handle.flush()
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        for name in (workers_file(path),):
            with contextlib.suppress(FileNotFoundError):
                name.unlink()
        handle.close()


def join_as_worker(lock_file: str | os.PathLike[str]) -> None:
    """Called in a worker process: mark it as writing for the holder of ``lock_file`` until it exits."""
    handle = open(workers_file(lock_file), "ab")  # noqa: SIM115 - held open for the life of the process
    fcntl.flock(handle, fcntl.LOCK_SH)
    _worker_locks.append(handle)


def _acquire(path: Path, what: str) -> IO[bytes]:
    """An open handle holding the exclusive lock on the file now at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = open(path, "a+b")  # noqa: SIM115 - returned to the caller, who closes it
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(path)
            handle.close()
            raise InferKitError(f"{what} is in use by {holder}",
                                hint="wait for it to finish, or stop it and rerun with --resume") from None
        try:  # the holder we waited for may have removed the file: lock the one that is there now
            same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()


def _wait_for_orphans(workers: Path, what: str) -> None:
    deadline = time.monotonic() + ORPHAN_WAIT_S
    with open(workers, "ab") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise InferKitError(f"worker processes of an earlier run still write into {what}",
                                        hint="wait until they have exited, then rerun") from None
                time.sleep(0.1)


def _describe_holder(path: Path) -> str:
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        data = {}
    if not data.get("pid"):
        return "another process"
    command = f" ({data['command']})" if data.get("command") else ""
    since = f" since {data['started']}" if data.get("started") else ""
    return f"pid {data['pid']}{command}{since}"
