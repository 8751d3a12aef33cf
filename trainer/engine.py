"""The train and validation loops: AMP, metrics, and FPS as the seeds report it.

FPS is global images per second: ``batch_size * world_size / mean step time``, the mean taken
after the first few steps of the epoch (data-loader start-up), as the ModelZoo scripts do.
Log lines come from rank 0 and show rank 0's running loss and accuracy; validation accuracy is
summed over all ranks, every image counted once.

With bfloat16 autocast there is no GradScaler, so a step whose gradients are not finite is
dropped the way GradScaler drops one in fp16: no update, BatchNorm statistics restored. On this
project's CPU VM bf16 kernels produced rare spurious NaNs under heavy load (plain torch, fp32
unaffected); more than ``MAX_SKIPPED_STEPS`` such steps in an epoch is reported as divergence.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from infer_kit.console import log
from infer_kit.errors import InferKitError
from infer_kit.trainer.distributed import DistEnv, all_reduce_sum

MAX_SKIPPED_STEPS = 20


@dataclass(frozen=True)
class Precision:
    """Autocast settings: ``dtype`` None means fp32."""

    device_type: str
    dtype: torch.dtype | None

    @property
    def label(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling only where fp16 needs it (cuda/npu); a pass-through otherwise."""
        return torch.amp.GradScaler(self.device_type, enabled=self.dtype == torch.float16)


def resolve_precision(device_type: str, amp: bool, amp_dtype: str = "auto") -> Precision:
    """``--amp``: bfloat16 on cpu, float16 on cuda/npu, unless ``amp_dtype`` says otherwise."""
    if not amp:
        return Precision(device_type, None)
    if amp_dtype == "auto":
        amp_dtype = "bf16" if device_type == "cpu" else "fp16"
    if device_type == "cpu" and amp_dtype == "fp16":
        raise InferKitError("--amp-dtype fp16 is not supported on cpu", hint="use --amp-dtype bf16")
    return Precision(device_type, torch.bfloat16 if amp_dtype == "bf16" else torch.float16)


class Meter:
    """Running average of a value, optionally ignoring the first ``skip`` updates."""

    def __init__(self, skip: int = 0) -> None:
        self.skip = skip
        self.seen = 0
        self.total = 0.0
        self.count = 0
        self.last = 0.0

    def update(self, value: float, n: int = 1) -> None:
        self.last = value
        self.seen += 1
        if self.seen > self.skip:
            self.total += value * n
            self.count += n

    @property
    def avg(self) -> float:
        return self.total / self.count if self.count else self.last


def topk_correct(output: torch.Tensor, target: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """How many samples have their target among the top-k outputs, for each k (k capped at the class count)."""
    kmax = min(max(ks), output.shape[1])
    top = output.topk(kmax, dim=1).indices
    hits = top.eq(target.view(-1, 1))
    return [int(hits[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]


@dataclass(frozen=True)
class EpochStats:
    loss: float
    first_loss: float
    acc1: float
    acc5: float
    fps: float
    steps: int
    images: int
    seconds: float
    skipped: int = 0


@dataclass(frozen=True)
class EvalStats:
    loss: float
    acc1: float
    acc5: float
    images: int
    fps: float


def timing_skip(steps: int) -> int:
    """Steps left out of the FPS mean: 5 of long epochs, fewer of short ones."""
    return min(5, steps // 5)


def train_one_epoch(model: torch.nn.Module, loader: Iterable[Any], *, criterion: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any, scaler: torch.amp.GradScaler,
                    precision: Precision, env: DistEnv, epoch: int, steps: int, print_freq: int,
                    batch_size: int) -> EpochStats:
    """One pass over ``loader`` (at most ``steps`` batches), stepping the schedule every batch."""
    model.train()
    guard = precision.dtype is not None and not scaler.is_enabled()
    skipped = 0
    skip = timing_skip(steps)
    step_time, losses, top1, top5 = Meter(skip), Meter(), Meter(), Meter()
    images = done = 0
    first_loss = float("nan")
    started = end = time.perf_counter()
    for step, (inputs, target) in enumerate(_batches(loader, steps)):
        inputs = inputs.to(env.device, non_blocking=True)
        target = target.to(env.device, non_blocking=True)
        saved = [b.detach().clone() for b in model.buffers()] if guard else []
        with precision.autocast():
            output = model(inputs)
            loss = criterion(output, target)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if guard and not grads_finite(optimizer):
            skipped += 1
            _skip_step(model, saved, optimizer, scheduler)
            if skipped > MAX_SKIPPED_STEPS:
                raise InferKitError(f"training diverged at epoch {epoch} step {step}: {skipped} steps had "
                                    "non-finite gradients", hint="lower --lr, add --warmup-epochs, or turn off --amp")
            continue
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise InferKitError(f"training diverged at epoch {epoch} step {step} (loss {value})",
                                hint="lower --lr, add --warmup-epochs, or turn off --amp")
        if done == 0:
            first_loss = value
        n = inputs.shape[0]
        correct1, correct5 = topk_correct(output.detach().float(), target)
        losses.update(value, n)
        top1.update(100.0 * correct1 / n, n)
        top5.update(100.0 * correct5 / n, n)
        images += n * env.world_size
        done = step + 1
        now = time.perf_counter()
        step_time.update(now - end)
        end = now
        if env.is_main and (step % print_freq == 0 or step == steps - 1):
            log.info(
                f"Epoch: [{epoch}][{step:>{len(str(steps))}}/{steps}]  loss {losses.last:.4f} ({losses.avg:.4f})  "
                f"Acc@1 {top1.last:6.2f} ({top1.avg:6.2f})  Acc@5 {top5.last:6.2f} ({top5.avg:6.2f})  "
                f"lr {optimizer.param_groups[0]['lr']:.5f}  FPS {fps(batch_size, env.world_size, step_time.avg):.1f}"
            )
    if skipped and env.is_main:
        log.warning(f"epoch {epoch}: skipped {skipped} step(s) whose {precision.label} gradients were not finite")
    return EpochStats(losses.avg, first_loss, top1.avg, top5.avg, fps(batch_size, env.world_size, step_time.avg),
                      done, images, time.perf_counter() - started, skipped)


def grads_finite(optimizer: torch.optim.Optimizer) -> bool:
    """True when every gradient is finite (identical on all DDP ranks: gradients are all-reduced)."""
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return True
    norms = torch.stack([torch.linalg.vector_norm(g.detach().float()) for g in grads])
    return bool(torch.isfinite(norms).all())


def _skip_step(model: torch.nn.Module, saved: list[torch.Tensor], optimizer: torch.optim.Optimizer,
               scheduler: Any) -> None:
    """Drop a step: no update, BatchNorm statistics as before it; the schedule still advances."""
    with torch.no_grad():
        for buffer, before in zip(model.buffers(), saved, strict=True):
            buffer.copy_(before)
    optimizer.zero_grad(set_to_none=True)
    with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()" when the first step is dropped
        warnings.simplefilter("ignore", UserWarning)
        scheduler.step()


def fps(batch_size: int, world_size: int, seconds_per_step: float) -> float:
    return batch_size * world_size / seconds_per_step if seconds_per_step > 0 else 0.0


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: Iterable[Any], *, criterion: torch.nn.Module, precision: Precision,
             env: DistEnv) -> EvalStats:
    """Loss and top-1/top-5 over the whole val set, summed across ranks."""
    model.eval()
    totals = [0.0, 0.0, 0.0, 0.0]  # loss sum, top-1 hits, top-5 hits, images
    started = time.perf_counter()
    for inputs, target in _batches(loader, None):
        inputs = inputs.to(env.device, non_blocking=True)
        target = target.to(env.device, non_blocking=True)
        with precision.autocast():
            output = model(inputs)
        output = output.float()
        correct1, correct5 = topk_correct(output, target)
        totals[0] += float(criterion(output, target)) * inputs.shape[0]
        totals[1] += correct1
        totals[2] += correct5
        totals[3] += inputs.shape[0]
    seconds = time.perf_counter() - started
    loss, hits1, hits5, count = all_reduce_sum(env, totals)
    if count == 0:
        raise InferKitError("the validation split has no images")
    return EvalStats(loss / count, 100.0 * hits1 / count, 100.0 * hits5 / count, int(count), count / seconds)


def _batches(loader: Iterable[Any], limit: int | None) -> Iterator[Any]:
    """Batches from ``loader`` (at most ``limit``); a user error raised in a loader worker keeps its one line."""
    iterator = iter(loader)
    taken = 0
    while limit is None or taken < limit:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except InferKitError as exc:
            if "Original Traceback" not in exc.message:
                raise
            raise InferKitError(exc.message.strip().splitlines()[-1].split("InferKitError: ", 1)[-1]) from None
        taken += 1
        yield batch
