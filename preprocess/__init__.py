"""Images -> tensor files: the ModelZoo preprocessing, parallel, resumable, with a manifest."""

from infer_kit.preprocess.stage import PreprocessResult, preprocess
from infer_kit.preprocess.transforms import BadImage, load_rgb, normalised_planes, sample_bytes

__all__ = ["BadImage", "PreprocessResult", "load_rgb", "normalised_planes", "preprocess", "sample_bytes"]
