"""`TrainConfig`: everything one training run needs, checked before any work starts.

The names follow pytorch/examples' ImageNet script (and so the ModelZoo training scripts built on it);
the seeds' distributed knobs map onto torchrun and a few options (see ``infer_kit.trainer.distributed``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infer_kit.errors import InferKitError

DEVICES = ("auto", "cpu", "cuda", "npu")
SCHEDULERS = ("cosine", "step")
AUGMENTATIONS = ("standard", "light", "none")
AMP_DTYPES = ("auto", "bf16", "fp16")
BACKENDS = ("auto", "gloo", "nccl", "hccl")


@dataclass
class TrainConfig:
    """One training (or evaluation, or performance) run.

    ``batch_size`` is per process, as in the ModelZoo scripts: the global batch is
    ``batch_size * world_size``. ``arch`` may be None only with ``resume`` (taken from the checkpoint).
    """

    data: Path
    arch: str | None = None
    output: Path = Path("train-output")
    epochs: int = 90
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    warmup_epochs: float = 0.0
    lr_scheduler: str = "cosine"
    lr_step_epochs: tuple[int, ...] = (30, 60, 80)
    lr_gamma: float = 0.1
    augment: str = "standard"
    workers: int = 4
    amp: bool = False
    amp_dtype: str = "auto"
    seed: int = 0
    print_freq: int = 10
    resume: Path | None = None
    evaluate: bool = False
    device: str = "auto"
    device_list: tuple[int, ...] = ()
    dist_backend: str = "auto"
    nproc: int = 1
    master_addr: str = "127.0.0.1"
    master_port: int = 0
    performance: bool = False
    performance_steps: int = 100
    threads: int | None = None
    spec_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data = Path(self.data)
        self.output = Path(self.output)
        self.resume = Path(self.resume) if self.resume is not None else None
        self.lr_step_epochs = tuple(int(e) for e in self.lr_step_epochs)
        self.device_list = tuple(int(d) for d in self.device_list)
        self.validate()

    def validate(self) -> None:
        """Reject values no run could use, naming the option."""
        if self.arch is None and self.resume is None:
            raise InferKitError("no model given", hint="pass --arch NAME (or --resume CHECKPOINT)")
        _choice("device", self.device, DEVICES)
        _choice("lr-scheduler", self.lr_scheduler, SCHEDULERS)
        _choice("augment", self.augment, AUGMENTATIONS)
        _choice("amp-dtype", self.amp_dtype, AMP_DTYPES)
        _choice("dist-backend", self.dist_backend, BACKENDS)
        for name in ("epochs", "batch_size", "print_freq", "nproc", "performance_steps"):
            if getattr(self, name) < 1:
                raise InferKitError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "momentum", "weight_decay", "label_smoothing", "warmup_epochs", "workers"):
            if getattr(self, name) < 0:
                raise InferKitError(f"--{name.replace('_', '-')} must not be negative, got {getattr(self, name)}")
        if self.label_smoothing >= 1:
            raise InferKitError(f"--label-smoothing must be below 1, got {self.label_smoothing}")
        if self.warmup_epochs >= self.epochs and not self.performance:
            raise InferKitError(
                f"--warmup-epochs {self.warmup_epochs:g} leaves no epoch after warmup (--epochs {self.epochs})"
            )
        if self.evaluate and self.resume is None:
            raise InferKitError("--evaluate needs a checkpoint", hint="pass --resume CHECKPOINT")
        if self.device_list and self.nproc > len(self.device_list):
            raise InferKitError(
                f"--nproc {self.nproc} needs {self.nproc} devices but --device-list names {len(self.device_list)}"
            )
        if not 0 <= self.master_port < 65536:
            raise InferKitError(f"--master-port must be 0..65535, got {self.master_port}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = str(value)
            elif isinstance(value, tuple):
                data[key] = list(value)
        return data


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InferKitError(f"--{name}: unknown value {value!r}", hint=f"use one of {', '.join(allowed)}")
