"""Writing training checkpoints (atomically, rank 0 only) and checking one fits a resume.

What a checkpoint holds is defined once, in the core (:mod:`infer_kit.checkpoint`), and
read back with its weights-only loader.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from infer_kit.checkpoint import BEST_NAME, CHECKPOINT_NAME, TrainingCheckpoint
from infer_kit.errors import InferKitError
from infer_kit.fsutil import write_bytes_atomic
from infer_kit.spec import PreprocessSpec


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel (or the model itself)."""
    return getattr(model, "module", model)


def checkpoint_state(*, epoch: int, arch: str, model: torch.nn.Module, best_acc1: float,
                     optimizer: torch.optim.Optimizer, scaler: Any, scheduler: Any, spec: PreprocessSpec,
                     classes: list[str], train_config: dict[str, Any]) -> TrainingCheckpoint:
    """What :func:`save_checkpoint` writes, from the live training objects."""
    return TrainingCheckpoint(
        epoch=epoch, arch=arch, state_dict=unwrap(model).state_dict(), best_acc1=best_acc1,
        optimizer=optimizer.state_dict(), scaler=scaler.state_dict(), scheduler=scheduler.state_dict(),
        spec=spec, classes=classes, train_config=train_config,
    )


def save_checkpoint(state: TrainingCheckpoint, output: str | os.PathLike[str], *, is_best: bool) -> Path:
    """Write ``output/checkpoint.pth`` (and ``model_best.pth`` when best), each atomically."""
    buffer = io.BytesIO()
    torch.save(state.to_dict(), buffer)
    data = buffer.getvalue()
    path = Path(output) / CHECKPOINT_NAME
    write_bytes_atomic(path, data)
    if is_best:
        write_bytes_atomic(Path(output) / BEST_NAME, data)
    return path


def check_compatible(state: TrainingCheckpoint, path: str | os.PathLike[str], *, arch: str | None,
                     classes: list[str]) -> None:
    """A checkpoint resumes only with the same architecture and the same class folders."""
    if arch is not None and state.arch != arch:
        raise InferKitError(f"checkpoint {path} is for arch {state.arch!r}, not {arch!r}",
                            hint=f"pass --arch {state.arch} or drop --arch")
    if list(state.classes) != list(classes):
        recorded = list(state.classes)
        raise InferKitError(
            f"checkpoint {path} was trained on {len(recorded)} classes ({', '.join(recorded[:3])}, ...) "
            f"but the data has {len(classes)} ({', '.join(classes[:3])}, ...)",
            hint="resume on the data the checkpoint was trained on",
        )
