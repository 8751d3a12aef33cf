"""ATC's ``--precision_mode`` and how the emulated artifact reproduces each one on a CPU.

ATC compiles the float32 graph for the AI Core, which computes in float16 unless told
otherwise. The emulation converts the ONNX graph with onnxconverter-common
(``convert_float_to_float16(keep_io_types=True)``: float16 weights and compute inside, float32
at the model's inputs and outputs) as follows:

==========================  ============================================================
mode                        emulation
==========================  ============================================================
force_fp16 (ATC default)    every operator in float16 (the few ONNX Runtime cannot run in
                            float16, onnxconverter-common's default block list, stay float32)
allow_mix_precision,        float16, except the precision-sensitive operators ATC's mixed
allow_mix_precision_fp16    precision keeps in float32 (:data:`MIXED_PRECISION_FP32_OPS`)
allow_fp32_to_fp16          matrix (Cube) operators (:data:`CUBE_OPS`) in float16, every
                            other operator in float32, as ATC does for ops that support fp32
must_keep_origin_dtype,     float32 throughout
force_fp32
==========================  ============================================================

With AIPP the model's input is AIPP's float16 output in every mode: it is cast to float32
where the graph starts, which is lossless. The bf16 modes and ``cube_fp16in_fp32out`` are
passed to a real ATC but have no emulation here.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from infer_kit.errors import InferKitError

if TYPE_CHECKING:
    import onnx

# Every value ATC's --precision_mode takes (GE-DOC).
ATC_PRECISION_MODES = (
    "force_fp16", "allow_fp32_to_fp16", "must_keep_origin_dtype", "allow_mix_precision",
    "allow_mix_precision_fp16", "force_fp32", "cube_fp16in_fp32out", "allow_mix_precision_bf16",
    "allow_fp32_to_bf16",
)
DEFAULT_PRECISION_MODE = "force_fp16"

EMULATION: dict[str, str] = {
    "force_fp16": "fp16",
    "allow_mix_precision": "mixed",
    "allow_mix_precision_fp16": "mixed",
    "allow_fp32_to_fp16": "cube-fp16",
    "must_keep_origin_dtype": "fp32",
    "force_fp32": "fp32",
}
EMULATED_MODES = tuple(EMULATION)

# Smallest float16 subnormal: the converter clamps smaller magnitudes up to it (a cast would flush them).
FP16_TINY = 2.0**-24

CUBE_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
MIXED_PRECISION_FP32_OPS = frozenset({
    "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp",
    "Exp", "Log", "Pow", "Sqrt", "Reciprocal", "Erf", "LayerNormalization", "InstanceNormalization",
    "GroupNormalization",
})


def check_precision_mode(mode: str, *, emulate: bool) -> str:
    """``mode`` if ATC knows it (and, for the emulation, if it can be emulated)."""
    if mode not in ATC_PRECISION_MODES:
        raise InferKitError(
            f"Value {mode} for parameter --precision_mode is invalid",
            hint=f"use one of {', '.join(ATC_PRECISION_MODES)}",
        )
    if emulate and mode not in EMULATION:
        raise InferKitError(
            f"precision mode {mode} is passed to a real ATC but infer-kit cannot emulate it",
            hint=f"emulated modes: {', '.join(EMULATED_MODES)}",
        )
    return mode


def apply_precision_mode(model: onnx.ModelProto, mode: str) -> onnx.ModelProto:
    """A copy of ``model`` computing as ATC's ``mode`` would (see the module table)."""
    import onnx

    kind = EMULATION[check_precision_mode(mode, emulate=True)]
    if kind == "fp32":
        return onnx.ModelProto.FromString(model.SerializeToString())
    from onnxconverter_common import float16

    block = set(float16.DEFAULT_OP_BLOCK_LIST)
    if kind == "mixed":
        block |= MIXED_PRECISION_FP32_OPS
    elif kind == "cube-fp16":
        block |= {node.op_type for node in model.graph.node if node.op_type not in CUBE_OPS}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one "will be truncated" line per tiny weight
            return float16.convert_float_to_float16(
                model, min_positive_val=FP16_TINY, keep_io_types=True, op_block_list=sorted(block)
            )
    except Exception as exc:  # the converter raises plain exceptions for graphs it cannot handle
        raise InferKitError(
            f"cannot emulate precision mode {mode} for this model ({type(exc).__name__}: {exc})",
            hint="use --precision-mode must_keep_origin_dtype (float32) for the emulation",
        ) from None
