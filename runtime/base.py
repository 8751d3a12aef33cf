"""The `Runner` interface and the registry of runners by name (the Polygraphy pattern).

A runner turns a list of input arrays (one per model input, batch axis first) into a list
of output arrays. Runners register here by name with the module that implements them;
the module is imported only when the runner is asked for, and a runner whose backend
cannot be imported is listed as unavailable with the reason, never as a traceback.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from infer_kit.artifacts import ModelDescription, TensorDesc
from infer_kit.errors import BackendUnavailable, InferKitError

if TYPE_CHECKING:
    import numpy as np


class Runner(Protocol):
    """What `run` needs from a backend (see DESIGN.md, "Runners")."""

    name: str
    provider: str
    threads: int | None
    batch: int
    inputs: list[TensorDesc]
    outputs: list[TensorDesc]

    def infer(self, feeds: list[np.ndarray]) -> list[np.ndarray]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RunnerEntry:
    name: str
    module: str
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
        RunnerEntry("onnxruntime", "infer_kit.runtime.onnxrt",
                    "ONNX and emulated OM models (CPU; CUDA/TensorRT providers when present)"),
        RunnerEntry("ascend", "infer_kit.runtime.ascend", ".om models on an Ascend NPU through ais_bench"),
        RunnerEntry("torch", "infer_kit.runtime.torch_runner", "eager PyTorch reference (module or checkpoint)"),
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


def create_runner(name: str, model: Any, **options: Any) -> Runner:
    """Open ``model`` with runner ``name``; options: ``batch``, ``device``, ``threads``."""
    status = runner_status(name)
    if not status.available:
        raise BackendUnavailable(f"backend {name!r} is not available here: {status.reason}")
    module = importlib.import_module(_entry(name).module)
    return module.open_runner(model, **options)


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
