"""Checkpoints in the pytorch/examples shape, written atomically, loadable with ``weights_only=True``.

Keys: ``epoch`` (epochs completed, i.e. the next epoch to run), ``arch``, ``state_dict`` (of the
unwrapped module: no ``module.`` prefix), ``best_acc1``, ``optimizer``, ``scaler``, plus
``scheduler``, ``preprocess_spec`` (``PreprocessSpec.to_dict()``), ``classes`` (folder names in
index order), ``num_classes`` and ``train_config``. Everything is tensors, dicts, lists,
numbers and strings, so ``torch.load(path, weights_only=True)`` reads it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from infer_kit.errors import InferKitError
from infer_kit.fsutil import write_bytes_atomic
from infer_kit.spec import PreprocessSpec

CHECKPOINT_NAME = "checkpoint.pth"
BEST_NAME = "model_best.pth"
REQUIRED_KEYS = ("epoch", "arch", "state_dict", "preprocess_spec", "classes")


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel (or the model itself)."""
    return getattr(model, "module", model)


def checkpoint_state(*, epoch: int, arch: str, model: torch.nn.Module, best_acc1: float,
                     optimizer: torch.optim.Optimizer, scaler: Any, scheduler: Any, spec: PreprocessSpec,
                     classes: list[str], train_config: dict[str, Any]) -> dict[str, Any]:
    """The dictionary :func:`save_checkpoint` writes."""
    return {
        "epoch": int(epoch),
        "arch": arch,
        "state_dict": unwrap(model).state_dict(),
        "best_acc1": float(best_acc1),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "scheduler": scheduler.state_dict(),
        "preprocess_spec": spec.to_dict(),
        "classes": list(classes),
        "num_classes": len(classes),
        "train_config": _plain(train_config),
    }


def save_checkpoint(state: dict[str, Any], output: str | os.PathLike[str], *, is_best: bool) -> Path:
    """Write ``output/checkpoint.pth`` (and ``model_best.pth`` when best), each atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    path = Path(output) / CHECKPOINT_NAME
    write_bytes_atomic(path, data)
    if is_best:
        write_bytes_atomic(Path(output) / BEST_NAME, data)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``) and check it has the keys training needs."""
    path = Path(path)
    if not path.is_file():
        raise InferKitError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged or foreign files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InferKitError(f"cannot load checkpoint {path}: {first}",
                            hint="is it a complete checkpoint written by a trainer?") from None
    if not isinstance(state, dict):
        raise InferKitError(f"{path} is not a training checkpoint (a {type(state).__name__}, not a dict)")
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise InferKitError(f"{path} is not an infer-kit training checkpoint (missing {', '.join(missing)})",
                            hint="resume needs a checkpoint.pth written by 'infer-kit train'")
    return state


def check_compatible(state: dict[str, Any], path: str | os.PathLike[str], *, arch: str | None,
                     classes: list[str]) -> None:
    """A checkpoint resumes only with the same architecture and the same class folders."""
    if arch is not None and state["arch"] != arch:
        raise InferKitError(f"checkpoint {path} is for arch {state['arch']!r}, not {arch!r}",
                            hint=f"pass --arch {state['arch']} or drop --arch")
    if list(state["classes"]) != list(classes):
        recorded = list(state["classes"])
        raise InferKitError(
            f"checkpoint {path} was trained on {len(recorded)} classes ({', '.join(recorded[:3])}, ...) "
            f"but the data has {len(classes)} ({', '.join(classes[:3])}, ...)",
            hint="resume on the data the checkpoint was trained on",
        )


def _plain(value: Any) -> Any:
    """Paths and tuples as strings and lists, so the value loads with weights_only=True."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
