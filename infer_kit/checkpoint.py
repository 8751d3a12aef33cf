"""What a training checkpoint holds, and reading any checkpoint file safely.

One definition shared by the trainer (which writes and resumes these files), the converter
(which exports their weights) and the torch runner (which runs them).

A training checkpoint is the pytorch/examples dictionary ``{'epoch', 'arch', 'state_dict',
'best_acc1', 'optimizer', ...}`` that the ModelZoo training scripts write, plus infer-kit's
``scheduler``, ``scaler``, ``preprocess_spec`` (``PreprocessSpec.to_dict()``), ``classes``
(folder names in index order), ``num_classes`` and ``train_config``. ``epoch`` counts the
epochs completed (the next one to run); ``state_dict`` is the unwrapped module's (no
``module.`` prefix). Everything in it is tensors, dicts, lists, numbers and strings, so
``torch.load(path, weights_only=True)`` reads it.

Checkpoints are pickles, and a pickle can run arbitrary code, so :func:`read_checkpoint`
loads with ``weights_only=True``; a file that needs more is refused with the global it
references unless the user says they trust it.
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infer_kit.errors import InferKitError
from infer_kit.spec import PreprocessSpec

CHECKPOINT_NAME = "checkpoint.pth"
BEST_NAME = "model_best.pth"
# What a resume needs of a training checkpoint (training_checkpoint() writes these and more).
REQUIRED_KEYS = ("epoch", "arch", "state_dict", "preprocess_spec", "classes")


@dataclass(frozen=True)
class TrainingCheckpoint:
    """A checkpoint ``infer-kit train`` writes and resumes from (see the module docstring for the file's keys)."""

    epoch: int
    arch: str
    state_dict: dict[str, Any]
    spec: PreprocessSpec
    classes: list[str]
    best_acc1: float = 0.0
    optimizer: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    train_config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The dictionary the file holds, in the pytorch/examples key order."""
        return {
            "epoch": int(self.epoch),
            "arch": self.arch,
            "state_dict": self.state_dict,
            "best_acc1": float(self.best_acc1),
            "optimizer": self.optimizer,
            "scaler": self.scaler,
            "scheduler": self.scheduler,
            "preprocess_spec": self.spec.to_dict(),
            "classes": list(self.classes),
            "num_classes": len(self.classes),
            "train_config": _plain(self.train_config),
        }

    @classmethod
    def from_dict(cls, raw: Any, *, where: str) -> TrainingCheckpoint:
        if not isinstance(raw, dict):
            raise InferKitError(f"{where} is not a training checkpoint (a {type(raw).__name__}, not a dict)")
        missing = [key for key in REQUIRED_KEYS if key not in raw]
        if missing:
            raise InferKitError(f"{where} is not an infer-kit training checkpoint (missing {', '.join(missing)})",
                                hint="resume needs a checkpoint.pth written by 'infer-kit train'")
        try:
            return cls(
                epoch=int(raw["epoch"]), arch=str(raw["arch"]), state_dict=dict(raw["state_dict"]),
                spec=PreprocessSpec.from_dict(raw["preprocess_spec"], where=f"{where}: preprocess_spec"),
                classes=[str(c) for c in raw["classes"]], best_acc1=float(raw.get("best_acc1") or 0.0),
                optimizer=raw.get("optimizer"), scaler=raw.get("scaler") or None, scheduler=raw.get("scheduler"),
                train_config=dict(raw.get("train_config") or {}),
            )
        except (TypeError, ValueError) as exc:
            raise InferKitError(f"{where} is a malformed training checkpoint ({exc})") from None


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint dictionary records about its weights (all optional)."""

    arch: str | None = None
    spec: PreprocessSpec | None = None
    classes: list[str] | None = None
    num_classes: int | None = None
    epoch: int | None = None
    best_acc1: float | None = None


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


def read_training_checkpoint(path: str | os.PathLike[str]) -> TrainingCheckpoint:
    """A checkpoint ``infer-kit train`` wrote (read weights-only), with everything a resume needs."""
    return TrainingCheckpoint.from_dict(read_checkpoint(path), where=str(path))


def checkpoint_meta(raw: Any, *, where: str) -> CheckpointMeta:
    """The architecture, spec, classes, epoch and accuracy a checkpoint dictionary records."""
    if not isinstance(raw, dict):
        return CheckpointMeta()
    spec = None
    if isinstance(raw.get("preprocess_spec"), dict):
        spec = PreprocessSpec.from_dict(raw["preprocess_spec"], where=f"preprocess_spec in {where}")
    classes = [str(c) for c in raw["classes"]] if isinstance(raw.get("classes"), list) else None
    return CheckpointMeta(
        arch=raw.get("arch") if isinstance(raw.get("arch"), str) else None,
        spec=spec,
        classes=classes,
        num_classes=_positive_int(raw.get("num_classes")),
        epoch=_positive_int(raw.get("epoch")),
        best_acc1=float(raw["best_acc1"]) if isinstance(raw.get("best_acc1"), int | float) else None,
    )


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _plain(value: Any) -> Any:
    """Paths and tuples as strings and lists, so the value loads with weights_only=True."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


def _unsafe_global(exc: BaseException) -> str | None:
    """The global a weights-only load refused (None: the file is not a pickle torch can read)."""
    match = re.search(r"GLOBAL ([\w.]+)", str(exc))
    return match.group(1) if match else None
