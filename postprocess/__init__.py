"""Scoring run outputs: the ModelZoo ``result.json`` and per-image comparison of two runs."""

from infer_kit.postprocess.comparison import ComparisonResult, compare
from infer_kit.postprocess.evaluation import EvaluationResult, evaluate
from infer_kit.postprocess.ties import DEFAULT_TIE_BREAK, TIE_BREAKS, scalar_argsort

__all__ = ["DEFAULT_TIE_BREAK", "TIE_BREAKS", "ComparisonResult", "EvaluationResult", "compare", "evaluate",
           "scalar_argsort"]
