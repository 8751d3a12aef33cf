"""Checkpoint -> verified, spec-stamped ONNX (:func:`export_onnx`); ONNX -> batch-sized OM (:func:`compile_om`)
with every ATC precision mode emulated; INT8 (:func:`quantize_onnx`); per-layer comparison (:func:`compare_layers`)."""

from infer_kit.converter.atc_command import ATC_OPSETS, SOC_VERSIONS, check_soc
from infer_kit.converter.checkpoint import CheckpointInfo, load_checkpoint_model
from infer_kit.converter.compile import CompiledArtifact, compile_om
from infer_kit.converter.dynamic import DynamicRequest
from infer_kit.converter.emulate import attach_aipp
from infer_kit.converter.export import ExportResult, export_onnx
from infer_kit.converter.layers import LayerComparison, LayerDiff, compare_layers
from infer_kit.converter.precision import (
    ALL_MODES,
    ATC_PRECISION_MODES,
    DEFAULT_PRECISION_MODE,
    MODES,
    PRECISION_MODES,
    apply_precision_mode,
    mode_table_markdown,
    resolve_precision_modes,
    soc_has_bfloat16,
)
from infer_kit.converter.quantize import QuantizeResult, quantize_onnx
from infer_kit.converter.sources import SOURCE_NAMES, SOURCES

__all__ = [
    "ALL_MODES", "ATC_OPSETS", "ATC_PRECISION_MODES", "DEFAULT_PRECISION_MODE", "MODES", "PRECISION_MODES",
    "SOC_VERSIONS", "SOURCES", "SOURCE_NAMES", "CheckpointInfo", "CompiledArtifact", "DynamicRequest",
    "ExportResult", "LayerComparison", "LayerDiff", "QuantizeResult", "apply_precision_mode", "attach_aipp",
    "check_soc", "compare_layers", "compile_om", "export_onnx", "load_checkpoint_model", "mode_table_markdown",
    "quantize_onnx", "resolve_precision_modes", "soc_has_bfloat16",
]
