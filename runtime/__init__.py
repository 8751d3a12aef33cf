"""Batched inference over tensor files, ais_bench-compatible (:func:`run`), behind one runner interface."""

from infer_kit.runtime.base import BACKENDS, Runner, RunnerStatus, Timings, list_runners, open_runner
from infer_kit.runtime.dynamic import DymRequest, expand_shape_range
from infer_kit.runtime.performance import format_summary
from infer_kit.runtime.stage import RunResult, run
from infer_kit.runtime.sweep import ShapeRun, SweepResult, run_shape_range
from infer_kit.runtime.trtexec import TrtexecResult, run_trtexec

__all__ = [
    "BACKENDS", "DymRequest", "RunResult", "Runner", "RunnerStatus", "ShapeRun", "SweepResult", "Timings",
    "TrtexecResult", "expand_shape_range", "format_summary", "list_runners", "open_runner", "run", "run_shape_range",
    "run_trtexec",
]
