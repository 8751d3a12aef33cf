"""Loading a checkpoint's weights into its architecture, strictly.

The file is read with the core's weights-only loader (:func:`infer_kit.checkpoint.read_checkpoint`),
which refuses pickles that need arbitrary code unless the user trusts them. The weights are then
loaded *strictly*: a missing, unexpected or mis-shaped key is an error naming the counts and the
first few keys, never a model that silently keeps random weights (the ModelZoo's ``strict=False``
failure).

Accepted shapes: a bare state_dict; pytorch/examples and infer-kit training checkpoints
(``{'epoch', 'arch', 'state_dict', 'best_acc1', 'optimizer', ...}``); ``{'model': ...}``;
``{'state_dict_ema': ...}`` (timm); keys prefixed ``module.`` (DataParallel/DDP) or
``_orig_mod.`` (torch.compile).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer_kit.checkpoint import checkpoint_meta, read_checkpoint
from infer_kit.errors import InferKitError
from infer_kit.fsutil import sha256_file
from infer_kit.registry import ModelEntry, create_model, get_model
from infer_kit.spec import PreprocessSpec

if TYPE_CHECKING:
    import torch

STRIPPED_PREFIXES = ("module.", "_orig_mod.")
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "state_dict_ema", "model_ema")
_SHOW = 3


@dataclass(frozen=True)
class CheckpointInfo:
    """Where the weights came from and what the checkpoint recorded about them."""

    path: Path
    sha256: str
    layout: str
    arch: str | None = None
    num_classes: int | None = None
    spec: PreprocessSpec | None = None
    classes: list[str] | None = None
    stripped_prefix: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def extract_state_dict(obj: Any, *, use_ema: bool = False, where: str = "checkpoint") -> tuple[dict[str, Any], str]:
    """Find the weights inside a loaded checkpoint; return (state_dict, layout name)."""
    import torch

    if isinstance(obj, torch.nn.Module):
        return obj.state_dict(), "pickled module"
    if not isinstance(obj, dict):
        raise InferKitError(f"{where} holds a {type(obj).__name__}, not a state_dict or a training checkpoint")
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj, "state_dict"
    order = ("state_dict_ema", "model_ema") + _WRAPPER_KEYS if use_ema else _WRAPPER_KEYS
    for key in order:
        inner = obj.get(key)
        if isinstance(inner, torch.nn.Module):
            inner = inner.state_dict()
        if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            layout = "pytorch-examples" if key == "state_dict" and "epoch" in obj else f"{{'{key}': ...}}"
            return inner, layout
    keys = ", ".join(sorted(map(str, obj))[:8])
    raise InferKitError(
        f"{where} has no weights infer-kit recognises (top-level keys: {keys})",
        hint="expected a state_dict or a dict with 'state_dict', 'model' or 'state_dict_ema'",
    )


def strip_prefixes(state_dict: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Drop a ``module.``/``_orig_mod.`` prefix carried by every key (DDP, torch.compile)."""
    stripped = None
    for prefix in STRIPPED_PREFIXES:
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
            stripped = (stripped or "") + prefix
    return state_dict, stripped


def classifier_key(model: torch.nn.Module) -> str | None:
    """Name of the classifier head's weight in ``model.state_dict()`` (timm models)."""
    get_classifier = getattr(model, "get_classifier", None)
    head = get_classifier() if callable(get_classifier) else None
    if head is None:
        return None
    for name, module in model.named_modules():
        if module is head and hasattr(module, "weight"):
            return f"{name}.weight"
    return None


def load_checkpoint_model(
    arch: str | None,
    path: str | os.PathLike[str],
    *,
    num_classes: int | None = None,
    trust: bool = False,
    use_ema: bool = False,
) -> tuple[torch.nn.Module, CheckpointInfo]:
    """Build ``arch`` and load the checkpoint's weights strictly; return (model in eval mode, info).

    ``arch`` may be None when the checkpoint records one (infer-kit and pytorch/examples
    checkpoints do). The class count is read from the classifier head unless given.
    """
    path = Path(path)
    raw = read_checkpoint(path, trust=trust)
    state_dict, layout = extract_state_dict(raw, use_ema=use_ema, where=f"checkpoint {path}")
    state_dict, stripped = strip_prefixes(state_dict)
    meta = checkpoint_meta(raw if layout != "state_dict" else None, where=str(path))
    recorded_arch = meta.arch
    arch = arch or recorded_arch
    if arch is None:
        raise InferKitError(f"checkpoint {path} does not record its architecture", hint="pass --arch NAME")
    entry = get_model(arch)
    model = create_model(entry)
    head = classifier_key(model)
    inferred = int(state_dict[head].shape[0]) if head and head in state_dict else None
    classes = num_classes or inferred or meta.num_classes or 1000
    if classes != _head_size(model, head):
        model.reset_classifier(classes)
    _load_strict(model, state_dict, path=path, entry=entry, recorded_arch=recorded_arch)
    model.eval()
    info = CheckpointInfo(
        path=path,
        sha256=sha256_file(path),
        layout=layout,
        arch=entry.name,
        num_classes=classes,
        spec=meta.spec,
        classes=meta.classes,
        stripped_prefix=stripped,
        extra={k: v for k, v in (("epoch", meta.epoch), ("best_acc1", meta.best_acc1)) if v is not None},
    )
    return model, info


def _load_strict(
    model: torch.nn.Module, state_dict: dict[str, Any], *, path: Path, entry: ModelEntry, recorded_arch: str | None
) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k} {list(state_dict[k].shape)} vs {list(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", mismatched)):
            if items:
                shown = ", ".join(items[:_SHOW]) + (", ..." if len(items) > _SHOW else "")
                parts.append(f"{len(items)} {label} key(s) ({shown})")
        recorded = f"; the checkpoint says arch {recorded_arch!r}" if recorded_arch else ""
        raise InferKitError(
            f"checkpoint {path} does not fit {entry.name} (timm {entry.arch}): {'; '.join(parts)}{recorded}",
            hint="is it a checkpoint for another architecture or class count? pass the right --arch/--num-classes",
        )
    for key, value in expected.items():  # old torchvision files predate BatchNorm's counter
        if key.endswith("num_batches_tracked") and key not in state_dict:
            state_dict[key] = value
    model.load_state_dict(state_dict, strict=True)


def _head_size(model: torch.nn.Module, head: str | None) -> int | None:
    if head is None:
        return getattr(model, "num_classes", None)
    return int(model.state_dict()[head].shape[0])
