"""ATC's checks of an AIPP config, with ATC's wording.

Three layers reject a config on a real install, and each is reproduced here:

* GraphEngine's ``ValidateParams`` (mode and format set, no negative sizes) and its insert-op
  checks (one block per input: E10052);
* the Aipp operator's compile-time checks (``aipp_comm.py``: ranges, even YUV420SP geometry,
  padding <= 32, crop/padding that must produce the model's input H and W), reported by ATC as
  E81012 ``Compile op[aipp] failed, cause: ...``;
* the model: a block for an input the model does not have, a channel count AIPP cannot produce.

:func:`validate_config` returns every :class:`~infer_kit.aipp.issues.Issue`.
"""

from __future__ import annotations

from collections.abc import Sequence

from infer_kit.aipp.config import AippConfig, AippOp
from infer_kit.aipp.fields import FIELDS
from infer_kit.aipp.geometry import OUTPUT_CHANNELS
from infer_kit.aipp.issues import E_AIPP_COMPILE, E_AIPP_INVALID, Issue

# Formats the Aipp operator accepts on the Ascend 310/310P/910 families (aipp_comm.py).
ASCEND_FORMATS = ("YUV420SP_U8", "XRGB8888_U8", "NC1HWC0DI_FP16", "NC1HWC0DI_S8", "RGB888_U8", "YUV400_U8")
# AIPP output W after padding: 4096 on Atlas A2/A3 and 310B, 1080 on the other Atlas inference/training chips.
_PAD_W_4096 = ("Ascend910B", "Ascend910_", "Ascend310B")
_PAD_W_1080 = ("Ascend310", "Ascend610", "Ascend710", "Ascend910")

_NON_NEGATIVE = (
    "src_image_size_w", "src_image_size_h", "load_start_pos_w", "load_start_pos_h", "crop_size_w", "crop_size_h",
    "resize_output_w", "resize_output_h", "left_padding_size", "right_padding_size", "top_padding_size",
    "bottom_padding_size",
)


def _error(op: AippOp, message: str, name: str | None = None, code: str | None = E_AIPP_COMPILE) -> Issue:
    return Issue("error", message, op.line_of(name) if name else op.line, name, code)


def validate_config(config: AippConfig, *, inputs: Sequence[tuple[int | None, ...]] | None = None,
                    soc: str | None = None) -> list[Issue]:
    """All ATC rejections of ``config``; ``inputs`` is each model input's (C, H, W) when known."""
    issues: list[Issue] = []
    if not config.ops:
        issues.append(Issue("error", "the config has no aipp_op block", 1))
        return issues
    issues.extend(_check_positions(config, inputs))
    for op in config.ops:
        chw = None
        if inputs is not None and not op.explicit("related_input_name"):
            rank = int(op.get("related_input_rank"))
            chw = tuple(inputs[rank]) if rank < len(inputs) else None
        issues.extend(validate_op(op, model_chw=chw, soc=soc))
    return issues


def _check_positions(config: AippConfig, inputs: Sequence[tuple[int | None, ...]] | None) -> list[Issue]:
    issues = []
    named = [op for op in config.ops if op.explicit("related_input_name")]
    if named and len(named) != len(config.ops):
        issues.append(_error(named[0], "Can not both set related_input_name and related_input_rank! Please ensure "
                             "param is the same with the first aipp config(related_input_name)",
                             "related_input_name", E_AIPP_INVALID))
    seen: dict[object, AippOp] = {}
    for op in config.ops:
        key = op.explicit("related_input_name") or int(op.get("related_input_rank"))
        if key in seen:
            issues.append(_error(op, "Cannot insert aipp to the same position! Please ensure related_input_rank param "
                                 "is different in different aipp config (blocks at lines "
                                 f"{seen[key].line} and {op.line} both target input {key!r})", None, E_AIPP_INVALID))
        seen[key] = op
        rank = int(op.get("related_input_rank"))
        if inputs is not None and not op.explicit("related_input_name") and rank >= len(inputs):
            issues.append(_error(op, f"Can not find the data node by index {rank} (the model has {len(inputs)} "
                                 "input(s); related_input_rank is 0-based)", "related_input_rank", None))
    return issues


def validate_op(op: AippOp, *, model_chw: tuple[int | None, ...] | None = None, soc: str | None = None) -> list[Issue]:
    """ATC's checks of one block; geometry is checked against ``model_chw`` = (C, H, W) when given."""
    if op.mode == "undefined":
        return [_error(op, "When insert AIPP op, aipp_mode must be configured as static or dynamic", "aipp_mode",
                       None)]
    if op.mode == "dynamic":
        if int(op.get("max_src_image_size")) <= 0:
            return [_error(op, "for dynamic AIPP params, max_src_image_size must greater than 0",
                           "max_src_image_size", None)]
        return []
    if op.input_format == "UNDEFINED":
        return [_error(op, "Input format of AIPP conf is undefined", "input_format", None)]
    negative = [_error(op, f"{name} must not be configed smaller than 0", name, None)
                for name in _NON_NEGATIVE if int(op.get(name)) < 0]
    if negative:
        return negative
    issues = _check_format(op, soc)
    issues += _check_ranges(op)
    issues += _check_geometry(op, model_chw, soc)
    if model_chw is not None and model_chw[0] is not None:
        produced = OUTPUT_CHANNELS.get(op.input_format)
        if produced is not None and produced != model_chw[0]:
            issues.append(_error(op, f"input_format {op.input_format} gives {produced} channel(s) but the model "
                                 f"input has C={model_chw[0]}", "input_format", None))
    return issues


def _check_format(op: AippOp, soc: str | None) -> list[Issue]:
    issues = []
    fmt = op.input_format
    if fmt not in ASCEND_FORMATS:
        chip = soc or "Ascend310/310P/910"
        issues.append(_error(op, f"{chip} only support {', '.join(ASCEND_FORMATS)}, current input format is {fmt}",
                             "input_format"))
    if fmt == "YUV400_U8" and op.get("csc_switch"):
        issues.append(_error(op, "when input format is YUV400_U8, it doesn't make sense to convert to RGB, "
                             "csc_switch[1]", "csc_switch"))
    if op.get("resize"):
        issues.append(_error(op, "resize only support Hi3796CV300ES and Hi3796CV300CS", "resize"))
    return issues


def _check_ranges(op: AippOp) -> list[Issue]:
    issues = []
    csc = bool(op.get("csc_switch"))
    for spec in FIELDS:
        if not op.is_set(spec.name) or spec.low is None or spec.kind not in ("int32", "uint32", "float"):
            continue
        if spec.name.startswith(("matrix_", "input_bias_", "output_bias_")) and not csc:
            continue  # the operator checks CSC values only when CSC is on
        if spec.group == "geometry" and spec.kind == "int32" and spec.name not in ("src_image_size_w",
                                                                                  "src_image_size_h"):
            continue  # checked with the geometry, in the operator's wording
        value = op.get(spec.name)
        if not spec.in_range(value):
            issues.append(_error(op, f"{spec.name}[{_fmt(value)}] should be within{spec.describe_range()}", spec.name))
    return issues


def _check_geometry(op: AippOp, model_chw: tuple[int | None, ...] | None, soc: str | None) -> list[Issue]:
    issues: list[Issue] = []
    fmt = op.input_format
    crop, padding, resize = bool(op.get("crop")), bool(op.get("padding")), bool(op.get("resize"))
    src_w, src_h = int(op.get("src_image_size_w")), int(op.get("src_image_size_h"))
    model_h = model_chw[1] if model_chw is not None else None
    model_w = model_chw[2] if model_chw is not None else None
    pads = {side: int(op.get(f"{side}_padding_size")) for side in ("left", "right", "top", "bottom")}

    if crop or padding or resize:
        if src_w <= 0 or src_h <= 0:
            issues.append(_error(op, f"when crop[{int(crop)}] or resize[{int(resize)}] or padding[{int(padding)}] is "
                                 f"enable, src_image_size_w[{src_w}] and src_image_size_h[{src_h}] should be greater "
                                 "than 0", "src_image_size_w"))
            return issues
        if fmt == "YUV420SP_U8" and (src_w % 2 or src_h % 2):
            issues.append(_error(op, f"src_image_size_w[{src_w}] and src_image_size_h[{src_h}] should be even for "
                                 "YUV420SP_U8", "src_image_size_w"))
    if crop:
        issues += _check_crop(op, src_w, src_h, model_h, model_w, padding, resize)
    limit = _padded_width_limit(soc)
    if padding and model_w is not None and limit is not None and model_w > limit:
        issues.append(_error(op, f"after padding, aipp output W[{model_w}] should be less than or eaqual to {limit}",
                             "padding"))
    if padding and any(size > 32 for size in pads.values()):
        issues.append(_error(op, f"The max padding size is 32, and left_padding_size is {pads['left']}, "
                             f"right_padding_size is {pads['right']}, top_padding_size is {pads['top']}, "
                             f"bottom_padding_size is {pads['bottom']}", _largest_pad(pads)))
    if model_h is None or model_w is None:
        if not (crop or padding or resize) and fmt == "YUV420SP_U8" and (src_w % 2 or src_h % 2):
            issues.append(_error(op, f"src_image_size_h[{src_h}] and src_image_size_w[{src_w}] should be even for "
                                 "YUV420SP_U8", "src_image_size_w"))
        return issues
    crop_w = int(op.get("crop_size_w")) or model_w
    crop_h = int(op.get("crop_size_h")) or model_h
    out_w = f"should be equal to output W[{model_w}]"
    out_h = f"should be equal to output H[{model_h}]"
    side_w = f"left_padding_size[{pads['left']}] + right_padding_size[{pads['right']}]"
    side_h = f"top_padding_size[{pads['top']}] + bottom_padding_size[{pads['bottom']}]"
    if crop and not resize and not padding and (crop_w != model_w or crop_h != model_h):
        issues.append(_error(op, "when crop is enable, resize is disable and padding is disable, "
                             f"crop_size_w[{crop_w}] {out_w} and crop_size_h[{crop_h}] {out_h}", "crop_size_w"))
    if crop and not resize and padding and (crop_w + pads["left"] + pads["right"] != model_w
                                            or crop_h + pads["top"] + pads["bottom"] != model_h):
        issues.append(_error(op, "when crop is enable, resize is disable and padding is enable, "
                             f"crop_size_w[{crop_w}] + {side_w} {out_w} and crop_size_h[{crop_h}] + {side_h} {out_h}",
                             "crop_size_w"))
    if not crop and not resize and padding and (src_w + pads["left"] + pads["right"] != model_w
                                                or src_h + pads["top"] + pads["bottom"] != model_h):
        issues.append(_error(op, "when crop is disable, resize is disable, padding is enable, "
                             f"src_image_size_w[{src_w}] + {side_w} {out_w} and src_image_size_h[{src_h}] + {side_h} "
                             f"{out_h}", "padding"))
    if not (crop or resize or padding):
        if src_h and src_h != model_h:
            issues.append(_error(op, f"input H[{model_h}] of network should be equal to src_image_size_h[{src_h}]",
                                 "src_image_size_h"))
        if src_w and src_w != model_w:
            issues.append(_error(op, f"input W[{model_w}] of network should be equal to src_image_size_w[{src_w}]",
                                 "src_image_size_w"))
        if fmt == "YUV420SP_U8" and (model_h % 2 or model_w % 2):
            issues.append(_error(op, f"src_image_size_h[{model_h}] and src_image_size_w[{model_w}] should be even "
                                 "for YUV420SP_U8", "src_image_size_w"))
    return issues


def _check_crop(op: AippOp, src_w: int, src_h: int, model_h: int | None, model_w: int | None,
                padding: bool, resize: bool) -> list[Issue]:
    issues = []
    top, left = int(op.get("load_start_pos_h")), int(op.get("load_start_pos_w"))
    size_h, size_w = int(op.get("crop_size_h")), int(op.get("crop_size_w"))
    for name, value, high in (("load_start_pos_w", left, 4095), ("load_start_pos_h", top, 4095),
                              ("crop_size_w", size_w, 4096), ("crop_size_h", size_h, 4096)):
        if value > high:
            issues.append(_error(op, f"{name}[{value}] should be within[0, {high}]", name))
    if (size_h == 0 or size_w == 0) and (padding or resize):
        issues.append(_error(op, f"when crop_size_h[{size_h}] is equal to 0 or crop_size_w[{size_w}] is equal to 0, "
                             f"resize[{int(resize)}] and padding[{int(padding)}] should be not enable", "crop_size_w"))
        return issues
    size_h = size_h or (model_h or 0)
    size_w = size_w or (model_w or 0)
    if size_h and top + size_h > src_h:
        issues.append(_error(op, f"when crop is enable, load_start_pos_h[{top}] + crop_size_h[{size_h}] should be "
                             f"less than or equal to src_image_size_h[{src_h}]", "crop_size_h"))
    if size_w and left + size_w > src_w:
        issues.append(_error(op, f"when crop is enable, load_start_pos_w[{left}] + crop_size_w[{size_w}] should be "
                             f"less than or equal to src_image_size_w[{src_w}]", "crop_size_w"))
    if op.input_format == "YUV420SP_U8" and any(v % 2 for v in (top, left, size_h, size_w)):
        issues.append(_error(op, f"when input_format is YUV420SP_U8, load_start_pos_h[{top}], "
                             f"load_start_pos_w[{left}], crop_size_h[{size_h}] and crop_size_w[{size_w}] must be even",
                             "load_start_pos_w"))
    return issues


def _padded_width_limit(soc: str | None) -> int | None:
    if soc is None:
        return None
    if soc.startswith(_PAD_W_4096):
        return 4096
    return 1080 if soc.startswith(_PAD_W_1080) else None


def _largest_pad(pads: dict[str, int]) -> str:
    return f"{max(pads, key=lambda side: pads[side])}_padding_size"


def _fmt(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
