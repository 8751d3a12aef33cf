"""Ascend runner: ``.om`` models on an NPU through ais_bench's ``InferSession``.

ais_bench (and its ``aclruntime`` extension, which needs CANN) is imported only when this
runner is opened. Without an Ascend device and CANN it cannot run; its contract is tested
against a test double of the ``InferSession`` API, and the real device path is exercised
only where CANN and ais_bench are installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any

from infer_kit.artifacts import TensorDesc
from infer_kit.errors import BackendUnavailable, InferKitError
from infer_kit.runtime.base import Runner, Timings, with_batch

INSTALL_HINT = (
    "install CANN and the aclruntime + ais_bench wheels from the ais_bench repository "
    "(Ascend/tools, ais-bench_workload) and source CANN's set_env.sh; without an Ascend device run the "
    "emulated artifact (<base>.emu.onnx) with --backend onnxruntime"
)

# aclDataType values (acl_base.h), for builds whose tensor_desc.datatype is a plain int.
_ACL_DTYPES = {0: "float32", 1: "float16", 2: "int8", 3: "int32", 4: "uint8", 6: "int16", 7: "uint16",
               8: "uint32", 9: "int64", 10: "uint64", 11: "float64", 12: "bool"}
_DTYPE_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "fp16": "float16",
                  "fp32": "float32"}
_FORMATS = {0: "NCHW", 1: "NHWC", 2: "ND"}


def availability() -> str | None:
    if importlib.util.find_spec("ais_bench") is None:
        return f"ais_bench is not installed: {INSTALL_HINT}"
    try:
        importlib.import_module("ais_bench.infer.interface")
    except Exception as exc:  # aclruntime fails in many ways without CANN
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"ais_bench is installed but does not import ({first}): {INSTALL_HINT}"
    return None


class AscendRunner(Runner):
    """An ais_bench ``InferSession`` on one device; device compute and copy times come from ais_bench.

    ``dynamic`` (a :class:`~infer_kit.runtime.dynamic.DymRequest`) sets the gear the way ais_bench's
    own ``set_session_options`` does (``set_dynamic_batchsize``, ``set_dynamic_hw(h, w)``,
    ``set_dynamic_dims``, ``set_dynamic_shape``, ``set_custom_outsize``), and inferences then go
    through ``session.run`` so the gear stays set; ``aipp_config`` is loaded with
    ``load_aipp_config_file`` when the model has a dynamic-AIPP input.
    """

    name = "ascend"
    options = frozenset({"batch", "device", "dynamic", "aipp_config"})
    provider = "ais_bench"

    def __init__(self, path: str | os.PathLike[str], *, device: int = 0, batch: int | None = None,
                 dynamic: Any = None, aipp_config: str | None = None) -> None:
        super().__init__()
        try:
            interface = importlib.import_module("ais_bench.infer.interface")
        except Exception as exc:
            raise BackendUnavailable(f"backend 'ascend' is not available here ({exc})", hint=INSTALL_HINT) from None
        self._interface = interface
        try:
            self._session = interface.InferSession(device, str(path))
        except Exception as exc:  # aclruntime raises RuntimeError/ValueError with its own text
            raise InferKitError(f"ais_bench cannot load {Path(path).name} on device {device}: {exc}") from None
        self.device = device
        self.threads = None
        self._dynamic = dynamic
        raw_inputs = [_desc(d) for d in self._session.get_inputs()]
        model_batch = raw_inputs[0].shape[0] if raw_inputs and raw_inputs[0].shape else None
        if dynamic is not None and dynamic.given:
            self.inputs = self._set_gear(raw_inputs, dynamic)
            first = self.inputs[0].shape[0] if self.inputs and self.inputs[0].shape else None
            self.batch = first if first is not None else 1
        else:
            self.batch = model_batch if model_batch is not None else (batch or 1)
            if model_batch is None and hasattr(self._session, "set_dynamic_batchsize"):
                self._session.set_dynamic_batchsize(self.batch)
            self.inputs = [with_batch(d, self.batch) for d in raw_inputs]
        if aipp_config is not None:
            self._load_aipp(aipp_config)
        self.outputs = [_desc(d) for d in self._session.get_outputs()]
        self._skip = 0  # exec_time_list entries from before the last reset (builds without reset_sumaryinfo)

    def _set_gear(self, raw: list[TensorDesc], request: Any) -> list[TensorDesc]:
        """Set ais_bench's gear on the session; the inputs' shapes at that gear."""
        from infer_kit.runtime.dynamic import parse_dym_string, parse_hw, parse_output_size

        session = self._session
        active = request.active()
        try:
            if active == "batch":
                session.set_dynamic_batchsize(request.batch)
                shapes = [tuple(request.batch if d is None and k == 0 else d for k, d in enumerate(t.shape))
                          for t in raw]
            elif active == "hw":
                h, w = parse_hw(request.hw)
                session.set_dynamic_hw(h, w)
                shapes = [_fill(t.shape, [h, w]) for t in raw]
            elif active in ("dims", "shape"):
                text = request.dims if active == "dims" else request.shape
                (session.set_dynamic_dims if active == "dims" else session.set_dynamic_shape)(text)
                given = dict(parse_dym_string(text, f"--dym{active.title()}"))
                shapes = [given.get(t.name, t.shape) for t in raw]
            else:  # the auto modes: every inference sets its own shapes
                shapes = [t.shape for t in raw]
            sizes = parse_output_size(request.output_size)
            if sizes:
                session.set_custom_outsize(list(sizes))
        except InferKitError:
            raise
        except Exception as exc:  # aclruntime raises RuntimeError("[1][ACL: invalid parameter] ") and friends
            raise InferKitError(f"ais_bench refused the dynamic shape ({exc})",
                                hint="give one of the gears the model was compiled with") from None
        from dataclasses import replace

        return [replace(t, shape=tuple(s)) for t, s in zip(raw, shapes, strict=True)]

    def _load_aipp(self, config: str) -> None:
        session = self._session
        exists = getattr(session, "get_dym_aipp_input_exist", None)
        if not callable(exists) or exists() != 1:
            return
        try:
            session.load_aipp_config_file(config, self.batch)
        except Exception as exc:
            raise InferKitError(f"ais_bench refused --aipp_config {config} ({exc})") from None

    def set_input_shapes(self, shapes: list[tuple[int, ...]]) -> None:
        """The auto modes: ``name:d,d;...`` for this inference, by set_dynamic_shape or set_dynamic_dims."""
        if self._dynamic is None or self._dynamic.auto is None:
            return
        text = ";".join(f"{t.name}:{','.join(str(d) for d in shape)}" for t, shape in zip(self.inputs, shapes,
                                                                                        strict=True))
        setter = self._session.set_dynamic_shape if self._dynamic.auto == "shape" else self._session.set_dynamic_dims
        try:
            setter(text)
        except Exception as exc:
            raise InferKitError(f"ais_bench refused the shape {text} ({exc})") from None

    def infer_impl(self, feeds: list[Any]) -> list[Any]:
        if self._dynamic is not None and self._dynamic.given and hasattr(self._session, "run"):
            return list(self._session.run(feeds, out_array=True))  # infer(mode="static") would reset the gear
        return list(self._session.infer(feeds, mode="static"))

    def timings(self) -> Timings:
        """Host times, plus the device's own compute times and the copies that ais_bench recorded."""
        memory = getattr(self._interface, "MemorySummary", None)
        h2d = list(memory.get_H2D_time_list()) if memory is not None else []
        d2h = list(memory.get_D2H_time_list()) if memory is not None else []
        return Timings(host_compute_ms=super().timings().host_compute_ms, device_compute_ms=self._device_ms(),
                       h2d_ms=h2d, d2h_ms=d2h)

    def reset_timings(self) -> None:
        """Forget what warm-up recorded, as ais_bench does before timing."""
        super().reset_timings()
        reset = getattr(self._session, "reset_sumaryinfo", None)
        if callable(reset):
            reset()
        self._skip = len(self._exec_times())
        memory = getattr(self._interface, "MemorySummary", None)
        if memory is not None and hasattr(memory, "reset"):
            memory.reset()

    def _exec_times(self) -> list[Any]:
        summary = getattr(self._session, "sumary", None) or getattr(self._session, "summary", None)
        return list(getattr(summary(), "exec_time_list", []) or []) if summary is not None else []

    def _device_ms(self) -> list[float] | None:
        """ais_bench's ``exec_time_list`` since the reset: ms per inference, or ``[start, end]`` pairs."""
        times = self._exec_times()[self._skip:]
        if not times:
            return None
        return [float(t[1] - t[0]) if isinstance(t, (list, tuple)) else float(t) for t in times]

    def close(self) -> None:
        session, self._session = self._session, None
        for method in ("free_resource", "finalize"):
            func = getattr(session, method, None)
            if callable(func):
                func()
                break


def _fill(shape: tuple[int | None, ...], values: list[int]) -> tuple[int | None, ...]:
    out = []
    for k, d in enumerate(shape):
        out.append(values.pop(0) if d is None and k > 0 and values else d)
    return tuple(out)


def dtype_name(value: Any) -> str:
    """A numpy dtype name from an aclruntime ``datatype`` (enum, ``dtype.float32`` text or int)."""
    if isinstance(value, int) and not hasattr(value, "name"):
        return _ACL_DTYPES.get(value, f"acl:{value}")
    name = getattr(value, "name", None) or str(value)
    name = str(name).rsplit(".", 1)[-1].lower().removeprefix("acl_")
    return _DTYPE_ALIASES.get(name, name)


def _desc(value: Any) -> TensorDesc:
    shape = tuple(int(d) if int(d) >= 0 else None for d in value.shape)
    fmt = getattr(value, "format", None)
    fmt_name = _FORMATS.get(fmt, "ND") if isinstance(fmt, int) else str(fmt or "ND")
    return TensorDesc(str(value.name), shape, dtype_name(value.datatype), fmt_name)
