"""Errors a user can act on.

Every problem caused by input (a file, a flag, a config) is raised as an
:class:`InferKitError` whose message says what was wrong, where, and what to do.
The CLI prints it on one line and exits with ``exit_code``; anything else that
escapes is a bug and is reported as such.
"""

from __future__ import annotations

MAX_QUOTE = 80  # the longest token an error repeats from an input file's content
MAX_WORD = 1000  # the longest run of non-blank characters any error line holds (paths fit; megabyte tokens do not)


def shorten(word: str, limit: int = MAX_QUOTE) -> str:
    """``word`` cut to ``limit`` characters, saying how long it was (hostile inputs can be megabytes)."""
    if len(word) <= limit:
        return word
    return f"{word[:limit - 20]}...({len(word):,} characters)"


class InferKitError(Exception):
    """A user-facing error: one line, no traceback; a megabyte-long token from a hostile input is shortened."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = self.message.rstrip(".")
        if self.hint:
            text = f"{text}: {self.hint}"
        return " ".join(shorten(word, MAX_WORD) for word in text.split())


class GateFailed(InferKitError):
    """An accuracy or agreement gate was not met (CI should hold the deployment)."""

    exit_code = 3


class BackendUnavailable(InferKitError):
    """An optional backend (ais_bench, atc, torch_npu, a provider) is not installed here."""

    exit_code = 2
