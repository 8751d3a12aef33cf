"""Eager PyTorch runner: the reference that exported and compiled models are compared with.

It wraps an ``nn.Module`` (in eval mode, no autograd), or loads a checkpoint for a registry
architecture through the converter's ``load_checkpoint_model``. Its input is the float
layout of the architecture's `PreprocessSpec` (float32 ``B x 3 x crop x crop``).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from infer_kit.artifacts import TensorDesc
from infer_kit.errors import InferKitError

INPUT_NAME = "actual_input_1"


def availability() -> str | None:
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (pip install torch)"
    return None


class TorchRunner:
    """An ``nn.Module`` behind the `Runner` interface."""

    name = "torch"

    def __init__(self, module: Any, input_shape: tuple[int, ...], *, dtype: str = "float32",
                 threads: int | None = None, device: str = "cpu", output_names: list[str] | None = None) -> None:
        import torch

        if threads is not None:
            torch.set_num_threads(threads)
        self.threads = torch.get_num_threads()
        self.provider = f"torch-{device}"
        self._torch = torch
        self._device = torch.device(device)
        self._module = module.to(self._device).eval()
        self.batch = int(input_shape[0])
        self.inputs = [TensorDesc(INPUT_NAME, tuple(int(d) for d in input_shape), dtype,
                                  "NCHW" if len(input_shape) == 4 else "ND")]
        import numpy as np

        probe = self.infer([np.zeros(input_shape, dtype=dtype)])
        names = output_names or [f"output{i + 1}" for i in range(len(probe))]
        if len(names) != len(probe):
            raise InferKitError(f"{len(names)} output names given for a module with {len(probe)} outputs")
        self.outputs = [TensorDesc(n, tuple(a.shape), str(a.dtype)) for n, a in zip(names, probe, strict=True)]

    def infer(self, feeds: list[Any]) -> list[Any]:
        torch = self._torch
        with torch.inference_mode():
            tensors = [torch.from_numpy(f).to(self._device) for f in feeds]
            result = self._module(*tensors)
        if isinstance(result, dict):
            result = list(result.values())
        elif not isinstance(result, (list, tuple)):
            result = [result]
        return [r.detach().cpu().numpy() for r in result]

    def close(self) -> None:
        self._module = None


def open_runner(model: Any, *, batch: int | None = None, threads: int | None = None, arch: str | None = None,
                input_shape: tuple[int, ...] | None = None, num_classes: int | None = None, trust: bool = False,
                **_: Any) -> TorchRunner:
    """A runner from an ``nn.Module`` (with ``input_shape`` or ``arch``) or a checkpoint path.

    A checkpoint that records its architecture (infer-kit's trainer, pytorch/examples) needs
    no ``arch``; the input size comes from the checkpoint's spec, else the registry's.
    """
    from infer_kit.registry import get_model

    batch = batch or 1
    spec = get_model(arch).spec if arch is not None else None
    if not hasattr(model, "forward"):
        model, spec = load_checkpoint(arch, model, num_classes=num_classes, trust=trust)
    if input_shape is None:
        if spec is None:
            raise InferKitError(
                "the torch backend needs the architecture to know the input size", hint="pass --arch NAME"
            )
        input_shape = (batch, *spec.sample_shape("float"))
    return TorchRunner(model, tuple(input_shape), threads=threads)


def load_checkpoint(arch: str | None, path: Any, *, num_classes: int | None = None,
                    trust: bool = False) -> tuple[Any, Any]:
    """(module, spec) for checkpoint ``path`` through the converter's loader (weights-only unless trusted)."""
    if importlib.util.find_spec("infer_kit.converter.checkpoint") is None:
        raise InferKitError(
            "loading checkpoints needs infer_kit.converter.checkpoint, which this installation lacks",
            hint="pass an nn.Module from Python, or run the exported ONNX with --backend onnxruntime",
        )
    from infer_kit.registry import get_model

    checkpoint = importlib.import_module("infer_kit.converter.checkpoint")
    module, info = checkpoint.load_checkpoint_model(arch, path, num_classes=num_classes, trust=trust)
    return module, info.spec or get_model(info.arch).spec
