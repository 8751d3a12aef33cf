"""Scoring run outputs: the ModelZoo ``result.json`` and per-image comparison of two runs."""

from infer_kit.postprocess.comparison import ComparisonResult, compare
from infer_kit.postprocess.evaluation import EvaluationResult, evaluate

__all__ = ["ComparisonResult", "EvaluationResult", "compare", "evaluate"]
