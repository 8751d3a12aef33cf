"""Processes seen through /proc, for the tests that kill commands, workers and test-cluster nodes."""

from __future__ import annotations

import contextlib
from pathlib import Path


def descendants(*pids: int) -> set[int]:
    """Every live process below ``pids`` (from /proc: ppid links)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = list(pids)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
