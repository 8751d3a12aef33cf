"""Checkpoint -> verified, spec-stamped ONNX (:func:`export_onnx`); ONNX -> batch-sized OM (:func:`compile_om`)."""

from infer_kit.converter.atc_command import ATC_OPSETS, SOC_VERSIONS
from infer_kit.converter.checkpoint import CheckpointInfo, load_checkpoint_model
from infer_kit.converter.compile import CompiledArtifact, compile_om
from infer_kit.converter.dynamic import DynamicRequest
from infer_kit.converter.emulate import attach_aipp
from infer_kit.converter.export import ExportResult, export_onnx
from infer_kit.converter.precision import ATC_PRECISION_MODES, DEFAULT_PRECISION_MODE
from infer_kit.converter.sources import SOURCE_NAMES, SOURCES

__all__ = [
    "ATC_OPSETS", "ATC_PRECISION_MODES", "DEFAULT_PRECISION_MODE", "SOC_VERSIONS", "CheckpointInfo",
    "CompiledArtifact", "DynamicRequest", "ExportResult", "SOURCES", "SOURCE_NAMES", "attach_aipp", "compile_om",
    "export_onnx",
    "load_checkpoint_model",
]
