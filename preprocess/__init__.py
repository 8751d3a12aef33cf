"""Images -> tensor files: the ModelZoo preprocessing, parallel, resumable, with a manifest."""

from infer_kit.preprocess.stage import PreprocessResult, preprocess

__all__ = ["PreprocessResult", "preprocess"]
