"""Every field of ATC's ``aipp_op`` block: proto type, default, documented range.

The table follows ``domi.AippOpParams`` in GraphEngine's ``insert_op.proto`` (field numbers in
``number``), plus the fields the current CANN docs list but the open proto does not carry
(``number`` None). ``default`` is the value ATC uses when a field is absent; the defaults that
depend on other fields (CSC matrix, biases) are resolved in :mod:`infer_kit.aipp.config`.

``low``/``high`` is the range ATC or the Aipp operator enforces at compile time;
``zero_ok`` marks fields where 0 means "take it from the model" and is allowed outside the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

AIPP_MODES = ("undefined", "static", "dynamic")

INPUT_FORMATS = (
    "UNDEFINED", "YUV420SP_U8", "XRGB8888_U8", "RGB888_U8", "YUV400_U8", "NC1HWC0DI_FP16", "NC1HWC0DI_S8",
    "ARGB8888_U8", "YUYV_U8", "YUV422SP_U8", "AYUV444_U8", "RAW10", "RAW12", "RAW16", "RAW24",
    "RGB16", "RGB20", "RGB24", "RGB8_IR", "RGB16_IR", "RGB24_IR",
)

ENUMS: dict[str, tuple[str, ...]] = {"aipp_mode": AIPP_MODES, "input_format": INPUT_FORMATS}

INT32_RANGE = (-(2**31), 2**31 - 1)
UINT32_RANGE = (0, 2**32 - 1)
FP16_MAX = 65504.0


@dataclass(frozen=True)
class FieldSpec:
    """One ``aipp_op`` field as ATC reads it."""

    name: str
    kind: str  # "enum" | "bool" | "int32" | "uint32" | "float" | "string"
    number: int | None
    default: Any
    repeated: bool = False  # a proto `repeated` field (GE accepts it at most once)
    low: float | None = None
    high: float | None = None
    zero_ok: bool = False
    group: str = "mode"
    note: str = ""

    def in_range(self, value: float) -> bool:
        if self.low is None or self.high is None:
            return True
        return (self.zero_ok and value == 0) or self.low <= value <= self.high

    def describe_range(self) -> str:
        if self.low is None or self.high is None:
            return ""
        text = f"[{_num(self.low)}, {_num(self.high)}]"
        return text + " or 0" if self.zero_ok else text


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _fields() -> tuple[FieldSpec, ...]:
    f = FieldSpec
    out = [
        f("aipp_mode", "enum", 1, "undefined", group="mode", note="static or dynamic; required"),
        f("related_input_rank", "uint32", 2, 0, group="mode", note="index of the model input (Data node order)"),
        f("related_input_name", "string", None, "", group="mode", note="newer CANN; wins over related_input_rank"),
        f("input_edge_idx", "uint32", 3, None, repeated=True, group="mode",
          note="apply AIPP to some consumers of the input only"),
        f("max_src_image_size", "uint32", 4, 0, group="mode", note="dynamic AIPP only (bytes), required there"),
        f("support_rotation", "bool", 5, False, group="mode", note="dynamic AIPP only; reserved"),
        f("input_format", "enum", 51, "UNDEFINED", group="mode", note="required in static mode"),
        f("src_image_size_w", "int32", 57, 0, low=2, high=4096, zero_ok=True, group="geometry",
          note="0: the model input W (only without crop and padding)"),
        f("src_image_size_h", "int32", 58, 0, low=1, high=4096, zero_ok=True, group="geometry",
          note="0: the model input H (only without crop and padding)"),
        f("crop", "bool", 59, False, group="geometry"),
        f("load_start_pos_w", "int32", 60, 0, low=0, high=4095, group="geometry"),
        f("load_start_pos_h", "int32", 61, 0, low=0, high=4095, group="geometry"),
        f("crop_size_w", "int32", 62, 0, low=0, high=4096, group="geometry", note="0: the model input W"),
        f("crop_size_h", "int32", 63, 0, low=0, high=4096, group="geometry", note="0: the model input H"),
        f("resize", "bool", 64, False, group="geometry", note="reserved: not supported on Ascend 310/310P/910"),
        f("resize_output_w", "int32", 65, 0, low=16, high=1920, zero_ok=True, group="geometry"),
        f("resize_output_h", "int32", 66, 0, low=16, high=4096, zero_ok=True, group="geometry"),
        f("padding", "bool", 67, False, group="geometry"),
        f("left_padding_size", "int32", 68, 0, low=0, high=32, group="geometry"),
        f("right_padding_size", "int32", 69, 0, low=0, high=32, group="geometry"),
        f("top_padding_size", "int32", 70, 0, low=0, high=32, group="geometry"),
        f("bottom_padding_size", "int32", 71, 0, low=0, high=32, group="geometry"),
        f("padding_value", "float", None, 0.0, low=-FP16_MAX, high=FP16_MAX, group="geometry",
          note="value of padded pixels in the AIPP output dtype"),
        f("rotation_angle", "uint32", None, 0, low=0, high=3, group="geometry", note="reserved"),
        f("csc_switch", "bool", 52, False, group="csc"),
        f("rbuv_swap_switch", "bool", 54, False, group="csc", note="swap R/B (RGB input) or U/V (YUV input)"),
        f("ax_swap_switch", "bool", 55, False, group="csc", note="XRGB8888_U8: move X/A from first to last"),
        f("single_line_mode", "bool", 56, False, group="csc", note="reserved"),
        f("cpadding_value", "float", 53, 0.0, low=-FP16_MAX, high=FP16_MAX, group="csc", note="reserved"),
    ]
    for r in range(3):
        for c in range(3):
            out.append(f(f"matrix_r{r}c{c}", "int32", 30 + 3 * r + c, None, repeated=True,
                         low=-32768, high=32767, group="csc", note="CSC coefficient (int16)"))
    for i in range(3):
        out.append(f(f"output_bias_{i}", "int32", 39 + i, None, repeated=True, low=0, high=255, group="csc",
                     note="RGB->YUV only"))
    for i in range(3):
        out.append(f(f"input_bias_{i}", "int32", 42 + i, None, repeated=True, low=0, high=255, group="csc",
                     note="YUV->RGB only"))
    mean_numbers, min_numbers, var_numbers = (10, 11, 12, 19), (13, 14, 15, 20), (16, 17, 18, 21)
    for i in range(4):
        out.append(f(f"mean_chn_{i}", "int32", mean_numbers[i], 0, low=0, high=255, group="dtc"))
    for i in range(4):
        out.append(f(f"min_chn_{i}", "float", min_numbers[i], 0.0, low=0, high=255, group="dtc",
                     note="programmed as float16"))
    for i in range(4):
        out.append(f(f"var_reci_chn_{i}", "float", var_numbers[i], 1.0, repeated=True, low=-FP16_MAX, high=FP16_MAX,
                     group="dtc", note="programmed as float16"))
    out.append(f("raw_rgbir_to_f16_n", "uint32", None, 8, low=0, high=31, group="dtc", note="RAW formats only"))
    return tuple(out)


FIELDS: tuple[FieldSpec, ...] = _fields()
FIELD_BY_NAME: dict[str, FieldSpec] = {spec.name: spec for spec in FIELDS}
