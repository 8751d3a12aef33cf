"""Checkpoint sources: which codebase wrote a file, and how its tensors become a timm model's.

``--from auto`` reads the file once (a MindSpore ``.ckpt`` by its first bytes, anything else
with torch's weights-only loader), asks every source of that file kind to :meth:`detect` it,
and takes the most confident, saying which and why. The rules, in order of confidence:

=====================  ==============================================================  ==========
source                 what it looks for                                                confidence
=====================  ==============================================================  ==========
mindspore              the file starts like a MindSpore protobuf checkpoint             1.0
pycls                  ``model_state`` with ``stem.conv``, ``s1.b1.dwise``, ``head.fc``  0.95
timm-0.4               ``body.conv1.0``, ``body.layer1.0.conv1.0``, ``head.fc`` (TResNet)  0.9
efficientnet-pytorch   ``_conv_stem``, ``_blocks.0._depthwise_conv``, ``_fc``             0.9
pytorch                any state_dict or training checkpoint (today's names)            0.5
=====================  ==============================================================  ==========
"""

from __future__ import annotations

from infer_kit.errors import InferKitError

from .base import MINDSPORE, TORCH, CheckpointFile, Conversion, Detection, Patch, Source, read_checkpoint_file
from .effnet_pytorch import EfficientNetPyTorchSource
from .mindspore import MindSporeSource
from .pycls import PyclsSource
from .pytorch import PyTorchSource, extract_state_dict
from .timm04 import Timm04Source

SOURCES: dict[str, Source] = {s.name: s for s in (
    PyTorchSource(), MindSporeSource(), PyclsSource(), Timm04Source(), EfficientNetPyTorchSource())}
AUTO = "auto"
SOURCE_NAMES = (AUTO, *SOURCES)


def get_source(name: str) -> Source:
    if name not in SOURCES:
        raise InferKitError(f"unknown checkpoint source {name!r}", hint=f"use one of {', '.join(SOURCE_NAMES)}")
    return SOURCES[name]


def choose_source(file: CheckpointFile, name: str = AUTO) -> tuple[Source, Detection]:
    """The source for ``file``: the one named, or with ``auto`` the most confident detection."""
    if name != AUTO:
        source = get_source(name)
        if source.kind != file.kind:
            what = "a MindSpore .ckpt" if file.kind == MINDSPORE else "a torch file"
            raise InferKitError(f"checkpoint {file.path} is {what}, not what --from {name} reads",
                                hint=auto_would_choose(file, name)
                                or ("use --from mindspore (or auto)" if file.kind == MINDSPORE else "use --from auto"))
        detected = source.detect(file)
        return source, detected or Detection(name, 0.0, "chosen with --from")
    best = _best_detection(file)
    if best is None:  # nothing recognised: the pytorch source's own error says what the file holds
        SOURCES["pytorch"].convert(file, arch=None)
        raise InferKitError(f"checkpoint {file.path}: no source recognises it")  # pragma: no cover
    return SOURCES[best.source], best


def auto_would_choose(file: CheckpointFile, given: str) -> str | None:
    """A hint when ``--from auto`` would read ``file`` with another torch source than ``given`` (else None)."""
    best = _best_detection(file) if file.kind == TORCH else None
    if best is None or best.source == given:
        return None
    return f"--from auto reads it as {best.source} ({best.reason})"


def _best_detection(file: CheckpointFile) -> Detection | None:
    found = [d for s in SOURCES.values() if s.kind == file.kind for d in [s.detect(file)] if d is not None]
    return max(found, key=lambda d: d.confidence) if found else None


__all__ = [
    "AUTO", "MINDSPORE", "SOURCES", "SOURCE_NAMES", "TORCH", "CheckpointFile", "Conversion", "Detection", "Patch",
    "Source", "auto_would_choose", "choose_source", "extract_state_dict", "get_source", "read_checkpoint_file",
]
