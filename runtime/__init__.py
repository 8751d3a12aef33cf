"""Batched inference over tensor files, ais_bench-compatible (:func:`run`), behind one runner interface."""

from infer_kit.runtime.base import BACKENDS, Runner, RunnerStatus, Timings, list_runners, open_runner
from infer_kit.runtime.performance import format_summary
from infer_kit.runtime.stage import RunResult, run

__all__ = [
    "BACKENDS", "RunResult", "Runner", "RunnerStatus", "Timings", "format_summary", "list_runners", "open_runner",
    "run",
]
