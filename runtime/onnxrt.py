"""ONNX Runtime runner: plain ONNX models and emulated OM artifacts.

The CPU provider is always there; the CUDA and TensorRT providers are used, in that order
of preference after TensorRT, when the installed onnxruntime build offers them.

Beyond a fixed batch it takes what ais_bench's flags need on the emulation: ``input_shapes``
(a compiled gear or a ``--dymShape``; each inference may also bring its own shapes),
``dynamic_aipp`` (the AIPP of a run's ``--aipp_config`` put in front of a model compiled with
dynamic AIPP), ``profile`` (ONNX Runtime's per-operator profiler, the CPU stand-in for
``--profiler``) and ``expose`` (every intermediate tensor, for ``--dump``).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from infer_kit.artifacts import TensorDesc
from infer_kit.errors import InferKitError
from infer_kit.runtime.base import Runner, with_batch
from infer_kit.runtime.lowering import session_source
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
    options = frozenset({"batch", "device", "threads", "providers", "input_shapes", "dynamic_aipp", "profile",
                         "expose"})

    def __init__(self, path: str | os.PathLike[str], *, batch: int | None = None, device: int = 0,
                 threads: int | None = None, providers: list[Any] | None = None,
                 input_shapes: list[tuple[int, ...]] | None = None, dynamic_aipp: Any = None,
                 profile: str | None = None, expose: bool = False) -> None:
        import onnxruntime as ort

        super().__init__()

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        if profile is not None:
            options.enable_profiling = True
            options.profile_file_prefix = profile
        self.profile_file: str | None = None
        self.last_tensors: dict[str, Any] | None = None
        chosen = providers or choose_providers(ort.get_available_providers(), device)
        source: Any = str(path)
        self._real_outputs: list[str] | None = None
        self.lowered = False
        if dynamic_aipp is not None or expose:
            source = self._rebuilt(Path(path), dynamic_aipp, expose)
        try:
            # An emulated artifact's rounding casts are kept in ORT's blocked layout (lowering.py): same
            # values, built here because the optimized graph is specific to this machine. Not for a rebuilt
            # graph (dynamic AIPP, exposed tensors): those keep every tensor's name.
            if isinstance(source, str) and chosen == ["CPUExecutionProvider"]:
                source, self.lowered = session_source(path, threads)
                if self.lowered:
                    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            self._session = ort.InferenceSession(source, sess_options=options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InferKitError(f"ONNX Runtime cannot load {Path(path).name}: {first}") from None
        self.provider = self._session.get_providers()[0]
        self.threads = threads if threads is not None else cpu_count()
        raw_inputs = [_desc(v) for v in self._session.get_inputs()]
        if input_shapes is not None:
            if len(input_shapes) != len(raw_inputs):
                raise InferKitError(f"{Path(path).name} has {len(raw_inputs)} inputs, {len(input_shapes)} shapes given")
            self.inputs = [replace(d, shape=tuple(shape)) for d, shape in zip(raw_inputs, input_shapes, strict=True)]
            first = self.inputs[0].shape[0] if self.inputs and self.inputs[0].shape else None
            self.batch = first if first is not None else 1
        else:
            model_batch = raw_inputs[0].shape[0] if raw_inputs and raw_inputs[0].shape else None
            self.batch = model_batch if model_batch is not None else (batch or 1)
            self.inputs = [with_batch(d, self.batch) for d in raw_inputs]
        outputs = [_desc(v) for v in self._session.get_outputs()]
        self._all_outputs = [d.name for d in outputs]
        if self._real_outputs is not None:
            outputs = [d for d in outputs if d.name in self._real_outputs]
        self.outputs = [_fix_output_batch(d, self.batch) for d in outputs]
        self._input_names = [d.name for d in self.inputs]
        self._output_names = [d.name for d in self.outputs]

    def _rebuilt(self, path: Path, dynamic_aipp: Any, expose: bool) -> bytes:
        """The model with the run's dynamic AIPP in front and/or every intermediate tensor as an output."""
        from infer_kit.metadata import load_onnx

        model = load_onnx(path)
        if dynamic_aipp is not None:
            from infer_kit.converter import attach_aipp

            op, model_hw, dynamic_hw = dynamic_aipp
            model = attach_aipp(model, op, input_hw=model_hw, dynamic_hw=dynamic_hw)
        if expose:
            from infer_kit.runtime.dump import expose_all

            self._real_outputs = [o.name for o in model.graph.output]
            model = expose_all(model)
        return model.SerializeToString()

    def infer_impl(self, feeds: list[Any]) -> list[Any]:
        named = dict(zip(self._input_names, feeds, strict=True))
        if self._real_outputs is None:
            return self._session.run(self._output_names, named)
        values = self._session.run(self._all_outputs, named)
        tensors = dict(zip(self._all_outputs, values, strict=True))
        tensors.update(named)
        self.last_tensors = tensors
        return [tensors[name] for name in self._output_names]

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and self.profile_file is None and session.get_session_options().enable_profiling:
            self.profile_file = session.end_profiling()


def _desc(value: Any) -> TensorDesc:
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in value.shape)
    dtype = _ORT_TYPES.get(value.type, value.type)
    fmt = "NCHW" if len(shape) == 4 and shape[1] in (1, 3) else ("NHWC" if len(shape) == 4 else "ND")
    return TensorDesc(value.name, shape, dtype, fmt)


def _fix_output_batch(desc: TensorDesc, batch: int) -> TensorDesc:
    if desc.shape and desc.shape[0] is None:
        return TensorDesc(desc.name, (batch, *desc.shape[1:]), desc.dtype, desc.format)
    return desc
