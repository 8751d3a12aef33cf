"""``--from pycls``: facebookresearch/pycls EfficientNet (the EfficientNet-B3 seed) onto timm ``efficientnet_b3``.

pycls saves ``{'epoch', 'model_state', 'optimizer_state', 'cfg'}`` (``cfg`` is the YAML of its
config). Its ``EffNet`` and timm's ``efficientnet_b3`` compute the same function: symmetric
``(k - 1) // 2`` padding, SiLU, BatchNorm eps 1e-5, SE of a quarter of the block's input width
with biases, and the same widths, depths and kernels (B3: stem 40, stages
``2 3 3 5 5 6 2`` blocks of width ``24 32 48 96 136 232 384``, head 1536); only the names differ.
pycls numbers stages and blocks from 1 (``s2.b1``), timm from 0 (``blocks.1.0``). A block
without an expansion conv (stage 1, expansion 1) is timm's depthwise-separable block, whose
norms are numbered differently. The seed trains with apex O2, which stores conv and linear
weights in float16: they are widened to float32 (exact). Input: the seed feeds BGR planes, as
the registry's ``efficientnet_b3`` spec says.
"""

from __future__ import annotations

import re
from typing import Any

from infer_kit.errors import InferKitError
from infer_kit.registry import get_model

from .base import CheckpointFile, Conversion, Detection, Source, rename, strip_common_prefix, tensor_dict
from .effnet import EFFICIENTNET_STRIDES, Geometry, Stage
from .rules import Rules

STEM_AND_HEAD = Rules([
    ("stem.conv.weight", "conv_stem.weight"),
    ("stem.bn.{bn}", "bn1.{bn}"),
    ("head.conv.weight", "conv_head.weight"),
    ("head.conv_bn.{bn}", "bn2.{bn}"),
    ("head.fc.{wb}", "classifier.{wb}"),
])
# A block with an expansion conv -> timm InvertedResidual.
EXPANDED = Rules([
    ("s{S}.b{B}.exp.weight", "blocks.{S-1}.{B-1}.conv_pw.weight"),
    ("s{S}.b{B}.exp_bn.{bn}", "blocks.{S-1}.{B-1}.bn1.{bn}"),
    ("s{S}.b{B}.dwise.weight", "blocks.{S-1}.{B-1}.conv_dw.weight"),
    ("s{S}.b{B}.dwise_bn.{bn}", "blocks.{S-1}.{B-1}.bn2.{bn}"),
    ("s{S}.b{B}.se.f_ex.0.{wb}", "blocks.{S-1}.{B-1}.se.conv_reduce.{wb}"),
    ("s{S}.b{B}.se.f_ex.2.{wb}", "blocks.{S-1}.{B-1}.se.conv_expand.{wb}"),
    ("s{S}.b{B}.lin_proj.weight", "blocks.{S-1}.{B-1}.conv_pwl.weight"),
    ("s{S}.b{B}.lin_proj_bn.{bn}", "blocks.{S-1}.{B-1}.bn3.{bn}"),
])
# A block without one (expansion 1) -> timm DepthwiseSeparableConv.
DEPTHWISE = Rules([
    ("s{S}.b{B}.dwise.weight", "blocks.{S-1}.{B-1}.conv_dw.weight"),
    ("s{S}.b{B}.dwise_bn.{bn}", "blocks.{S-1}.{B-1}.bn1.{bn}"),
    ("s{S}.b{B}.se.f_ex.0.{wb}", "blocks.{S-1}.{B-1}.se.conv_reduce.{wb}"),
    ("s{S}.b{B}.se.f_ex.2.{wb}", "blocks.{S-1}.{B-1}.se.conv_expand.{wb}"),
    ("s{S}.b{B}.lin_proj.weight", "blocks.{S-1}.{B-1}.conv_pw.weight"),
    ("s{S}.b{B}.lin_proj_bn.{bn}", "blocks.{S-1}.{B-1}.bn2.{bn}"),
])
BLOCK = re.compile(r"^s(\d+)\.b(\d+)\.")
TARGET_BLOCK = re.compile(r"^blocks\.(\d+)\.(\d+)\.")
MARKERS = ("stem.conv.weight", "s1.b1.dwise.weight", "head.fc.weight")
# timm efficientnet_b3, as pycls's EN-B3 config describes it.
B3 = Geometry(tuple(Stage(d, k, s, e, w, 0.25) for d, k, s, e, w in zip(
    (2, 3, 3, 5, 5, 6, 2), (3, 3, 5, 3, 5, 5, 3), EFFICIENTNET_STRIDES, (1, 6, 6, 6, 6, 6, 6),
    (24, 32, 48, 96, 136, 232, 384), strict=True)), stem=40, head=1536)
DEFAULT_ARCH = "efficientnet_b3"


class PyclsSource(Source):
    name = "pycls"
    summary = "facebookresearch/pycls EfficientNet ('model_state'; the EfficientNet-B3 seed) -> timm efficientnet_b3"

    def detect(self, file: CheckpointFile) -> Detection | None:
        state = _model_state(file.raw)
        if state is None:
            return None
        state, _ = strip_common_prefix(state)
        if not set(MARKERS) <= set(state):
            return None
        return self.detection(0.95, "'model_state' holds pycls EffNet names (stem.conv, s1.b1.dwise, head.fc)")

    def convert(self, file: CheckpointFile, *, arch: str | None, use_ema: bool = False) -> Conversion:
        where = f"checkpoint {file.path}"
        state = _model_state(file.raw)
        if state is None:
            raise InferKitError(f"{where} is not a pycls checkpoint (no 'model_state' of tensors)",
                                hint="use --from auto")
        if arch is not None and get_model(arch).arch.startswith("tf_"):  # same names, TensorFlow padding
            raise InferKitError(f"{where} is a pycls EffNet, and pycls's EffNet pads symmetrically with BatchNorm eps "
                                f"1e-5; --arch {arch} (timm {get_model(arch).arch}) pads like TensorFlow and would "
                                "load the weights but compute something else",
                                hint="use an efficientnet_* --arch (efficientnet_b3 for the seed), or none")
        state, stripped = strip_common_prefix(state)
        expanded = {m.groups() for k in state for m in [BLOCK.match(k)] if m and k.endswith(".exp.weight")}
        present = {m.groups() for k in state for m in [BLOCK.match(k)] if m}
        expanded_stages = {stage for stage, _ in expanded}

        def target_of(key: str) -> str | None:
            block = BLOCK.match(key)
            if block is None:
                return STEM_AND_HEAD.target_of(key)
            return (EXPANDED if block.groups() in expanded else DEPTHWISE).target_of(key)

        def source_of(target: str) -> str | None:
            block = TARGET_BLOCK.match(target)
            if block is None:
                return STEM_AND_HEAD.source_of(target)
            stage, index = (str(int(g) + 1) for g in block.groups())
            if (stage, index) in present:
                kind = EXPANDED if (stage, index) in expanded else DEPTHWISE
            else:  # a block the file lacks: the kind of its stage's blocks (an EfficientNet stage has one kind)
                kind = EXPANDED if stage in expanded_stages else DEPTHWISE
            return kind.source_of(target)

        tensors, origin, unmatched, skipped = rename(state, target_of, where=where)
        half = sum(1 for v in state.values() if getattr(v, "dtype", None) is not None and "float16" in str(v.dtype))
        notes = [f"{half} float16 tensor(s) (apex O2) widened to float32"] if half else []
        config = _config(file.raw.get("cfg"))
        classes = int(tensors["classifier.weight"].shape[0]) if "classifier.weight" in tensors else None
        build, variant = None, None
        if arch is None:
            geometry = _geometry(state, expanded, config)
            arch = DEFAULT_ARCH
            if geometry is not None and geometry != B3:
                variant = f"pycls EffNet {geometry.describe()}"
                eps = float((config.get("BN") or {}).get("EPS", 1e-5))
                build = _builder(geometry, classes or 1000, eps)
        return Conversion(
            arch=arch, tensors=tensors, origin=origin, unmatched=unmatched, skipped=skipped,
            layout="pycls checkpoint {'model_state', 'optimizer_state', 'epoch', 'cfg'}", build=build,
            variant=variant, num_classes=classes, stripped_prefix=stripped, notes=notes, source_key_for=source_of,
            extra={"epoch": file.raw["epoch"]} if isinstance(file.raw.get("epoch"), int) else {},
        )


def _builder(geometry: Geometry, classes: int, eps: float) -> Any:
    return lambda: geometry.build(num_classes=classes, act="silu", bn_eps=eps, pad_type="")


def _model_state(raw: Any) -> dict[str, Any] | None:
    if isinstance(raw, dict) and tensor_dict(raw.get("model_state")):
        return raw["model_state"]
    return None


def _config(text: Any) -> dict[str, Any]:
    """pycls's config (the YAML string it saves), or {} when absent or unreadable."""
    if not isinstance(text, str):
        return {}
    try:
        import yaml

        loaded = yaml.safe_load(text)
    except Exception:  # a damaged config only costs the strides; the weights decide the rest
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _geometry(state: dict[str, Any], expanded: set[tuple[str, str]], config: dict[str, Any]) -> Geometry | None:
    """The EffNet read off the tensors (strides from the config's EN.STRIDES, else EfficientNet's)."""
    blocks: dict[int, int] = {}
    for key in state:
        match = BLOCK.match(key)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            blocks[stage] = max(blocks.get(stage, 0), block)
    strides = (config.get("EN") or {}).get("STRIDES") or EFFICIENTNET_STRIDES
    if any(stage not in blocks for stage in range(1, len(strides) + 1)) or "stem.conv.weight" not in state:
        return None  # stages beyond the config's are left to the strict load to name
    stages = []
    width_in = int(state["stem.conv.weight"].shape[0])
    try:
        for stage in range(1, len(strides) + 1):
            first = f"s{stage}.b1."
            width = int(state[first + "lin_proj.weight"].shape[0])
            kernel = int(state[first + "dwise.weight"].shape[-1])
            expansion = int(state[first + "exp.weight"].shape[0]) // width_in if (str(stage), "1") in expanded else 1
            se = state.get(first + "se.f_ex.0.weight")
            se_ratio = round(int(se.shape[0]) / width_in, 4) if se is not None else None
            stages.append(Stage(blocks[stage], kernel, int(strides[stage - 1]), expansion, width, se_ratio))
            width_in = width
        head = int(state["head.conv.weight"].shape[0])
    except KeyError:
        return None  # a block without its main tensors: the strict load names what is missing
    return Geometry(tuple(stages), int(state["stem.conv.weight"].shape[0]), head)

