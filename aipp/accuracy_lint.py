"""Warnings for the AIPP mistakes ATC accepts but that silently cost accuracy.

Without a spec the checks are heuristics on the numbers (a ``var_reci`` that looks like ``std``
or ``1/std``, means on the 0..1 scale, a CSC switch without a matrix). With the model's
`PreprocessSpec` every constant, the channel order and the crop are compared with what the
spec implies, and the config is run through the numpy emulation on a test image and compared
with the spec's float preprocessing of the same bytes: the one number that says whether the
config is right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from infer_kit.aipp.config import DEFAULT_YUV2BGR, AippConfig, AippOp
from infer_kit.aipp.csc import identify_yuv_matrix
from infer_kit.aipp.issues import Issue
from infer_kit.errors import InferKitError
from infer_kit.spec import PreprocessSpec

# A config agrees with its spec when the emulated tensor is this close to the float one
# (float16 rounding of 0..255-scale values contributes up to ~0.004 after normalisation).
SPEC_TOLERANCE = 0.02


def _warn(op: AippOp, message: str, name: str | None = None) -> Issue:
    return Issue("warning", message, op.line_of(name) if name else op.line, name)


def _close(a: float, b: float, rel: float = 2e-3) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"


def lint_config(config: AippConfig, *, spec: PreprocessSpec | None = None) -> list[Issue]:
    """Warnings for every static block (the block for input 0 is compared with ``spec``)."""
    issues: list[Issue] = []
    for op in config.ops:
        if op.mode != "static" or op.input_format == "UNDEFINED":
            continue
        issues += lint_op(op, spec=spec if int(op.get("related_input_rank")) == 0 else None)
    return issues


def lint_op(op: AippOp, *, spec: PreprocessSpec | None = None) -> list[Issue]:
    heuristics = _lint_numbers(op) + _lint_csc(op)
    if spec is None:
        return heuristics
    exact = _lint_against_spec(op, spec)
    covered = {issue.field for issue in exact}
    return [issue for issue in heuristics if issue.field not in covered] + exact


def _lint_numbers(op: AippOp) -> list[Issue]:
    issues = []
    mins = op.min_chn()[:3]
    means = op.mean_chn()[:3]
    set_min = [op.is_set(f"min_chn_{i}") for i in range(3)]
    if any(set_min) and all(0 < v <= 1 for v in mins) and not any(means):
        issues.append(_warn(op, f"min_chn_0..2 = {_fmt(mins)} look like means on the 0..1 scale, but AIPP subtracts "
                            f"them from 0..255 pixels: use 255 * mean, e.g. {_fmt([255 * v for v in mins])}",
                            "min_chn_0"))
    for i in range(3):
        name = f"var_reci_chn_{i}"
        if not op.is_set(name):
            continue
        value = float(op.get(name))
        if 0.1 <= value < 1.0:
            issues.append(_warn(op, f"{name} = {value:g} looks like a std; AIPP multiplies by var_reci, which must be "
                                f"1 / (255 * std) = {1 / (255 * value):.6g}", name))
        elif 1.0 < value <= 64:
            issues.append(_warn(op, f"{name} = {value:g} scales 0..255 pixels up: it looks like 1 / std; use "
                                f"1 / (255 * std) = {value / 255:.6g}", name))
    both = [i for i in range(3) if means[i] and mins[i]]
    if both:
        i = both[0]
        issues.append(_warn(op, f"channel {i} subtracts both mean_chn_{i} = {means[i]} and min_chn_{i} = {mins[i]:g} "
                            f"(total {means[i] + mins[i]:g}); give the mean in one of them", f"mean_chn_{i}"))
    return issues


def _lint_csc(op: AippOp) -> list[Issue]:
    if not op.get("csc_switch") or op.csc_matrix_given():
        return []
    if op.input_format == "YUV420SP_U8":
        rows = " / ".join(",".join(map(str, row)) for row in DEFAULT_YUV2BGR)
        return [_warn(op, f"csc_switch is on with no matrix: ATC fills BT.601-narrow YUV->BGR ({rows}, input_bias "
                      "16,128,128): BGR output, and wrong for full-range (JPEG-decoded) data; give the matrix of "
                      "your data's standard ('infer-kit aipp generate --input-format YUV420SP_U8 --csc jpeg')",
                      "csc_switch")]
    return [_warn(op, "csc_switch is on with no matrix: ATC fills BT.601-narrow RGB->YUV, so the model receives YUV, "
                  "not RGB", "csc_switch")]


def _lint_against_spec(op: AippOp, spec: PreprocessSpec) -> list[Issue]:
    issues: list[Issue] = []
    issues += _lint_order(op, spec)
    issues += _lint_constants(op, spec)
    issues += _lint_crop(op, spec)
    if not any(issue.field and issue.field.startswith(("min_chn", "var_reci", "mean_chn")) for issue in issues):
        error = spec_deviation(op, spec)
        if error is not None and error > SPEC_TOLERANCE:
            issues.append(_warn(op, f"on a test image this config differs from the spec's float preprocessing "
                                f"({spec.describe()}) by up to {error:.3g} (float16 precision: < {SPEC_TOLERANCE})"))
    return issues


def _lint_order(op: AippOp, spec: PreprocessSpec) -> list[Issue]:
    want_bgr = spec.channel_order == "BGR"
    if op.input_format in ("RGB888_U8", "XRGB8888_U8") and not op.get("csc_switch"):
        swap = bool(op.get("rbuv_swap_switch"))
        if swap != want_bgr:
            return [_warn(op, f"rbuv_swap_switch is {str(swap).lower()} but the model wants {spec.channel_order} "
                          "planes and infer-kit's aipp-layout bins hold RGB bytes: set rbuv_swap_switch: "
                          f"{str(want_bgr).lower()}", "rbuv_swap_switch")]
    if op.input_format == "YUV420SP_U8" and op.get("csc_switch"):
        found = identify_yuv_matrix(op.csc_matrix(), op.input_bias())
        if found is not None and found[1] != spec.channel_order:
            return [_warn(op, f"the CSC matrix is {found[0]} YUV->{found[1]} but the model wants {spec.channel_order} "
                          "planes: exchange matrix rows 0 and 2", "matrix_r0c0")]
    return []


def _lint_constants(op: AippOp, spec: PreprocessSpec) -> list[Issue]:
    issues = []
    want_min = [255.0 * m for m in spec.planes(spec.mean)]
    want_var = [1.0 / (255.0 * s) for s in spec.planes(spec.std)]
    std = spec.planes(spec.std)
    have_min = [op.mean_chn()[i] + op.min_chn()[i] for i in range(3)]
    have_var = list(op.var_reci()[:3])
    reversed_ok = want_min != want_min[::-1] or want_var != want_var[::-1]
    if reversed_ok and all(_close(h, w, 5e-3) for h, w in zip(have_min, want_min[::-1], strict=True)) and not all(
            _close(h, w, 5e-3) for h, w in zip(have_min, want_min, strict=True)):
        issues.append(_warn(op, f"the means {_fmt(have_min)} are in reversed channel order for a "
                            f"{spec.channel_order} model: AIPP applies them after the channel swap, expected "
                            f"{_fmt(want_min)}", "min_chn_0"))
    elif not all(abs(h - w) <= 0.51 for h, w in zip(have_min, want_min, strict=True)):
        issues.append(_warn(op, f"the means (mean_chn + min_chn) {_fmt(have_min)} differ from the spec's 255 * mean "
                            f"{_fmt(want_min)}", "min_chn_0"))
    for i in range(3):
        name = f"var_reci_chn_{i}"
        have = have_var[i]
        if _close(have, want_var[i], 5e-3):
            continue
        if _close(have, std[i]):
            reason = "is the std itself"
        elif _close(have, 1.0 / std[i]):
            reason = "is 1 / std, missing the 1/255 of 0..255 pixels"
        elif _close(have, want_var[2 - i], 5e-3):
            reason = "belongs to the other end of the channel order"
        else:
            reason = "differs"
        issues.append(_warn(op, f"{name} = {have:.6g} {reason}; the spec needs 1 / (255 * std) = {want_var[i]:.6g}",
                            name))
    return issues


def _lint_crop(op: AippOp, spec: PreprocessSpec) -> list[Issue]:
    src = (int(op.get("src_image_size_h")), int(op.get("src_image_size_w")))
    if op.get("crop"):
        box = (int(op.get("load_start_pos_h")), int(op.get("load_start_pos_w")),
               int(op.get("crop_size_h")), int(op.get("crop_size_w")))
    else:
        box = (0, 0, src[0], src[1])
    side = spec.aipp_side
    offset = spec.aipp_crop[0] if spec.aipp_crop else 0
    want = (offset, offset, spec.crop, spec.crop)
    if src == (side, side) and box == want:
        return []
    if src == (spec.resize, spec.resize) and box == (spec.crop_offset, spec.crop_offset, spec.crop, spec.crop):
        return [_warn(op, f"the {spec.resize}x{spec.resize} square cropped {spec.crop}x{spec.crop} at "
                      f"({spec.crop_offset},{spec.crop_offset}) does not select the float layout's centre crop on "
                      f"every image: (resize - crop) = {spec.resize - spec.crop} is not a multiple of 4, so some "
                      "image sizes are shifted by one pixel; an AIPP config that reads the "
                      f"{spec.crop}x{spec.crop} crop itself without cropping is exact", "crop")]
    have = f"source {src[1]}x{src[0]}, crop {box[3]}x{box[2]} at ({box[1]},{box[0]})"
    bins = (f"{side}x{side} cropped {spec.crop}x{spec.crop} at ({offset},{offset})" if spec.aipp_crop
            else f"the {side}x{side} centre crop itself")
    return [_warn(op, f"crop geometry differs from the spec's centre crop: {have}; the spec's aipp-layout bins are "
                  f"{bins}", "crop" if op.is_set("crop") else None)]


def spec_deviation(op: AippOp, spec: PreprocessSpec) -> float | None:
    """Max |AIPP(test image) - float preprocessing(test image)|, for RGB888 configs shaped like the spec."""
    import numpy as np

    from infer_kit.aipp.reference import emulate_aipp

    if op.input_format != "RGB888_U8" or op.get("padding"):
        return None
    side = int(op.get("src_image_size_h"))
    if side != int(op.get("src_image_size_w")) or side not in (spec.resize, spec.aipp_side):
        return None
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    try:
        emulated = emulate_aipp(op, image, model_hw=(spec.crop, spec.crop))[0].astype(np.float32)
    except InferKitError:  # a config the emulation refuses is reported by validate, not here
        return None
    top = int(round((side - spec.crop) / 2))
    crop = image[top:top + spec.crop, top:top + spec.crop].astype(np.float32) / 255.0
    planes = (crop - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)
    if spec.channel_order == "BGR":
        planes = planes[..., ::-1]
    if emulated.shape != (3, spec.crop, spec.crop):
        return None
    return float(np.abs(emulated - planes.transpose(2, 0, 1)).max())
