"""The colour-space conversion presets of the ATC docs (``CSC_config.md``), and an NV12 encoder.

AIPP's CSC is an integer 3x3 matrix with an 8-bit right shift:

* YUV -> RGB/BGR: ``out_r = (sum_c m[r][c] * (in_c - input_bias_c)) >> 8`` with ``in = (Y, U, V)``;
* RGB -> YUV: ``out_r = ((sum_c m[r][c] * in_c) >> 8) + output_bias_r`` with ``in = (R, G, B)``.

Row r produces output channel r, so the BGR presets are the RGB ones with rows 0 and 2
exchanged, and NV21 data uses the NV12 numbers with ``rbuv_swap_switch: true``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infer_kit.errors import InferKitError

if TYPE_CHECKING:
    import numpy as np

Matrix = tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]

STANDARDS = ("jpeg", "bt601-narrow", "bt601-wide", "bt709-narrow", "bt709-wide")

# YUV (NV12) -> RGB, rows r0, r1, r2, and input_bias 0..2.
_YUV2RGB: dict[str, tuple[Matrix, tuple[int, int, int]]] = {
    "jpeg": (((256, 0, 359), (256, -88, -183), (256, 454, 0)), (0, 128, 128)),
    "bt601-narrow": (((298, 0, 409), (298, -100, -208), (298, 516, 0)), (16, 128, 128)),
    "bt601-wide": (((256, 0, 359), (256, -88, -183), (256, 454, 0)), (0, 128, 128)),
    "bt709-narrow": (((298, 0, 459), (298, -55, -136), (298, 541, 0)), (16, 128, 128)),
    "bt709-wide": (((256, 0, 403), (256, -48, -120), (256, 475, 0)), (0, 128, 128)),
}
# RGB -> YUV444, rows, and output_bias 0..2.
_RGB2YUV: dict[str, tuple[Matrix, tuple[int, int, int]]] = {
    "jpeg": (((77, 150, 29), (-43, -85, 128), (128, -107, -21)), (0, 128, 128)),
    "bt601-narrow": (((66, 129, 25), (-38, -74, 112), (112, -94, -18)), (16, 128, 128)),
    "bt601-wide": (((77, 150, 29), (-43, -85, 128), (128, -107, -21)), (0, 128, 128)),
    "bt709-narrow": (((47, 157, 16), (-26, -87, 112), (112, -102, -10)), (16, 128, 128)),
    "bt709-wide": (((55, 183, 19), (-29, -99, 128), (128, -116, -12)), (0, 128, 128)),
}

# (Kr, Kb, narrow range) of each standard, for encoding test images.
_LUMA: dict[str, tuple[float, float, bool]] = {
    "jpeg": (0.299, 0.114, False),
    "bt601-narrow": (0.299, 0.114, True),
    "bt601-wide": (0.299, 0.114, False),
    "bt709-narrow": (0.2126, 0.0722, True),
    "bt709-wide": (0.2126, 0.0722, False),
}


@dataclass(frozen=True)
class CscPreset:
    """A matrix and its biases, ready to go into an ``aipp_op`` block."""

    standard: str
    direction: str  # "yuv2rgb" | "yuv2bgr" | "rgb2yuv" | "rgb2yvu"
    matrix: Matrix
    input_bias: tuple[int, int, int] | None
    output_bias: tuple[int, int, int] | None

    def fields(self) -> dict[str, int]:
        out = {f"matrix_r{r}c{c}": self.matrix[r][c] for r in range(3) for c in range(3)}
        for i in range(3):
            if self.input_bias is not None:
                out[f"input_bias_{i}"] = self.input_bias[i]
            if self.output_bias is not None:
                out[f"output_bias_{i}"] = self.output_bias[i]
        return out


def _check_standard(standard: str) -> str:
    key = standard.lower().replace("_", "-").replace(".", "")
    if key not in _YUV2RGB:
        raise InferKitError(f"unknown colour standard {standard!r}", hint=f"use one of {', '.join(STANDARDS)}")
    return key


def _swap_rows(matrix: Matrix, a: int, b: int) -> Matrix:
    rows = list(matrix)
    rows[a], rows[b] = rows[b], rows[a]
    return tuple(rows)  # type: ignore[return-value]


def yuv_to_rgb(standard: str = "jpeg", order: str = "RGB") -> CscPreset:
    """YUV420SP -> RGB (or BGR: rows 0 and 2 exchanged)."""
    key = _check_standard(standard)
    matrix, bias = _YUV2RGB[key]
    if order.upper() == "BGR":
        return CscPreset(key, "yuv2bgr", _swap_rows(matrix, 0, 2), bias, None)
    return CscPreset(key, "yuv2rgb", matrix, bias, None)


def rgb_to_yuv(standard: str = "jpeg", order: str = "YUV") -> CscPreset:
    """RGB888 -> YUV444 (or YVU444: rows 1 and 2 exchanged)."""
    key = _check_standard(standard)
    matrix, bias = _RGB2YUV[key]
    if order.upper() == "YVU":
        return CscPreset(key, "rgb2yvu", _swap_rows(matrix, 1, 2), None, (bias[0], bias[2], bias[1]))
    return CscPreset(key, "rgb2yuv", matrix, None, bias)


def identify_yuv_matrix(matrix: Matrix, input_bias: tuple[int, int, int]) -> tuple[str, str] | None:
    """(standard, "RGB"|"BGR") of a known YUV->RGB preset, or None. JPEG and BT.601 wide coincide."""
    for standard in STANDARDS:
        for order in ("RGB", "BGR"):
            preset = yuv_to_rgb(standard, order)
            if preset.matrix == tuple(map(tuple, matrix)) and preset.input_bias == tuple(input_bias):
                return standard, order
    return None


def rgb_to_nv12(rgb: np.ndarray, standard: str = "jpeg") -> np.ndarray:
    """Encode uint8 RGB ``(H, W, 3)`` (even H, W) as NV12 ``(H*3/2, W)``: Y plane, then interleaved UV.

    Floating-point BT.601/709 equations, chroma averaged over 2x2 blocks, rounded and clipped.
    """
    import numpy as np

    key = _check_standard(standard)
    kr, kb, narrow = _LUMA[key]
    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        raise InferKitError(f"NV12 needs even image sizes, got {w}x{h}")
    x = rgb.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    luma = kr * r + (1 - kr - kb) * g + kb * b
    cb = (b - luma) / (2 * (1 - kb))
    cr = (r - luma) / (2 * (1 - kr))
    if narrow:
        y, u, v = 16 + luma * 219 / 255, 128 + cb * 224 / 255, 128 + cr * 224 / 255
    else:
        y, u, v = luma, 128 + cb, 128 + cr

    def pool(plane: np.ndarray) -> np.ndarray:
        return plane.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    uv = np.stack([pool(u), pool(v)], axis=-1).reshape(h // 2, w)
    out = np.concatenate([y, uv], axis=0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
