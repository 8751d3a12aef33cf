"""Eager PyTorch runner: the reference that exported and compiled models are compared with.

It wraps an ``nn.Module`` (in eval mode, no autograd), or loads a checkpoint for a registry
architecture through the converter's strict loader (``infer_kit.converter.load_checkpoint_model``).
Its input is the float layout of the architecture's `PreprocessSpec` (float32 ``B x 3 x crop x crop``).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from infer_kit.artifacts import TensorDesc
from infer_kit.converter import load_checkpoint_model
from infer_kit.errors import InferKitError
from infer_kit.registry import get_model
from infer_kit.runtime.base import Runner

INPUT_NAME = "actual_input_1"


def availability() -> str | None:
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (pip install torch)"
    return None


class TorchRunner(Runner):
    """An ``nn.Module`` behind the `Runner` interface."""

    name = "torch"
    options = frozenset({"batch", "device", "threads", "arch", "input_shape", "num_classes", "trust"})

    def __init__(self, module: Any, input_shape: tuple[int, ...], *, dtype: str = "float32",
                 threads: int | None = None, device: str = "cpu", output_names: list[str] | None = None) -> None:
        import numpy as np
        import torch

        super().__init__()
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
        probe = self.infer_impl([np.zeros(input_shape, dtype=dtype)])
        names = output_names or [f"output{i + 1}" for i in range(len(probe))]
        if len(names) != len(probe):
            raise InferKitError(f"{len(names)} output names given for a module with {len(probe)} outputs")
        self.outputs = [TensorDesc(n, tuple(a.shape), str(a.dtype)) for n, a in zip(names, probe, strict=True)]

    @classmethod
    def open(cls, model: Any, *, batch: int | None = None, device: int = 0, threads: int | None = None,
             arch: str | None = None, input_shape: tuple[int, ...] | None = None, num_classes: int | None = None,
             trust: bool = False) -> TorchRunner:
        """A runner from an ``nn.Module`` (with ``input_shape`` or ``arch``) or a checkpoint path.

        A checkpoint that records its architecture (infer-kit's trainer, pytorch/examples) needs
        no ``arch``; the input size comes from the checkpoint's spec, else the registry's.
        ``device`` is a CUDA device index where CUDA is available, else the CPU is used.
        """
        import torch

        batch = batch or 1
        spec = get_model(arch).spec if arch is not None else None
        if not hasattr(model, "forward"):
            model, info = load_checkpoint_model(arch, model, num_classes=num_classes, trust=trust)
            spec = info.spec or get_model(info.arch).spec
        if input_shape is None:
            if spec is None:
                raise InferKitError(
                    "the torch backend needs the architecture to know the input size", hint="pass --arch NAME"
                )
            input_shape = (batch, *spec.sample_shape("float"))
        where = f"cuda:{device}" if torch.cuda.is_available() else "cpu"
        return cls(model, tuple(input_shape), threads=threads, device=where)

    def infer_impl(self, feeds: list[Any]) -> list[Any]:
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
