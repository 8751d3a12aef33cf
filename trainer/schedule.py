"""Learning-rate schedule: linear warmup, then cosine decay or step decay, advanced every iteration."""

from __future__ import annotations

import math

import torch


def lr_factor(step: int, *, steps_per_epoch: int, epochs: int, warmup_epochs: float, kind: str,
              step_epochs: tuple[int, ...] = (), gamma: float = 0.1) -> float:
    """The multiple of the base learning rate at iteration ``step`` (0-based).

    Warmup rises linearly to 1 over ``warmup_epochs`` (fractions allowed); ``cosine`` then falls
    to 0 at the end of the last epoch; ``step`` multiplies by ``gamma`` at each epoch in ``step_epochs``.
    """
    warmup_steps = int(round(warmup_epochs * steps_per_epoch))
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "cosine":
        total = max(1, epochs * steps_per_epoch - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / total)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    epoch = step // steps_per_epoch
    return gamma ** sum(1 for milestone in step_epochs if epoch >= milestone)


def build_scheduler(
    optimizer: torch.optim.Optimizer, *, steps_per_epoch: int, epochs: int, warmup_epochs: float, kind: str,
    step_epochs: tuple[int, ...] = (), gamma: float = 0.1,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR over iterations; its state (the iteration count) goes into checkpoints."""

    def factor(step: int) -> float:
        return lr_factor(step, steps_per_epoch=steps_per_epoch, epochs=epochs, warmup_epochs=warmup_epochs,
                         kind=kind, step_epochs=step_epochs, gamma=gamma)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
