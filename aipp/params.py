"""The numbers the device is programmed with, shared by the numpy and the ONNX emulation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infer_kit.aipp.config import AippOp

if TYPE_CHECKING:
    import numpy as np

# Offset that makes any CSC sum non-negative, so an integer division by 256 floors.
SHIFT_BIAS = 1 << 27


def fp16_value(value: float) -> float:
    """``value`` as the Aipp operator programs it: proto float32, then ``np.float16``."""
    import numpy as np

    return float(np.float16(np.float32(value)))


def channel_permutation(op: AippOp) -> list[int]:
    """Which source channel feeds each AIPP channel after ``ax_swap`` and ``rbuv_swap``.

    RGB888: ``rbuv`` exchanges channels 0 and 2. XRGB8888: ``ax`` moves the X/A byte from
    first to last (XRGB -> RGBX), then ``rbuv`` exchanges R and B; the X/A byte is dropped.
    YUV400 has one channel; YUV420SP swaps U/V in its chroma plane instead (see the emulations).
    """
    fmt = op.input_format
    if fmt == "YUV400_U8":
        return [0]
    order = [1, 2, 3, 0] if fmt == "XRGB8888_U8" and op.get("ax_swap_switch") else [0, 1, 2, 3]
    if op.get("rbuv_swap_switch"):
        order[0], order[2] = order[2], order[0]
    return order[:3]


@dataclass(frozen=True)
class DtcConstants:
    """Per-channel normalisation constants, float32 arrays holding float16-exact values."""

    mean: np.ndarray  # mean_chn_i (integers)
    minimum: np.ndarray  # float16(min_chn_i)
    var_reci: np.ndarray  # float16(var_reci_chn_i)
    padding_value: float  # float16(padding_value)


def dtc_constants(op: AippOp, channels: int) -> DtcConstants:
    import numpy as np

    mean = np.array(op.mean_chn()[:channels], dtype=np.float32)
    minimum = np.array([fp16_value(v) for v in op.min_chn()[:channels]], dtype=np.float32)
    var = np.array([fp16_value(v) for v in op.var_reci()[:channels]], dtype=np.float32)
    return DtcConstants(mean, minimum, var, fp16_value(float(op.get("padding_value"))))


def csc_matrix_int32(op: AippOp) -> np.ndarray:
    """The CSC matrix transposed for ``pixels @ matrix`` (row r of the config = output channel r)."""
    import numpy as np

    return np.array(op.csc_matrix(), dtype=np.int32).T.copy()
