"""``--from pytorch``: checkpoints already in timm's (and torchvision's) names: loaded as they are.

Accepted shapes: a bare state_dict; pytorch/examples and infer-kit training checkpoints
(``{'epoch', 'arch', 'state_dict', 'best_acc1', 'optimizer', ...}``); ``{'model': ...}``;
``{'state_dict_ema': ...}`` (timm); keys prefixed ``module.`` (DataParallel/DDP) or
``_orig_mod.`` (torch.compile); a pickled module (only with --trust-checkpoint).
"""

from __future__ import annotations

from typing import Any

from infer_kit.checkpoint import checkpoint_meta
from infer_kit.errors import InferKitError

from .base import CheckpointFile, Conversion, Detection, Source, strip_common_prefix, tensor_dict

WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "state_dict_ema", "model_ema")
EMA_FIRST = ("state_dict_ema", "model_ema", *WRAPPER_KEYS)


def extract_state_dict(obj: Any, *, use_ema: bool = False, where: str = "checkpoint") -> tuple[dict[str, Any], str]:
    """Find the weights inside a loaded checkpoint; return (state_dict, layout name)."""
    import torch

    if isinstance(obj, torch.nn.Module):
        return obj.state_dict(), "pickled module"
    if not isinstance(obj, dict):
        raise InferKitError(f"{where} holds a {type(obj).__name__}, not a state_dict or a training checkpoint")
    if tensor_dict(obj):
        return obj, "state_dict"
    for key in EMA_FIRST if use_ema else WRAPPER_KEYS:
        inner = obj.get(key)
        if isinstance(inner, torch.nn.Module):
            inner = inner.state_dict()
        if tensor_dict(inner):
            layout = "pytorch-examples" if key == "state_dict" and "epoch" in obj else f"{{'{key}': ...}}"
            return inner, layout
    keys = ", ".join(sorted(map(str, obj))[:8])
    raise InferKitError(
        f"{where} has no weights infer-kit recognises (top-level keys: {keys})",
        hint="expected a state_dict or a dict with 'state_dict', 'model' or 'state_dict_ema'; "
             "for MindSpore, pycls, timm 0.4 or EfficientNet-PyTorch files see 'infer-kit export --help' (--from)",
    )


class PyTorchSource(Source):
    name = "pytorch"
    summary = "state_dicts in timm/torchvision names (pytorch/examples, torchvision, timm, infer-kit's trainer)"

    def detect(self, file: CheckpointFile) -> Detection | None:
        try:
            _, layout = extract_state_dict(file.raw)
        except InferKitError:
            return None
        return self.detection(0.5, f"a {layout} in timm/torchvision names (no foreign naming recognised)")

    def convert(self, file: CheckpointFile, *, arch: str | None, use_ema: bool = False) -> Conversion:
        raw = file.raw
        state, layout = extract_state_dict(raw, use_ema=use_ema, where=f"checkpoint {file.path}")
        state, stripped = strip_common_prefix(state)
        meta = checkpoint_meta(raw if layout != "state_dict" else None, where=str(file.path))
        arch = arch or meta.arch
        if arch is None:
            raise InferKitError(f"checkpoint {file.path} does not record its architecture", hint="pass --arch NAME")
        return Conversion(
            arch=arch, tensors=dict(state), origin={k: k for k in state}, layout=layout, spec=meta.spec,
            classes=meta.classes, num_classes=meta.num_classes, recorded_arch=meta.arch, stripped_prefix=stripped,
            extra={k: v for k, v in (("epoch", meta.epoch), ("best_acc1", meta.best_acc1)) if v is not None},
        )
