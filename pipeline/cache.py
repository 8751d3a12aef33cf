"""Stage caching for the pipeline: each stage's outputs are kept with a key of its inputs.

A key is the sha256 of the stage's options plus the keys of the stages it reads from, so a
change propagates exactly to the stages downstream of it. The state file is rewritten
atomically after every finished stage; a stage that failed or was interrupted has no
entry and runs again, while the stages before it are reused.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any

from infer_kit.fsutil import read_json, write_json_atomic

STATE_FILE = "pipeline-state.json"


def make_key(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def folder_fingerprint(folder: str | os.PathLike[str], limit: int | None = None) -> str:
    """Names, sizes and mtimes of a folder's files (cheap; catches added, removed and edited files)."""
    digest = hashlib.sha256()
    entries = []
    for path in Path(folder).rglob("*"):
        try:
            stat = path.stat()
        except OSError:  # a dangling symlink: preprocess leaves it aside, the key notes it
            entries.append((str(path.relative_to(folder)), -1, -1))
            continue
        if S_ISREG(stat.st_mode):
            entries.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    entries.sort()
    for entry in entries:
        digest.update(repr(entry).encode())
    digest.update(repr(limit).encode())
    return digest.hexdigest()


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    stat = Path(path).stat()
    return f"{Path(path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


@dataclass
class StageCache:
    work_dir: Path

    def __post_init__(self) -> None:
        self.path = self.work_dir / STATE_FILE
        data = read_json(self.path, what="pipeline state") if self.path.is_file() else {}
        # an entry of another shape (a hand-edited or foreign file) is a stage that has to run again
        self.state: dict[str, Any] = {k: v for k, v in data.items() if isinstance(v, dict)} \
            if isinstance(data, dict) else {}

    def hit(self, stage: str, key: str, outputs: list[Path]) -> dict[str, Any] | None:
        """The recorded entry (seconds, info) of ``stage`` when it finished with this key and its outputs exist."""
        entry = self.state.get(stage)
        if not entry or entry.get("key") != key or entry.get("status") != "done":
            return None
        if not all(Path(p).exists() for p in outputs):
            return None
        return entry

    def interrupted(self, stage: str, key: str) -> bool:
        """True when ``stage`` started with this key and never finished (its outputs can be resumed)."""
        entry = self.state.get(stage)
        return bool(entry) and entry.get("key") == key and entry.get("status") == "running"

    def begin(self, stage: str, key: str) -> None:
        self._write(stage, {"key": key, "status": "running"})

    def record(self, stage: str, key: str, seconds: float, info: dict[str, Any] | None = None) -> None:
        self._write(stage, {"key": key, "status": "done", "seconds": round(seconds, 3), "info": info or {}})

    def _write(self, stage: str, entry: dict[str, Any]) -> None:
        self.state[stage] = entry
        self.work_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, self.state)
