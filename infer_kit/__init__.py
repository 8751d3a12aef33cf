"""infer-kit: an offline-inference pipeline toolkit for image classifiers (pth -> onnx -> om).

Kept light on purpose: importing ``infer_kit`` (and running ``infer-kit --help``) never
imports torch, onnx or onnxruntime; each stage imports what it needs when it runs.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from infer_kit.errors import InferKitError
from infer_kit.presets import PRESETS, get_preset
from infer_kit.spec import PreprocessSpec

try:
    __version__ = _metadata.version("infer-kit")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["PRESETS", "InferKitError", "PreprocessSpec", "__version__", "get_preset"]
