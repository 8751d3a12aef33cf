"""One finding about an AIPP config, and turning the first error into a one-line error.

ATC's rejections (:mod:`infer_kit.aipp.atc_checks`) are ``"error"`` issues; the accuracy lints
(:mod:`infer_kit.aipp.accuracy_lint`) are ``"warning"`` issues.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from infer_kit.aipp.parse import AippConfigError

E_AIPP_INVALID = "E10052"
E_AIPP_COMPILE = "E81012"


@dataclass(frozen=True)
class Issue:
    """One finding about a config: an ATC rejection ("error") or a lint ("warning")."""

    severity: str
    message: str
    line: int | None = None
    field: str | None = None
    code: str | None = None

    def text(self) -> str:
        if self.code == E_AIPP_COMPILE:
            return f"{self.code} Compile op[aipp] failed, cause: {self.message}"
        if self.code == E_AIPP_INVALID:
            return f"{self.code} AIPP configuration is invalid. Reason: {self.message}"
        return self.message

    def format(self, where: str) -> str:
        location = where if self.line is None else f"{where}:{self.line}"
        return f"{location}: {self.severity}: {self.text()}"


def errors(issues: Sequence[Issue]) -> list[Issue]:
    return [issue for issue in issues if issue.severity == "error"]


def raise_for_errors(issues: Sequence[Issue], where: str) -> None:
    """Raise the first error as a one-line :class:`AippConfigError` (with a count of the rest)."""
    found = errors(issues)
    if not found:
        return
    first = found[0]
    more = f" (and {len(found) - 1} more problem(s): run 'infer-kit aipp check')" if len(found) > 1 else ""
    raise AippConfigError(first.text() + more, where=where, line=first.line)
