"""The training stage: ``train(config) -> TrainResult``.

One process, torchrun's processes, or ``config.nproc`` processes started here all run
:func:`train_worker`. Each epoch trains, copies rank 0's BatchNorm statistics to all ranks,
evaluates on the whole val split and (rank 0 only) writes ``checkpoint.pth`` and, when the
accuracy is the best so far, ``model_best.pth``. ``--resume`` restores model, optimizer,
scaler, scheduler, epoch and best accuracy; the data order and augmentation of every epoch are
seeded from (seed, epoch, rank), so a resumed run takes the same steps as an uninterrupted one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from infer_kit.checkpoint import BEST_NAME, CHECKPOINT_NAME, TrainingCheckpoint, read_training_checkpoint
from infer_kit.console import log
from infer_kit.errors import InferKitError
from infer_kit.fsutil import write_json_atomic
from infer_kit.registry import ModelEntry, create_model, get_model
from infer_kit.spec import PreprocessSpec
from infer_kit.trainer.checkpoint import check_compatible, checkpoint_state, save_checkpoint, unwrap
from infer_kit.trainer.config import TrainConfig
from infer_kit.trainer.distributed import DistEnv, broadcast_buffers, init_distributed, launch, shutdown

TABLE_HEADER = "| NAME | Acc@1 | FPS | Epochs | AMP_Type | Torch_Version |"
SUMMARY_NAME = "train_summary.json"


@dataclass
class TrainResult:
    """What a run did; ``model`` (the trained module) is only set in the process that trained it."""

    mode: str
    arch: str
    output: Path
    epochs: int
    epochs_run: int
    acc1: float | None
    acc5: float | None
    best_acc1: float | None
    fps: float
    world_size: int
    device: str
    precision: str
    torch_version: str
    seconds: float
    checkpoint: Path | None = None
    best_checkpoint: Path | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    rank: int = 0
    model: Any = field(default=None, repr=False, compare=False)

    def table_row(self) -> str:
        """The seeds' result-table row: ``| 1p-CPU | 84.10 | 950.3 | 3 | bf16 | 2.14.1 |``."""
        acc = "-" if self.best_acc1 is None else f"{self.best_acc1:.2f}"
        fps = f"{self.fps:.1f}" if self.fps > 0 else "-"
        name = f"{self.world_size}p-{self.device.upper()}"
        return f"| {name} | {acc} | {fps} | {self.epochs} | {self.precision} | {self.torch_version} |"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(replace(self, model=None))
        data.pop("model")
        for key in ("output", "checkpoint", "best_checkpoint"):
            data[key] = None if data[key] is None else str(data[key])
        data["table_row"] = self.table_row()
        return data


def train(config: TrainConfig) -> TrainResult:
    """Train, evaluate (``config.evaluate``) or measure (``config.performance``) as ``config`` says.

    With ``config.nproc > 1`` the inputs are checked here, then ``nproc`` local processes run
    the job as one DistributedDataParallel group; the result is rank 0's (without ``model``).
    """
    if config.nproc > 1:
        _plan(config)
        return launch(_launched_worker, config)
    return train_worker(config)


def train_worker(config: TrainConfig) -> TrainResult:
    """The per-process job (what torchrun runs in every process)."""
    import torch

    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    env = init_distributed(config)
    try:
        return _run(config, env)
    finally:
        shutdown(env)
        torch.set_num_threads(threads)


def _launched_worker(config: TrainConfig) -> TrainResult:
    """A spawned rank's job; the result travels back to the parent without the model."""
    return replace(train_worker(config), model=None)


# ---- planning: everything that can be checked before a model is built -------------------------------------------


@dataclass
class _Plan:
    entry: ModelEntry
    spec: PreprocessSpec
    classes: list[str]
    train_split: Any
    val_split: Any
    state: TrainingCheckpoint | None
    resume_path: Path | None


def _plan(config: TrainConfig) -> _Plan:
    from infer_kit.trainer.data import check_same_classes, scan_split

    resume_path = _resume_path(config)
    state = read_training_checkpoint(resume_path) if resume_path is not None else None
    arch = config.arch or (state.arch if state else None)
    if arch is None:
        raise InferKitError(f"no model given and no checkpoint in {config.output}", hint="pass --arch NAME")
    entry = get_model(arch)
    spec = _spec(config, entry, state, resume_path)
    train_split = val_split = None
    if not config.evaluate:
        train_split = scan_split(config.data, "train")
    if not config.performance:
        val_split = scan_split(config.data, "val")
    if train_split is not None and val_split is not None:
        check_same_classes(train_split, val_split)
    classes = (train_split or val_split).classes
    if state is not None:
        check_compatible(state, resume_path, arch=entry.name if config.arch else None, classes=classes)
    return _Plan(entry, spec, classes, train_split, val_split, state, resume_path)


def _resume_path(config: TrainConfig) -> Path | None:
    """``--resume auto`` continues ``OUTPUT/checkpoint.pth`` when it exists; a fresh run never overwrites one."""
    if config.resume is not None and str(config.resume) != "auto":
        return config.resume
    existing = config.output / CHECKPOINT_NAME
    if config.resume is not None:
        return existing if existing.is_file() else None
    if existing.is_file() and not (config.evaluate or config.performance):
        raise InferKitError(f"{existing} already exists",
                            hint=f"continue it with --resume {existing} (or --resume auto), or pick another --output")
    return None


def _spec(config: TrainConfig, entry: ModelEntry, state: TrainingCheckpoint | None,
          path: Path | None) -> PreprocessSpec:
    """The registry's spec with overrides; on resume the checkpoint's, which overrides may not change."""
    if state is None:
        return entry.spec.with_overrides(**config.spec_overrides)
    spec = state.spec
    changed = spec.differences(spec.with_overrides(**config.spec_overrides))
    if changed:
        raise InferKitError(f"checkpoint {path} was trained with a different preprocessing ({'; '.join(changed)})",
                            hint="drop the spec options when resuming or evaluating")
    return spec


# ---- the run -------------------------------------------------------------------------------------------------------


def _run(config: TrainConfig, env: DistEnv) -> TrainResult:
    import torch

    from infer_kit.trainer.data import train_loader, val_loader
    from infer_kit.trainer.engine import resolve_precision

    plan = _plan(config)
    precision = resolve_precision(env.device.type, config.amp, config.amp_dtype)
    seed_everything(config.seed, 0, 0)
    model = create_model(plan.entry, num_classes=len(plan.classes))
    if plan.state is not None:
        _load_weights(model, plan.state, plan.resume_path)
    model.to(env.device)
    if env.distributed:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=None if env.device.type == "cpu" else [env.device.index])
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing).to(env.device)
    if env.is_main:
        log.info(f"{plan.entry.name}: {len(plan.classes)} classes, input {plan.spec.describe()}; "
                 f"{env.world_size} x {env.device.type}, {precision.label}")
    context = _Context(config, env, plan, model, criterion, precision)
    if config.evaluate:
        return _evaluate_only(context, val_loader(plan.val_split, plan.spec, config.batch_size, config.workers, env))
    loader, sampler = train_loader(plan.train_split, plan.spec, config.augment, config.batch_size, config.workers,
                                   env, config.seed)
    if config.performance:
        return _performance(context, loader, sampler)
    return _fit(context, loader, sampler, val_loader(plan.val_split, plan.spec, config.batch_size, config.workers, env))


@dataclass
class _Context:
    config: TrainConfig
    env: DistEnv
    plan: _Plan
    model: Any
    criterion: Any
    precision: Any
    started: float = field(default_factory=time.perf_counter)

    def result(self, mode: str, **values: Any) -> TrainResult:
        import torch

        return TrainResult(
            mode=mode, arch=self.plan.entry.name, output=self.config.output, world_size=self.env.world_size,
            device=self.env.device.type, precision=self.precision.label,
            torch_version=torch.__version__.split("+")[0], seconds=time.perf_counter() - self.started,
            rank=self.env.rank, model=unwrap(self.model), **values,
        )


def _fit(ctx: _Context, loader: Any, sampler: Any, val: Any) -> TrainResult:
    from infer_kit.trainer.engine import evaluate, train_one_epoch

    config, env, plan = ctx.config, ctx.env, ctx.plan
    steps = len(loader)
    optimizer = build_optimizer(ctx.model, config.lr, config.momentum, config.weight_decay)
    scheduler = _scheduler(optimizer, config, steps)
    scaler = ctx.precision.grad_scaler()
    start_epoch, best_acc1 = 0, 0.0
    if plan.state is not None:
        start_epoch, best_acc1 = _restore(plan.state, optimizer, scheduler, scaler, steps, plan.resume_path)
    if env.is_main:
        config.output.mkdir(parents=True, exist_ok=True)
    history: list[dict[str, float]] = []
    last = None
    for epoch in range(start_epoch, config.epochs):
        seed_everything(config.seed, epoch, env.rank)
        sampler.set_epoch(epoch)
        stats = train_one_epoch(ctx.model, loader, criterion=ctx.criterion, optimizer=optimizer, scheduler=scheduler,
                                scaler=scaler, precision=ctx.precision, env=env, epoch=epoch, steps=steps,
                                print_freq=config.print_freq, batch_size=config.batch_size)
        broadcast_buffers(env, unwrap(ctx.model))
        last = evaluate(ctx.model, val, criterion=ctx.criterion, precision=ctx.precision, env=env)
        is_best = last.acc1 > best_acc1
        best_acc1 = max(best_acc1, last.acc1)
        history.append({"epoch": epoch + 1, "loss": stats.loss, "first_loss": stats.first_loss,
                        "train_acc1": stats.acc1, "acc1": last.acc1, "acc5": last.acc5, "fps": stats.fps,
                        "seconds": stats.seconds, "lr": optimizer.param_groups[0]["lr"], "skipped": stats.skipped})
        if env.is_main:
            save_checkpoint(checkpoint_state(
                epoch=epoch + 1, arch=plan.entry.name, model=ctx.model, best_acc1=best_acc1, optimizer=optimizer,
                scaler=scaler, scheduler=scheduler, spec=plan.spec, classes=plan.classes,
                train_config=config.to_dict()), config.output, is_best=is_best)
            log.info(f" * Epoch {epoch + 1}/{config.epochs}  Acc@1 {last.acc1:.3f}  Acc@5 {last.acc5:.3f}  "
                     f"(best {best_acc1:.3f})  loss {stats.loss:.4f}  FPS {stats.fps:.1f}  {stats.seconds:.1f}s")
    if last is None:
        if env.is_main:
            log.info(f"checkpoint {plan.resume_path} already has {start_epoch} of {config.epochs} epochs; "
                     "evaluating it")
        last = evaluate(ctx.model, val, criterion=ctx.criterion, precision=ctx.precision, env=env)
    fps = sum(h["fps"] for h in history) / len(history) if history else 0.0
    result = ctx.result(
        "train", epochs=max(start_epoch, config.epochs), epochs_run=len(history), acc1=last.acc1, acc5=last.acc5,
        best_acc1=max(best_acc1, last.acc1), fps=fps,
        checkpoint=config.output / CHECKPOINT_NAME, best_checkpoint=config.output / BEST_NAME, history=history,
    )
    if env.is_main and history:
        write_json_atomic(config.output / SUMMARY_NAME, {**result.to_dict(), "config": config.to_dict()})
    return result


def _evaluate_only(ctx: _Context, val: Any) -> TrainResult:
    from infer_kit.trainer.engine import evaluate

    stats = evaluate(ctx.model, val, criterion=ctx.criterion, precision=ctx.precision, env=ctx.env)
    if ctx.env.is_main:
        log.info(f" * {ctx.plan.resume_path}: Acc@1 {stats.acc1:.3f}  Acc@5 {stats.acc5:.3f}  "
                 f"on {stats.images} images ({stats.fps:.1f} img/s)")
    return ctx.result("evaluate", epochs=ctx.plan.state.epoch, epochs_run=0, acc1=stats.acc1,
                      acc5=stats.acc5, best_acc1=stats.acc1, fps=stats.fps)


def _performance(ctx: _Context, loader: Any, sampler: Any) -> TrainResult:
    """A fixed number of steps (across epoch boundaries), no evaluation, no checkpoints: FPS only."""
    from infer_kit.trainer.engine import train_one_epoch

    config, env = ctx.config, ctx.env
    optimizer = build_optimizer(ctx.model, config.lr, config.momentum, config.weight_decay)
    scheduler = _scheduler(optimizer, config, len(loader))
    seed_everything(config.seed, 0, env.rank)
    stats = train_one_epoch(ctx.model, _epochs_of_batches(loader, sampler), criterion=ctx.criterion,
                            optimizer=optimizer, scheduler=scheduler, scaler=ctx.precision.grad_scaler(),
                            precision=ctx.precision, env=env, epoch=0, steps=config.performance_steps,
                            print_freq=config.print_freq, batch_size=config.batch_size)
    if env.is_main:
        log.info(f" * performance: {stats.steps} steps of {config.batch_size} x {env.world_size}, FPS {stats.fps:.1f}")
    return ctx.result("performance", epochs=1, epochs_run=1, acc1=None, acc5=None, best_acc1=None, fps=stats.fps)


def _epochs_of_batches(loader: Any, sampler: Any) -> Iterator[Any]:
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


# ---- pieces ----------------------------------------------------------------------------------------------------------


def build_optimizer(model: Any, lr: float, momentum: float, weight_decay: float) -> Any:
    """SGD with momentum; norm weights and biases (1-d parameters) get no weight decay."""
    import torch

    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=lr, momentum=momentum)


def seed_everything(seed: int, epoch: int, rank: int) -> None:
    """Seed python, numpy and torch from (seed, epoch, rank): each epoch replays identically on resume."""
    import numpy as np
    import torch

    value = int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, dtype=np.uint64)[0] >> 1)
    random.seed(value)
    np.random.seed(value % 2**32)
    torch.manual_seed(value)


def _scheduler(optimizer: Any, config: TrainConfig, steps_per_epoch: int) -> Any:
    from infer_kit.trainer.schedule import build_scheduler

    return build_scheduler(optimizer, steps_per_epoch=steps_per_epoch, epochs=config.epochs,
                           warmup_epochs=config.warmup_epochs, kind=config.lr_scheduler,
                           step_epochs=config.lr_step_epochs, gamma=config.lr_gamma)


def _load_weights(model: Any, state: TrainingCheckpoint, path: Path | None) -> None:
    weights = {k.removeprefix("module."): v for k, v in state.state_dict.items()}
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise InferKitError(f"checkpoint {path} does not fit {state.arch}: {first}") from None


def _restore(state: TrainingCheckpoint, optimizer: Any, scheduler: Any, scaler: Any, steps_per_epoch: int,
             path: Path | None) -> tuple[int, float]:
    """Load optimizer, scheduler and scaler state; return (next epoch, best Acc@1)."""
    start_epoch = state.epoch
    try:
        optimizer.load_state_dict(state.optimizer)
        scheduler.load_state_dict(state.scheduler)
        if state.scaler:
            scaler.load_state_dict(state.scaler)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InferKitError(f"checkpoint {path}: cannot restore the optimizer ({exc})") from None
    expected = start_epoch * steps_per_epoch
    if scheduler.last_epoch != expected:
        log.warning(f"steps per epoch changed since {path} was written (batch size or process count); "
                    f"the schedule continues from epoch {start_epoch}")
        scheduler.last_epoch = expected
        for group, factor in zip(optimizer.param_groups, scheduler.lr_lambdas, strict=True):
            group["lr"] = group["initial_lr"] * factor(expected)
    return start_epoch, state.best_acc1
