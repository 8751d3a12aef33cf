"""``--from timm-0.4``: TResNet checkpoints of timm 0.4.5 (the TResNet seed) onto current timm ``tresnet_m``.

timm 0.4.5's ``train.py`` saves ``{'epoch', 'arch', 'state_dict', 'optimizer', 'version', 'args',
'metric'}`` (``args`` is an ``argparse.Namespace``: the one non-tensor class let through the
weights-only load). Its TResNet built each conv as ``Sequential(conv, norm)`` and an
anti-aliased one as ``Sequential(Sequential(conv, norm), blur)``; current timm has
``ConvNormAct(conv, bn, aa)``. Two layouts share those names:

* **InPlace-ABN** (timm 0.4.5 as published, trained on GPUs with mapillary's ``inplace_abn``):
  norms without ``num_batches_tracked``; InPlace-ABN scales by ``|weight| + 1e-5``, so the
  BatchNorm weight becomes that (what current timm's own filter does). Its LeakyReLU slopes
  (1e-3 in the blocks, 1e-2 in the stem) and reflect-padded blur are current timm's defaults.
* **the seed's own copy** (Ascend ModelZoo's TResNet, a modified timm 0.4.5): ``nn.BatchNorm2d``
  (with ``num_batches_tracked``), a LeakyReLU of slope **0.01 everywhere**, and a blur that pads
  with **zeros** (``F.conv2d(x, filt, stride=2, padding=1)``). The weights load as they are and
  the built model is patched to compute that: every LeakyReLU slope 0.01, every ``BlurPool2d``
  zero-padded. Without the patches the logits differ by up to 85 %.

``auto`` tells them apart by ``num_batches_tracked``.
"""

from __future__ import annotations

from typing import Any

from infer_kit.errors import InferKitError
from infer_kit.registry import create_model

from .base import CheckpointFile, Conversion, Detection, Patch, Source, rename, strip_common_prefix, tensor_dict
from .rules import Rules

RULES = Rules([
    ("body.conv1.0.weight", "body.conv1.conv.weight"),  # the stem conv (after SpaceToDepth)
    ("body.conv1.1.{bn}", "body.conv1.bn.{bn}"),
    ("body.layer{i}.{j}.conv{n}.0.0.weight", "body.layer{i}.{j}.conv{n}.conv.weight"),  # anti-aliased conv
    ("body.layer{i}.{j}.conv{n}.0.1.{bn}", "body.layer{i}.{j}.conv{n}.bn.{bn}"),
    ("body.layer{i}.{j}.conv{n}.0.weight", "body.layer{i}.{j}.conv{n}.conv.weight"),
    ("body.layer{i}.{j}.conv{n}.1.{bn}", "body.layer{i}.{j}.conv{n}.bn.{bn}"),
    ("body.layer{i}.{j}.downsample.{k}.0.weight", "body.layer{i}.{j}.downsample.{k}.conv.weight"),  # 0: avg pool
    ("body.layer{i}.{j}.downsample.{k}.1.{bn}", "body.layer{i}.{j}.downsample.{k}.bn.{bn}"),
    ("body.layer{i}.{j}.se.fc{n}.{wb}", "body.layer{i}.{j}.se.fc{n}.{wb}"),
    ("head.fc.{wb}", "head.fc.{wb}"),
])
MARKERS = ("body.conv1.0.weight", "body.layer1.0.conv1.0.weight", "head.fc.weight")
SEED_MARK = "body.conv1.1.num_batches_tracked"
IABN_EPS = 1e-5
TRESNET_M = {"layers": [3, 4, 11, 3], "width_factor": 1.0}
DEFAULT_ARCH = "tresnet_m"
SEED_SLOPE = 0.01


def leaky_relu_slope_001(model: Any) -> int:
    from torch import nn

    changed = 0
    for module in model.modules():
        if isinstance(module, nn.LeakyReLU) and module.negative_slope != SEED_SLOPE:
            module.negative_slope = SEED_SLOPE
            changed += 1
    return changed


def blur_zero_padding(model: Any) -> int:
    from timm.layers import BlurPool2d

    changed = 0
    for module in model.modules():
        if isinstance(module, BlurPool2d) and module.pad_mode != "constant":
            module.pad_mode = "constant"  # F.pad's zeros
            changed += 1
    return changed


SEED_PATCHES = (
    Patch("LeakyReLU slope 0.01 everywhere (the seed ignores timm's 1e-3)", leaky_relu_slope_001),
    Patch("anti-aliasing blur padded with zeros (the seed's F.conv2d padding=1)", blur_zero_padding),
)


class Timm04Source(Source):
    name = "timm-0.4"
    summary = "timm 0.4.5 TResNet (published InPlace-ABN or the seed's BatchNorm copy) -> current timm tresnet_m"

    def detect(self, file: CheckpointFile) -> Detection | None:
        state = _state(file.raw)
        if state is None or not set(MARKERS) <= set(state):
            return None
        layout = "the seed's BatchNorm copy" if SEED_MARK in state else "InPlace-ABN"
        return self.detection(0.9, f"TResNet in timm 0.4's Sequential names (body.conv1.0, conv1.1), {layout} "
                                   f"({'with' if SEED_MARK in state else 'no'} num_batches_tracked)")

    def convert(self, file: CheckpointFile, *, arch: str | None, use_ema: bool = False) -> Conversion:
        where = f"checkpoint {file.path}"
        state = _state(file.raw, use_ema=use_ema)
        if state is None or not set(MARKERS) <= set(state):
            raise InferKitError(f"{where} is not a timm 0.4 TResNet checkpoint (no body.conv1.0.weight, "
                                "body.layer1.0.conv1.0.weight, head.fc.weight)",
                                hint="other timm 0.4 models keep today's names: use --from pytorch (or auto)")
        state, stripped = strip_common_prefix(state)
        seed = SEED_MARK in state
        tensors, origin, unmatched, skipped = rename(state, RULES.target_of, where=where)
        notes = ["the EMA weights (state_dict_ema)"] if use_ema and tensor_dict(file.raw.get("state_dict_ema")) else []
        if not seed:
            for key in [k for k in tensors if k.endswith(".bn.weight")]:
                tensors[key] = tensors[key].abs() + IABN_EPS
            notes.append("InPlace-ABN weights converted to BatchNorm (|weight| + 1e-5)")
        recorded = file.raw.get("arch") if isinstance(file.raw, dict) and isinstance(file.raw.get("arch"), str) \
            else None
        classes = int(tensors["head.fc.weight"].shape[0]) if "head.fc.weight" in tensors else None
        build, variant = None, None
        if arch is None:
            arch = recorded or DEFAULT_ARCH
            geometry = _geometry(tensors)
            if arch == DEFAULT_ARCH and geometry is not None and geometry != TRESNET_M:
                variant = f"layers {geometry['layers']}, width factor {geometry['width_factor']:g}"
                build = _builder(geometry, classes or 1000)
        return Conversion(
            arch=arch, tensors=tensors, origin=origin, unmatched=unmatched, skipped=skipped,
            layout=f"timm 0.4 checkpoint, {'the seed BatchNorm' if seed else 'InPlace-ABN'} layout", build=build,
            variant=variant, patches=SEED_PATCHES if seed else (), num_classes=classes, recorded_arch=recorded,
            stripped_prefix=stripped, notes=notes, source_key_for=lambda key: " or ".join(RULES.sources_of(key))
            or None, extra={"epoch": file.raw["epoch"]} if isinstance(file.raw.get("epoch"), int) else {},
        )


def _state(raw: Any, *, use_ema: bool = False) -> dict[str, Any] | None:
    """The weights of a timm 0.4 checkpoint (with ``use_ema``, the saver's ``state_dict_ema`` when it holds one)."""
    if not isinstance(raw, dict):
        return None
    for candidate in ((raw.get("state_dict_ema") if use_ema else None), raw.get("state_dict"), raw):
        if tensor_dict(candidate):
            state, _ = strip_common_prefix(candidate)
            return state
    return None


def _geometry(tensors: dict[str, Any]) -> dict[str, Any] | None:
    import re

    layers = []
    for stage in range(1, 5):
        blocks = {int(m.group(1)) for k in tensors for m in [re.match(rf"body\.layer{stage}\.(\d+)\.", k)] if m}
        if not blocks:
            return None
        layers.append(max(blocks) + 1)
    stem = tensors.get("body.conv1.conv.weight")
    if stem is None:
        return None
    return {"layers": layers, "width_factor": int(stem.shape[0]) / 64}


def _builder(geometry: dict[str, Any], classes: int) -> Any:
    return lambda: create_model(DEFAULT_ARCH, num_classes=classes, layers=geometry["layers"],
                                width_factor=geometry["width_factor"])
