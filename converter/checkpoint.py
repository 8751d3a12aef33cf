"""Loading training checkpoints safely and strictly.

Checkpoints are pickles, and a pickle can run arbitrary code, so they are loaded with
``torch.load(weights_only=True)``; a file that needs more is refused with an explanation
unless the user says they trust it. The weights are then loaded *strictly*: a missing,
unexpected or mis-shaped key is an error naming the counts and the first few keys, never a
model that silently keeps random weights (the ModelZoo's ``strict=False`` failure).

Accepted shapes: a bare state_dict; pytorch/examples and infer-kit training checkpoints
(``{'epoch', 'arch', 'state_dict', 'best_acc1', 'optimizer', ...}``); ``{'model': ...}``;
``{'state_dict_ema': ...}`` (timm); keys prefixed ``module.`` (DataParallel/DDP) or
``_orig_mod.`` (torch.compile).
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def read_checkpoint(path: str | os.PathLike[str], *, trust: bool = False) -> Any:
    """``torch.load`` on the CPU, weights-only unless ``trust`` (the user vouches for the file)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InferKitError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise InferKitError(f"checkpoint {path} is empty (0 bytes)")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        unsafe = None if trust else _unsafe_global(exc)
        if unsafe is None:
            detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(exc))
            raise InferKitError(
                f"checkpoint {path} is not a readable torch file ({detail.group(1) if detail else _first_line(exc)})",
                hint="is it truncated, or not a .pth/.pt file?",
            ) from None
        raise InferKitError(
            f"checkpoint {path} needs arbitrary code to load (it references {unsafe}); a pickle like that can run "
            "anything on this machine, so it was not loaded",
            hint="re-save it as a plain state_dict, or pass --trust-checkpoint if you trust its author",
        ) from None
    except Exception as exc:  # torch.load on arbitrary bytes raises anything (IndexError, KeyError, ...)
        raise InferKitError(
            f"checkpoint {path} is not a readable torch file ({_first_line(exc)})",
            hint="is it truncated, or not a .pth/.pt file?",
        ) from None


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
    meta = raw if isinstance(raw, dict) and layout != "state_dict" else {}
    recorded_arch = meta.get("arch") if isinstance(meta.get("arch"), str) else None
    arch = arch or recorded_arch
    if arch is None:
        raise InferKitError(f"checkpoint {path} does not record its architecture", hint="pass --arch NAME")
    entry = get_model(arch)
    model = create_model(entry)
    head = classifier_key(model)
    inferred = int(state_dict[head].shape[0]) if head and head in state_dict else None
    classes = num_classes or inferred or _int_or_none(meta.get("num_classes")) or 1000
    if classes != _head_size(model, head):
        model.reset_classifier(classes)
    _load_strict(model, state_dict, path=path, entry=entry, recorded_arch=recorded_arch)
    model.eval()
    spec = None
    if isinstance(meta.get("preprocess_spec"), dict):
        spec = PreprocessSpec.from_dict(meta["preprocess_spec"], where=f"preprocess_spec in {path}")
    info = CheckpointInfo(
        path=path,
        sha256=sha256_file(path),
        layout=layout,
        arch=entry.name,
        num_classes=classes,
        spec=spec,
        classes=[str(c) for c in meta["classes"]] if isinstance(meta.get("classes"), list) else None,
        stripped_prefix=stripped,
        extra={k: meta[k] for k in ("epoch", "best_acc1") if k in meta and isinstance(meta[k], int | float)},
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


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


def _unsafe_global(exc: BaseException) -> str | None:
    """The global a weights-only load refused (None: the file is not a pickle torch can read)."""
    match = re.search(r"GLOBAL ([\w.]+)", str(exc))
    return match.group(1) if match else None
