"""The `Runner` base class and the registry of runners by name (the Polygraphy pattern).

A runner turns a list of input arrays (one per model input, batch axis first) into a list
of output arrays. It is opened with :func:`open_runner` and closed when done, best as a
context manager::

    with open_runner("onnxruntime", "model.onnx", batch=16, threads=2) as runner:
        outputs = runner.infer(feeds)
        timings = runner.timings()

Each runner declares the options it takes (``options``); any other option is an error
naming it, never silently dropped. Every ``infer`` is timed on the host; a backend that
measures more (the device's own compute time, host-to-device and device-to-host copies)
reports it through the same :meth:`Runner.timings`.

Runners register here by name with the module that implements them; the module is
imported only when the runner is asked for, and a runner whose backend cannot be imported
is listed as unavailable with the reason, never as a traceback.
"""

from __future__ import annotations

import abc
import importlib
import time
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from infer_kit.artifacts import ModelDescription, TensorDesc
from infer_kit.errors import BackendUnavailable, InferKitError

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Timings:
    """Milliseconds per ``infer`` since the last reset: host always, the rest where the backend measures it."""

    host_compute_ms: list[float] = field(default_factory=list)
    device_compute_ms: list[float] | None = None
    h2d_ms: list[float] = field(default_factory=list)
    d2h_ms: list[float] = field(default_factory=list)

    @property
    def compute_ms(self) -> list[float]:
        """The device's own compute times when it has one per inference, else the host's."""
        device = self.device_compute_ms
        if device is not None and len(device) == len(self.host_compute_ms):
            return list(device)
        return list(self.host_compute_ms)


class Runner(abc.ABC):
    """One opened model: ``inputs``/``outputs`` fixed to ``batch``, :meth:`infer`, :meth:`timings`, :meth:`close`."""

    name: ClassVar[str]
    options: ClassVar[frozenset[str]]  # the keyword options open_runner may pass to open()
    provider: str
    threads: int | None
    batch: int
    inputs: list[TensorDesc]
    outputs: list[TensorDesc]

    def __init__(self) -> None:
        self._host_times: list[float] = []

    @classmethod
    def open(cls, model: Any, **options: Any) -> Runner:
        """Open ``model`` (the registry has checked ``options`` against :attr:`options`)."""
        return cls(model, **options)

    def infer(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        """Run one batch; the host time it took is recorded for :meth:`timings`."""
        began = time.perf_counter()
        outputs = self.infer_impl(feeds)
        self._host_times.append((time.perf_counter() - began) * 1000.0)
        return outputs

    @abc.abstractmethod
    def infer_impl(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        """The backend's inference of one batch."""

    def set_input_shapes(self, shapes: list[tuple[int, ...]]) -> None:
        """The next inference's own input shapes (ais_bench's auto dynamic modes); most backends take any shape."""
        return None

    def timings(self) -> Timings:
        """What was measured since the last :meth:`reset_timings` (a backend adds its device figures)."""
        return Timings(host_compute_ms=list(self._host_times))

    def reset_timings(self) -> None:
        """Forget what was measured so far (``run`` calls it after the warm-up)."""
        self._host_times.clear()

    @abc.abstractmethod
    def close(self) -> None:
        """Release the model; idempotent."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


@dataclass(frozen=True)
class RunnerEntry:
    name: str
    module: str
    class_name: str
    summary: str


@dataclass(frozen=True)
class RunnerStatus:
    name: str
    available: bool
    reason: str
    summary: str


RUNNERS: dict[str, RunnerEntry] = {
    entry.name: entry
    for entry in (
        RunnerEntry("onnxruntime", "infer_kit.runtime.onnxrt", "OnnxRuntimeRunner",
                    "ONNX and emulated OM models (CPU; CUDA/TensorRT providers when present)"),
        RunnerEntry("ascend", "infer_kit.runtime.ascend", "AscendRunner",
                    ".om models on an Ascend NPU through ais_bench"),
        RunnerEntry("torch", "infer_kit.runtime.torch_runner", "TorchRunner",
                    "eager PyTorch reference (module or checkpoint)"),
    )
}
BACKENDS = ("auto", *RUNNERS)


def runner_status(name: str) -> RunnerStatus:
    """Whether runner ``name`` can be used here, and why not when it cannot."""
    entry = _entry(name)
    module = importlib.import_module(entry.module)
    reason = module.availability()
    return RunnerStatus(name, reason is None, reason or "available", entry.summary)


def list_runners() -> list[RunnerStatus]:
    return [runner_status(name) for name in RUNNERS]


def open_runner(name: str, model: Any, **options: Any) -> Runner:
    """Open ``model`` with runner ``name``; an option the runner does not take is an error."""
    status = runner_status(name)
    if not status.available:
        raise BackendUnavailable(f"backend {name!r} is not available here: {status.reason}")
    entry = _entry(name)
    runner_class = getattr(importlib.import_module(entry.module), entry.class_name)
    unknown = sorted(set(options) - runner_class.options)
    if unknown:
        raise InferKitError(
            f"the {name} backend does not take {', '.join(unknown)}",
            hint=f"it takes {', '.join(sorted(runner_class.options))}",
        )
    return runner_class.open(model, **options)


def choose_backend(requested: str, model: ModelDescription) -> str:
    """``auto`` picks by model kind: a real ``.om`` -> ascend, ONNX or an emulated artifact -> onnxruntime."""
    if requested != "auto":
        _entry(requested)
    natural = {"om": "ascend", "torch": "torch"}.get(model.kind, "onnxruntime")
    if requested in ("auto", natural):
        return natural
    if model.kind == "om":
        raise InferKitError(
            f"{model.path.name} is a compiled .om model, which only the ascend backend runs",
            hint="run the emulated artifact <base>.emu.onnx with --backend onnxruntime",
        )
    if requested == "ascend":
        raise InferKitError(f"the ascend backend runs .om models, not {model.path.name} ({model.kind})",
                            hint="use --backend auto or onnxruntime")
    raise InferKitError(f"backend {requested!r} cannot run {model.path.name} ({model.kind})")


def with_batch(desc: TensorDesc, batch: int) -> TensorDesc:
    """``desc`` with a dynamic batch axis fixed to ``batch``; other dynamic axes are refused."""
    shape = list(desc.shape)
    if shape and shape[0] is None:
        shape[0] = batch
    if any(d is None for d in shape[1:]):
        raise InferKitError(
            f"model input {desc.describe()} has dynamic dimensions besides the batch",
            hint="export or compile the model with a fixed input size",
        )
    return replace(desc, shape=tuple(shape))


def _entry(name: str) -> RunnerEntry:
    if name not in RUNNERS:
        raise InferKitError(f"unknown backend {name!r}", hint=f"use one of {', '.join(BACKENDS)}")
    return RUNNERS[name]
