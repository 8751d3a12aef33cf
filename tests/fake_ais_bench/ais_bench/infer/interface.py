"""A test double of ais_bench's ``ais_bench.infer.interface`` (reference 3.5), backed by ONNX Runtime.

It keeps the parts of the API infer-kit's ascend runner relies on: ``InferSession(device_id,
model_path, acl_json_path=None, debug=False, loop=1)``, ``get_inputs()`` / ``get_outputs()``
returning tensor descriptions (``name``, ``datatype``, ``format``, ``shape``, ``size``,
``realsize``), ``infer(feeds, mode="static")`` returning numpy arrays, ``sumary()`` with
``exec_time_list``, ``finalize()``, and ``MemorySummary``; the dynamic-shape setters ais_bench's
run calls (``set_dynamic_batchsize``, ``set_dynamic_hw``, ``set_dynamic_dims``,
``set_dynamic_shape``, ``set_custom_outsize``; each recorded in ``CALLS``) and ``run(feeds,
out_array)``, which runs at the shape set. The ``.om`` file here holds ONNX bytes. Like the device,
it takes feeds as raw memory: only their byte size must match.
"""

from __future__ import annotations

import enum
import os
import time

import numpy as np
import onnxruntime as ort

_ORT_TO_NUMPY = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8",
                 "tensor(int8)": "int8", "tensor(int32)": "int32", "tensor(int64)": "int64"}

# Every session opened in this process: (device_id, model_path, loop).
OPENED: list[tuple[int, str, int]] = []
# Every dynamic-shape call: (method, argument).
CALLS: list[tuple[str, object]] = []
_H2D: list[float] = []
_D2H: list[float] = []


class dtype(enum.Enum):  # noqa: N801 - aclruntime's enum is called dtype
    float32 = 0
    float16 = 1
    int8 = 2
    int32 = 3
    uint8 = 4
    int64 = 9


class TensorDesc:
    def __init__(self, name: str, datatype: dtype, shape: list[int], fmt: int) -> None:
        self.name = name
        self.datatype = datatype
        self.shape = shape
        self.format = fmt
        self.realsize = int(np.prod([max(d, 1) for d in shape])) * np.dtype(datatype.name).itemsize
        self.size = self.realsize


class _Summary:
    def __init__(self) -> None:
        self.exec_time_list: list[float] = []


class InferSession:
    def __init__(self, device_id: int, model_path: str, acl_json_path: str | None = None, debug: bool = False,
                 loop: int = 1) -> None:
        if not str(model_path).endswith(".om") or not os.path.isfile(model_path):
            raise RuntimeError(f"[ERROR] load model from file failed, model file is {model_path}")
        if device_id >= 8:
            raise RuntimeError(f"[ERROR] open device {device_id} failed")
        self.device_id = device_id
        self.model_path = model_path
        self.loop = loop
        self._session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        self._summary = _Summary()
        self.finalized = False
        self._shapes: dict[str, list[int]] = {}
        OPENED.append((device_id, str(model_path), loop))

    def set_dynamic_batchsize(self, batch: int) -> None:
        CALLS.append(("set_dynamic_batchsize", batch))
        for desc in self.get_inputs():
            self._shapes[desc.name] = [batch if d < 0 and i == 0 else d for i, d in enumerate(desc.shape)]

    def set_dynamic_hw(self, h: int, w: int) -> None:
        CALLS.append(("set_dynamic_hw", (h, w)))

    def set_dynamic_dims(self, text: str) -> None:
        CALLS.append(("set_dynamic_dims", text))
        self._set_named(text)

    def set_dynamic_shape(self, text: str) -> None:
        CALLS.append(("set_dynamic_shape", text))
        self._set_named(text)

    def set_custom_outsize(self, sizes: list[int]) -> None:
        CALLS.append(("set_custom_outsize", list(sizes)))

    def _set_named(self, text: str) -> None:
        for item in text.split(";"):
            name, _, dims = item.rpartition(":")
            self._shapes[name] = [int(d) for d in dims.split(",")]

    def run(self, feeds: list[np.ndarray], out_array: bool = False) -> list[np.ndarray]:
        inputs = {}
        for desc, feed in zip(self.get_inputs(), feeds, strict=True):
            shape = self._shapes.get(desc.name, desc.shape)
            data = np.ascontiguousarray(feed).reshape(-1).view(np.uint8).view(desc.datatype.name)
            inputs[desc.name] = data.reshape(shape)
        start = time.perf_counter()
        outputs = self._session.run(None, inputs)
        self._summary.exec_time_list.append((time.perf_counter() - start) * 1000.0)
        return outputs

    def get_inputs(self) -> list[TensorDesc]:
        return [self._desc(v) for v in self._session.get_inputs()]

    def get_outputs(self) -> list[TensorDesc]:
        return [self._desc(v) for v in self._session.get_outputs()]

    def infer(self, feeds: list[np.ndarray], mode: str = "static", custom_sizes: int = 100000) -> list[np.ndarray]:
        if self.finalized:
            raise RuntimeError("session finalized")
        began = time.perf_counter()
        inputs = {}
        for desc, feed in zip(self.get_inputs(), feeds, strict=True):
            data = np.ascontiguousarray(feed)
            if data.nbytes != desc.realsize:
                raise RuntimeError(f"input size {data.nbytes} not match model input size {desc.realsize}")
            inputs[desc.name] = data.reshape(-1).view(np.uint8).view(desc.datatype.name).reshape(desc.shape)
        _H2D.append((time.perf_counter() - began) * 1000.0)
        for _ in range(self.loop):
            start = time.perf_counter()
            outputs = self._session.run(None, inputs)
            self._summary.exec_time_list.append((time.perf_counter() - start) * 1000.0)
        _D2H.append(0.001)
        return outputs

    def sumary(self) -> _Summary:
        return self._summary

    def reset_sumaryinfo(self) -> None:
        self._summary = _Summary()

    def finalize(self) -> None:
        self.finalized = True

    @staticmethod
    def _desc(value: ort.NodeArg) -> TensorDesc:
        shape = [d if isinstance(d, int) else -1 for d in value.shape]
        fmt = 1 if len(shape) == 4 and shape[-1] in (1, 3, 4) else 0
        return TensorDesc(value.name, dtype[_ORT_TO_NUMPY[value.type]], shape, fmt)


class MemorySummary:
    @staticmethod
    def get_H2D_time_list() -> list[float]:  # noqa: N802 - ais_bench's name
        return list(_H2D)

    @staticmethod
    def get_D2H_time_list() -> list[float]:  # noqa: N802 - ais_bench's name
        return list(_D2H)

    @staticmethod
    def reset() -> None:
        _H2D.clear()
        _D2H.clear()
