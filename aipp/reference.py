"""The AIPP arithmetic in numpy, step by step in ATC's order: the reference the ONNX emulation matches.

``swap -> crop -> [YUV420SP chroma up-sampling] -> CSC (integer matrix, >> 8) -> DTC
((x - mean_chn - min_chn) * var_reci with float16 parameters) -> padding -> float16 NCHW``.

The UNVERIFIED behaviours (shift rounding, saturation, chroma up-sampling, DTC precision) follow
an :class:`~infer_kit.aipp.assumptions.Assumptions` value.
"""

from __future__ import annotations

import numpy as np

from infer_kit.aipp.assumptions import DEFAULT_ASSUMPTIONS, Assumptions
from infer_kit.aipp.config import AippOp
from infer_kit.aipp.geometry import Geometry, resolve_geometry, source_shape
from infer_kit.aipp.params import channel_permutation, csc_matrix_int32, dtc_constants
from infer_kit.errors import InferKitError


def emulate_aipp(op: AippOp, images: np.ndarray, *, model_hw: tuple[int, int] | None = None,
                 assumptions: Assumptions = DEFAULT_ASSUMPTIONS) -> np.ndarray:
    """Apply a static ``aipp_op`` to uint8 source images; returns float16 ``(N, C, H, W)``.

    ``images`` is one image or a batch in the source layout of :func:`source_shape`
    (RGB888 ``(H, W, 3)``, XRGB8888 ``(H, W, 4)``, YUV400 ``(H, W, 1)``, YUV420SP NV12
    ``(H*3/2, W, 1)``).
    """
    if op.mode != "static":
        raise InferKitError(f"only static AIPP can be emulated (aipp_mode is {op.mode})")
    geometry = resolve_geometry(op, model_hw)
    expected = source_shape(op, geometry)
    data = np.asarray(images)
    if data.ndim == len(expected):
        data = data[None]
    if data.dtype != np.uint8 or tuple(data.shape[1:]) != expected:
        raise InferKitError(
            f"AIPP source must be uint8 {'x'.join(map(str, expected))} per image, got {data.dtype} "
            f"{'x'.join(map(str, data.shape[1:]))}"
        )
    if op.input_format == "YUV420SP_U8":
        pixels = _yuv420sp_to_yuv444(op, data, geometry, assumptions)
        if op.get("csc_switch"):
            pixels = _csc(pixels - np.array(op.input_bias(), np.int32), op, assumptions, bias=None)
        else:
            pixels = pixels.astype(np.float32)
    else:
        swapped = data[..., channel_permutation(op)]
        cropped = swapped[:, geometry.top:geometry.top + geometry.crop_h, geometry.left:geometry.left + geometry.crop_w]
        if op.get("csc_switch"):
            pixels = _csc(cropped.astype(np.int32), op, assumptions, bias=np.array(op.output_bias(), np.int32))
        else:
            pixels = cropped.astype(np.float32)
    out = _dtc(op, pixels, assumptions)
    if geometry.padded:
        pad_value = np.float16(dtc_constants(op, out.shape[-1]).padding_value)
        widths = ((0, 0), (geometry.pad_top, geometry.pad_bottom), (geometry.pad_left, geometry.pad_right), (0, 0))
        out = np.pad(out, widths, mode="constant", constant_values=pad_value)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _yuv420sp_to_yuv444(op: AippOp, data: np.ndarray, g: Geometry, assumptions: Assumptions) -> np.ndarray:
    n = data.shape[0]
    luma = data[:, : g.src_h, :, 0]
    chroma = data[:, g.src_h:, :, 0].reshape(n, g.src_h // 2, g.src_w // 2, 2)
    if op.get("rbuv_swap_switch"):
        chroma = chroma[..., ::-1]
    luma = luma[:, g.top:g.top + g.crop_h, g.left:g.left + g.crop_w].astype(np.int32)
    chroma = chroma[:, g.top // 2:(g.top + g.crop_h) // 2, g.left // 2:(g.left + g.crop_w) // 2].astype(np.int32)
    if assumptions.chroma_upsampling == "replicate":
        chroma = chroma.repeat(2, axis=1).repeat(2, axis=2)
    else:
        chroma = _fancy_upsample(chroma)
    return np.concatenate([luma[..., None], chroma], axis=-1)


def _fancy_upsample(chroma: np.ndarray) -> np.ndarray:
    """2x up-sampling per axis with (3/4, 1/4) taps and edge clamping; ``(sum + 8) >> 4``."""

    def double(plane: np.ndarray, axis: int) -> np.ndarray:
        first = np.take(plane, [0], axis=axis)
        last = np.take(plane, [plane.shape[axis] - 1], axis=axis)
        before = np.concatenate([first, np.take(plane, range(plane.shape[axis] - 1), axis=axis)], axis=axis)
        after = np.concatenate([np.take(plane, range(1, plane.shape[axis]), axis=axis), last], axis=axis)
        even, odd = 3 * plane + before, 3 * plane + after
        stacked = np.stack([even, odd], axis=axis + 1)
        shape = list(plane.shape)
        shape[axis] *= 2
        return stacked.reshape(shape)

    return (double(double(chroma, 1), 2) + 8) >> 4


def _shift(values: np.ndarray, rule: str) -> np.ndarray:
    if rule == "floor":
        return values >> 8
    if rule == "round":
        return (values + 128) >> 8
    return np.where(values < 0, -((-values) >> 8), values >> 8)


def _csc(pixels: np.ndarray, op: AippOp, assumptions: Assumptions, bias: np.ndarray | None) -> np.ndarray:
    out = _shift(pixels @ csc_matrix_int32(op), assumptions.csc_shift)
    if bias is not None:
        out = out + bias
    result = out.astype(np.float32)
    if assumptions.csc_saturate:
        result = np.minimum(np.maximum(result, np.float32(0)), np.float32(255))
    return result


def _dtc(op: AippOp, pixels: np.ndarray, assumptions: Assumptions) -> np.ndarray:
    constants = dtc_constants(op, pixels.shape[-1])
    centred = pixels - constants.mean
    if assumptions.dtc_precision == "float16":
        centred = centred.astype(np.float16).astype(np.float32)
        shifted = (centred - constants.minimum).astype(np.float16).astype(np.float32)
    else:
        shifted = centred - constants.minimum
    return (shifted * constants.var_reci).astype(np.float16)
