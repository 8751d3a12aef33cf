"""What every checkpoint source shares: reading the file, the interface, and the result of a conversion.

A *source* is the codebase that wrote a checkpoint (pytorch/examples, MindSpore, pycls, timm 0.4,
EfficientNet-PyTorch). Each is one small module with a :class:`Source` subclass:

* ``detect(raw)`` looks at what was read (never unpickling more than weights) and returns a
  :class:`Detection` (a confidence and the reason) or None;
* ``convert(raw, arch=...)`` turns the file's tensors into the target timm model's names and
  layout by its table of name rules, and says which model to build (a registry name, or a
  builder for a geometry the registry does not have), which patches make that model compute
  what the source's code computes, and what the file records (classes, spec).

The loader (:func:`infer_kit.converter.load_checkpoint_model`) then builds the model, applies
the patches and loads the tensors strictly: a source tensor no rule covers, a tensor mapped
onto a key the model does not have, a model key left unfilled and a shape that differs are
errors naming the source key and the target key.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from infer_kit.checkpoint import read_checkpoint
from infer_kit.errors import InferKitError
from infer_kit.spec import PreprocessSpec

from ..mindspore_ckpt import is_encrypted, looks_like_mindspore, read_mindspore_checkpoint

if TYPE_CHECKING:
    import torch

TORCH = "torch"
MINDSPORE = "mindspore"
# The one class besides tensors that weights-only loading lets through: timm 0.4's train.py stores its argparse
# arguments in every checkpoint ('args'). A Namespace holds plain values and runs no code.
SAFE_GLOBALS = (argparse.Namespace,)


@dataclass(frozen=True)
class CheckpointFile:
    """A checkpoint as read from disk: ``kind`` is ``torch`` (``raw`` = what torch.load returned) or
    ``mindspore`` (``raw`` = a :class:`~infer_kit.converter.mindspore_ckpt.MindSporeCheckpoint`)."""

    path: Path
    kind: str
    raw: Any


def read_checkpoint_file(path: str | Path, *, trust: bool = False) -> CheckpointFile:
    """Read a checkpoint of any supported kind, telling the kinds apart by their first bytes."""
    import torch

    path = Path(path)
    if path.is_file() and path.stat().st_size > 0:
        with open(path, "rb") as handle:
            head = handle.read(4096 + 16)
        if is_encrypted(head) or looks_like_mindspore(head):
            return CheckpointFile(path, MINDSPORE, read_mindspore_checkpoint(path))
    with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
        return CheckpointFile(path, TORCH, read_checkpoint(path, trust=trust))


@dataclass(frozen=True)
class Detection:
    """How sure a source is that it wrote a file (0..1), and why, in words ``--from auto`` prints."""

    source: str
    confidence: float
    reason: str


@dataclass(frozen=True)
class Patch:
    """A change to the built target model so that it computes what the source's own code computes."""

    description: str
    apply: Callable[[torch.nn.Module], int]  # returns the number of modules changed


@dataclass
class Conversion:
    """A checkpoint's tensors under the target model's names, and the model to load them into."""

    arch: str  # registry name of the target ("resnest50", "efficientnet_b3", any timm name)
    tensors: dict[str, Any]  # target key -> tensor
    origin: dict[str, str]  # target key -> where it came from (a source key, or a note for filled tensors)
    unmatched: list[str] = field(default_factory=list)  # source keys no rule covers
    skipped: list[str] = field(default_factory=list)  # source keys dropped on purpose (optimizer state)
    layout: str = ""  # what the file looked like, e.g. "pycls checkpoint {'model_state': ...}"
    build: Callable[[], torch.nn.Module] | None = None  # a geometry the registry arch lacks (reduced depth/width)
    variant: str | None = None  # that geometry, in words
    patches: tuple[Patch, ...] = ()
    spec: PreprocessSpec | None = None
    classes: list[str] | None = None
    num_classes: int | None = None
    recorded_arch: str | None = None
    stripped_prefix: str | None = None
    notes: list[str] = field(default_factory=list)
    source_key_for: Callable[[str], str | None] | None = None  # target key -> the source key expected to fill it
    extra: dict[str, Any] = field(default_factory=dict)

    def expected_source(self, target_key: str) -> str | None:
        return self.source_key_for(target_key) if self.source_key_for else None


class Source:
    """One codebase's checkpoints (see the module docstring)."""

    name: ClassVar[str]
    kind: ClassVar[str] = TORCH  # the file kind it reads
    summary: ClassVar[str]  # one line for --help and the README

    def detect(self, file: CheckpointFile) -> Detection | None:
        raise NotImplementedError

    def convert(self, file: CheckpointFile, *, arch: str | None, use_ema: bool = False) -> Conversion:
        raise NotImplementedError

    def detection(self, confidence: float, reason: str) -> Detection:
        return Detection(self.name, confidence, reason)


# ---- helpers the sources share --------------------------------------------------------------------------------
def strip_common_prefix(state: Mapping[str, Any], prefixes: Iterable[str] = ("module.", "_orig_mod.")
                        ) -> tuple[dict[str, Any], str | None]:
    """Drop a ``module.``/``_orig_mod.`` prefix carried by every key (DDP, torch.compile)."""
    stripped = None
    state = dict(state)
    for prefix in prefixes:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
            stripped = (stripped or "") + prefix
    return state, stripped


def tensor_dict(value: Any) -> bool:
    """Whether ``value`` is a non-empty dict of tensors (a state_dict)."""
    import torch

    return isinstance(value, dict) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def rename(state: Mapping[str, Any], target_of: Callable[[str], str | None], *,
           skip: Callable[[str], bool] = lambda key: False, to_float32: bool = True,
           where: str = "checkpoint") -> tuple[dict[str, Any], dict[str, str], list[str], list[str]]:
    """Apply name rules to every tensor: (tensors, origin, unmatched, skipped).

    Half-precision floats become float32 (exact), as apex O2 and MindSpore AMP leave some
    tensors in float16. Two source tensors landing on one target is an error naming both.
    """
    import numpy as np
    import torch

    tensors: dict[str, Any] = {}
    origin: dict[str, str] = {}
    unmatched, skipped = [], []
    for key, value in state.items():
        if skip(key):
            skipped.append(key)
            continue
        target = target_of(key)
        if target is None:
            unmatched.append(key)
            continue
        if target in tensors:
            raise InferKitError(f"{where}: tensors {origin[target]} and {key} both map onto {target}",
                                hint="the checkpoint holds a layer twice; is it two models in one file?")
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.ascontiguousarray(value))
        if to_float32 and isinstance(value, torch.Tensor) and value.dtype in (torch.float16, torch.bfloat16,
                                                                              torch.float64):
            value = value.float()
        tensors[target] = value
        origin[target] = key
    return tensors, origin, unmatched, skipped


def matches_any(patterns: Iterable[str]) -> Callable[[str], bool]:
    compiled = [re.compile(p) for p in patterns]
    return lambda key: any(p.search(key) for p in compiled)
