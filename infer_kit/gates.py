"""Accuracy and agreement gates: results plus thresholds -> failure messages.

``evaluate`` and ``compare`` return their results; whoever asked for a gate (the CLI, the
pipeline) checks it here and raises :class:`~infer_kit.errors.GateFailed` (exit code 3),
after every file is written. Thresholds are percentages.
"""

from __future__ import annotations

from dataclasses import dataclass

from infer_kit.errors import GateFailed, InferKitError


@dataclass(frozen=True)
class Gates:
    """Thresholds a run must meet; ``None`` is not checked."""

    min_top1: float | None = None
    min_top5: float | None = None
    max_disagreement: float | None = None

    def __post_init__(self) -> None:
        check_percentage("--min-top1", self.min_top1)
        check_percentage("--min-top5", self.min_top5)
        check_percentage("--max-disagreement", self.max_disagreement)

    def check_topk(self, topk: int) -> None:
        """A top-5 gate needs at least five ranks scored (checked before any work)."""
        if self.min_top5 is not None and topk < 5:
            raise InferKitError(f"--min-top5 needs --topk 5 or more, not {topk}")

    def accuracy_failures(self, *, top1: float, top5: float | None, classes: int) -> list[str]:
        """One message per accuracy gate missed; ``top1``/``top5`` are fractions."""
        if self.min_top5 is not None and top5 is None:
            raise InferKitError(f"--min-top5 cannot be checked: the outputs have only {classes} classes")
        failures = []
        for name, gate, value in (("top-1", self.min_top1, top1), ("top-5", self.min_top5, top5)):
            if gate is not None and value is not None and value * 100 < gate:
                failures.append(f"{name} accuracy {value * 100:.3f}% is below the gate {gate:g}%")
        return failures

    def agreement_failures(self, *, disagreements: int, images: int, what: str = "top-1 changed") -> list[str]:
        """A message when more than ``max_disagreement`` % of the images disagree."""
        if self.max_disagreement is None or not images:
            return []
        percent = 100 * disagreements / images
        if percent <= self.max_disagreement:
            return []
        return [f"runs disagree on {disagreements} of {images} images ({what}): {percent:.3f}% is above the limit "
                f"{self.max_disagreement:g}%"]


def check_percentage(name: str, value: float | None) -> None:
    """A threshold is a percentage; ``name`` is how the user spelled it (a flag or a config key)."""
    if value is not None and not 0 <= value <= 100:
        raise InferKitError(f"{name} is a percentage between 0 and 100, not {value}")


def raise_for_failures(failures: list[str], *, note: str = "") -> None:
    """:class:`GateFailed` with every failure on one line (``note`` appended, e.g. what was written)."""
    if failures:
        raise GateFailed("; ".join(failures) + note)
