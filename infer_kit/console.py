"""Messages and progress bars for long loops.

The library reports through the ``infer_kit`` logger (warnings always, progress notes
unless ``--quiet``) and shows tqdm bars only when stderr is a terminal.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("infer_kit")

_state = {"verbosity": 0}


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            return f"error: {message}"
        if record.levelno >= logging.WARNING:
            return f"warning: {message}"
        return message


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (tests and tools swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure(verbosity: int = 0) -> None:
    """-1 quiet (warnings only), 0 normal, 1 verbose (debug messages)."""
    _state["verbosity"] = verbosity
    level = logging.WARNING if verbosity < 0 else (logging.DEBUG if verbosity > 0 else logging.INFO)
    log.setLevel(level)
    if not any(getattr(h, "_infer_kit", False) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_Formatter())
        handler._infer_kit = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.propagate = False


def verbosity() -> int:
    return _state["verbosity"]


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str | None = None,
             unit: str = "it", disable: bool | None = None) -> Any:
    """A tqdm bar on stderr, off when stderr is not a terminal or in quiet mode."""
    from tqdm import tqdm

    if disable is None:
        disable = _state["verbosity"] < 0 or not sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr,
                dynamic_ncols=True, leave=False)
