"""ONNX Runtime runner: plain ONNX models and emulated OM artifacts.

The CPU provider is always there; the CUDA and TensorRT providers are used, in that order
of preference after TensorRT, when the installed onnxruntime build offers them.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from infer_kit.artifacts import TensorDesc
from infer_kit.errors import InferKitError
from infer_kit.runtime.base import Runner, with_batch
from infer_kit.workers import cpu_count

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_DEVICE_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")

_ORT_TYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(uint16)": "uint16", "tensor(int16)": "int16",
    "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(uint32)": "uint32", "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}


def availability() -> str | None:
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed (pip install onnxruntime)"
    return None


def choose_providers(available: list[str], device: int = 0) -> list[Any]:
    """Preferred providers among ``available``, device-bound ones pinned to ``device``."""
    chosen: list[Any] = []
    for name in PREFERRED_PROVIDERS:
        if name in available:
            chosen.append((name, {"device_id": device}) if name in _DEVICE_PROVIDERS else name)
    return chosen or ["CPUExecutionProvider"]


class OnnxRuntimeRunner(Runner):
    """One ``onnxruntime.InferenceSession`` with a fixed batch."""

    name = "onnxruntime"
    options = frozenset({"batch", "device", "threads", "providers"})

    def __init__(self, path: str | os.PathLike[str], *, batch: int | None = None, device: int = 0,
                 threads: int | None = None, providers: list[Any] | None = None) -> None:
        import onnxruntime as ort

        super().__init__()

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        chosen = providers or choose_providers(ort.get_available_providers(), device)
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InferKitError(f"ONNX Runtime cannot load {Path(path).name}: {first}") from None
        self.provider = self._session.get_providers()[0]
        self.threads = threads if threads is not None else cpu_count()
        raw_inputs = [_desc(v) for v in self._session.get_inputs()]
        model_batch = raw_inputs[0].shape[0] if raw_inputs and raw_inputs[0].shape else None
        self.batch = model_batch if model_batch is not None else (batch or 1)
        self.inputs = [with_batch(d, self.batch) for d in raw_inputs]
        self.outputs = [_fix_output_batch(_desc(v), self.batch) for v in self._session.get_outputs()]
        self._input_names = [d.name for d in self.inputs]
        self._output_names = [d.name for d in self.outputs]

    def infer_impl(self, feeds: list[Any]) -> list[Any]:
        return self._session.run(self._output_names, dict(zip(self._input_names, feeds, strict=True)))

    def close(self) -> None:
        self._session = None


def _desc(value: Any) -> TensorDesc:
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in value.shape)
    dtype = _ORT_TYPES.get(value.type, value.type)
    fmt = "NCHW" if len(shape) == 4 and shape[1] in (1, 3) else ("NHWC" if len(shape) == 4 else "ND")
    return TensorDesc(value.name, shape, dtype, fmt)


def _fix_output_batch(desc: TensorDesc, batch: int) -> TensorDesc:
    if desc.shape and desc.shape[0] is None:
        return TensorDesc(desc.name, (batch, *desc.shape[1:]), desc.dtype, desc.format)
    return desc
