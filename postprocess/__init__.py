"""Scoring run outputs: the ModelZoo ``result.json``, per-image comparison of two runs, a few images' predictions."""

from infer_kit.postprocess.comparison import ComparisonResult, compare
from infer_kit.postprocess.evaluation import EvaluationResult, evaluate
from infer_kit.postprocess.predictions import ImagePrediction, predictions
from infer_kit.postprocess.ties import DEFAULT_TIE_BREAK, TIE_BREAKS, scalar_argsort

__all__ = ["DEFAULT_TIE_BREAK", "TIE_BREAKS", "ComparisonResult", "EvaluationResult", "ImagePrediction", "compare",
           "evaluate", "predictions", "scalar_argsort"]
