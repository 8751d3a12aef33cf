"""``--from mindspore``: the ResNeSt-50 seed's MindSpore ``.ckpt`` onto timm ``resnest50d``.

The seed's network (mindspore-ai/models ``research/cv/ResNeSt50/src/models``) and timm's
``resnest50d`` have the same structure and the same tensors, with these differences, each
checked against MindSpore's own forward pass (max |diff| 3.7e-4 on logits of magnitude 1,700
for the full model, see the README):

* names: BatchNorm ``gamma/beta/moving_mean/moving_variance``; the split-attention conv is a
  ``GroupConv`` holding one conv per radix group (``conv2.conv.convs.0`` and ``.1``), which is
  timm's one grouped conv (``groups=2``) with the two weights concatenated on the output axis;
  ``fc1``/``fc2`` are ``GroupConv``\\ s of one group (``conv2.fc1.convs.0``);
* ``fc1``/``fc2`` have **no bias** in MindSpore (``GroupConv``'s default) where timm has one: the
  biases are filled with zeros, which makes the two functions equal;
* the stem's max pool is an explicit zero ``Pad(1)`` then a 3x3/2 ``valid`` pool; after a ReLU
  (values >= 0) that equals PyTorch's ``MaxPool2d(3, 2, padding=1)``. The anti-aliasing pool
  (``avd``) is zero ``Pad(1)`` + ``AvgPool2d(3, 2)``: PyTorch's ``count_include_pad=True``, as
  timm's. No ``pad_mode="same"`` pooling occurs, so TensorFlow-style asymmetric padding does not
  arise. The avg-down shortcut pool is ``AvgPool2d(2, 2)`` where timm uses ``ceil_mode=True,
  count_include_pad=False``: equal on even feature maps, the only ones MindSpore's network
  accepts (its global pool is an ``AvgPool2d`` of the map's size, so its input side must be a
  multiple of 32 and square; timm takes any size);
* the attention width is ``max(in * radix // 4, 32)`` in MindSpore and
  ``make_divisible(in * radix / 4, 8, min 32)`` in timm: equal for the standard widths (the
  strict shape check would name any layer where they differ).

A MindSpore *training* checkpoint also holds the optimizer's ``moments.*`` and scalars such as
``learning_rate`` and ``global_step``: skipped.
"""

from __future__ import annotations

import re
from typing import Any

from infer_kit.errors import InferKitError
from infer_kit.registry import create_model

from .base import MINDSPORE, CheckpointFile, Conversion, Detection, Source, matches_any, rename
from .rules import Rules

RULES = Rules([
    ("conv1.0.weight", "conv1.0.weight"),  # the deep stem's three 3x3 convs (Sequential 0, 3, 6; 1 and 4 are
    ("conv1.3.weight", "conv1.3.weight"),  # BatchNorms, under the rules below)
    ("conv1.6.weight", "conv1.6.weight"),
    ("layer{i}.{j}.conv1.weight", "layer{i}.{j}.conv1.weight"),
    ("layer{i}.{j}.conv3.weight", "layer{i}.{j}.conv3.weight"),
    ("layer{i}.{j}.downsample.1.weight", "layer{i}.{j}.downsample.1.weight"),  # 0 is the avg-down pool
    ("layer{i}.{j}.conv2.fc{n}.convs.0.weight", "layer{i}.{j}.conv2.fc{n}.weight"),  # a GroupConv of one group
    ("fc.{wb}", "fc.{wb}"),
    ("{rest}.gamma", "{rest}.weight"),  # every BatchNorm
    ("{rest}.beta", "{rest}.bias"),
    ("{rest}.moving_mean", "{rest}.running_mean"),
    ("{rest}.moving_variance", "{rest}.running_var"),
])
# The split-attention conv: one conv per radix group, concatenated on the output axis in group order.
SPLIT_CONV = Rules([("layer{i}.{j}.conv2.conv.convs.{k}.weight", "layer{i}.{j}.conv2.conv.weight")])
# The blocks whose split-attention fc1/fc2 get zero biases (MindSpore's have none).
SPLIT_BLOCK = re.compile(r"^(layer\d+\.\d+)\.conv2\.")
# What a training checkpoint (ModelCheckpoint of Model.train) holds besides the network.
OPTIMIZER_STATE = (
    r"^moments\.", r"^(accum|adam_m|adam_v|moment1|moment2)\.",
    r"^(global_step|learning_rate|momentum|scale_sense|current_iterator_step|last_overflow_iterator_step|"
    r"epoch_num|step_num|beta1_power|beta2_power)$",
)
MARKERS = ("conv1.0.weight", "layer1.0.conv2.conv.convs.0.weight", "fc.weight")
RESNEST50 = {"layers": [3, 4, 6, 3], "stem_width": 32, "channels": [64, 128, 256, 512]}
DEFAULT_ARCH = "resnest50"


class MindSporeSource(Source):
    name = "mindspore"
    kind = MINDSPORE
    summary = "MindSpore .ckpt of the ResNeSt-50 seed (read without MindSpore) -> timm resnest50d"

    def detect(self, file: CheckpointFile) -> Detection | None:
        if file.kind != MINDSPORE:
            return None
        names = file.raw.tensors
        what = "ResNeSt names (conv1.0, layer1.0.conv2.conv.convs.0, fc)" if set(MARKERS) <= set(names) else \
            "no ResNeSt names"
        return self.detection(1.0, f"a MindSpore protobuf checkpoint ({len(names)} tensors, {what})")

    def convert(self, file: CheckpointFile, *, arch: str | None, use_ema: bool = False) -> Conversion:
        where = f"MindSpore checkpoint {file.path}"
        import numpy as np
        import torch

        state: dict[str, Any] = file.raw.tensors
        split: dict[str, list[tuple[int, str]]] = {}
        for key in state:
            found = SPLIT_CONV.match(key)
            if found:
                split.setdefault(found[0], []).append((int(found[1]["k"]), key))
        in_split = {key for parts in split.values() for _, key in parts}
        tensors, origin, unmatched, skipped = rename(
            {k: v for k, v in state.items() if k not in in_split}, RULES.target_of,
            skip=matches_any(OPTIMIZER_STATE), where=where)
        for target, parts in split.items():
            parts.sort()
            if [k for k, _ in parts] != list(range(len(parts))):
                raise InferKitError(f"{where}: the radix groups of {target} are {[key for _, key in parts]}, "
                                    "not numbered 0..n-1")
            tensors[target] = torch.from_numpy(np.concatenate([state[key] for _, key in parts], axis=0)).float()
            origin[target] = " + ".join(key for _, key in parts)
        for block in sorted({m.group(1) for k in tensors for m in [SPLIT_BLOCK.match(k)] if m}):
            for fc, width_of in (("fc1", "bn1"), ("fc2", "bn0")):  # the widths: the BatchNorm after each
                norm = tensors.get(f"{block}.conv2.{width_of}.weight")
                if norm is not None:
                    tensors[f"{block}.conv2.{fc}.bias"] = torch.zeros(norm.shape[0])
                    origin[f"{block}.conv2.{fc}.bias"] = "zeros (MindSpore's fc1/fc2 have no bias)"
        build, variant = None, None
        classes = int(tensors["fc.weight"].shape[0]) if "fc.weight" in tensors else None
        if arch is None:
            arch = DEFAULT_ARCH
            geometry = _geometry(tensors, split)
            if geometry is not None and geometry != RESNEST50:
                variant = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in geometry.items())
                build = _builder(geometry, classes or 1000)
        notes = [f"{len(split)} split-attention convs joined from their radix groups, "
                 f"{sum(1 for o in origin.values() if o.startswith('zeros'))} fc1/fc2 biases set to zero"]
        if skipped:
            notes.append(f"{len(skipped)} optimizer/bookkeeping entries skipped (moments.*, learning_rate, ...)")
        if not file.raw.crc_checked:
            notes.append("no CRC32 trailer (saved without crc_check): integrity not verifiable")
        return Conversion(
            arch=arch, tensors=tensors, origin=origin, unmatched=unmatched, skipped=skipped,
            layout="MindSpore checkpoint" + (" (CRC32 checked)" if file.raw.crc_checked else ""), build=build,
            variant=variant, num_classes=classes, notes=notes, source_key_for=_source_of,
        )


def _source_of(target: str) -> str | None:
    if re.search(r"\.conv2\.fc[12]\.bias$", target):
        return None
    return SPLIT_CONV.source_of(target) or RULES.source_of(target)


def _geometry(tensors: dict[str, Any], split: dict[str, list[tuple[int, str]]]) -> dict[str, Any] | None:
    """Depths, stem width and stage widths read off the tensors (None: not a ResNeSt layout)."""
    layers, channels = [], []
    for stage in range(1, 5):
        blocks = {int(m.group(1)) for k in tensors for m in [re.match(rf"layer{stage}\.(\d+)\.", k)] if m}
        if not blocks or f"layer{stage}.0.conv1.weight" not in tensors or "conv1.0.weight" not in tensors:
            return None
        layers.append(max(blocks) + 1)
        channels.append(int(tensors[f"layer{stage}.0.conv1.weight"].shape[0]))
    radix = {len(parts) for parts in split.values()}
    if len(radix) == 1 and radix != {2}:  # uneven groups (a conv missing) are left to the strict shape check
        raise InferKitError(f"the checkpoint's split-attention convs have radix {sorted(radix)}",
                            hint="infer-kit maps the ResNeSt seed's radix 2 (ResNeSt-50) only")
    return {"layers": layers, "stem_width": int(tensors["conv1.0.weight"].shape[0]), "channels": channels}


def _builder(geometry: dict[str, Any], classes: int) -> Any:
    return lambda: create_model(DEFAULT_ARCH, num_classes=classes, layers=geometry["layers"],
                                stem_width=geometry["stem_width"], channels=tuple(geometry["channels"]))
