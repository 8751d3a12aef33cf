"""ais_bench's ``--aipp_config``: the per-run parameters of a model compiled with ``aipp_mode: dynamic``.

Not ATC's protobuf text: an INI file read by Python's ``configparser`` with exactly one
``[aipp_op]`` section (``key : value`` or ``key = value``, keys case-insensitive, whole-line
``#``/``;`` comments, a key given twice is an error). Switches are integers 0/1. ais_bench's
rules, restated (``<field> in config file out of range, please check it!`` and friends):

* ``input_format`` required, one of YUV420SP_U8 XRGB8888_U8 RGB888_U8 YUV400_U8;
* ``src_image_size_w`` (2..4096) and ``src_image_size_h`` (1..4096) required;
* ``rbuv_swap_switch``, ``ax_swap_switch``: 0/1, default 0;
* ``csc_switch`` 1: ``matrix_r0c0..r2c2``, ``output_bias_0..2``, ``input_bias_0..2`` default **0**
  (not ATC's BT.601 defaults); ais_bench's range check covers r0c0..r2c1 (-32677..32676) and
  output_bias_1..2, input_bias_0..2 (0..255) only;
* ``crop`` 1: ``load_start_pos_w/h`` (0..4095), ``crop_size_w/h`` (1..4096), default 0;
* ``padding`` 1: ``top/bottom/left/right_padding_size`` 0..32, default 0;
* ``mean_chn_0..3`` int 0..255, ``min_chn_0..3`` float 0..255, ``var_reci_chn_0..3`` float
  -65504..65504, all default 0 (so a missing ``var_reci`` zeroes that channel, unlike ATC's 1.0).

:func:`read_ais_aipp_config` returns the equivalent static :class:`AippOp` for the emulation.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import Any

from infer_kit.aipp.config import AippOp
from infer_kit.errors import InferKitError
from infer_kit.fsutil import read_text

SECTION = "aipp_op"
FORMATS = ("YUV420SP_U8", "XRGB8888_U8", "RGB888_U8", "YUV400_U8")
MAX_CONFIG_BYTES = 12800
_CSC_MATRIX = [f"matrix_r{r}c{c}" for r in range(3) for c in range(3)]
_CSC_BIAS = [f"output_bias_{i}" for i in range(3)] + [f"input_bias_{i}" for i in range(3)]


def _fail(path: str, message: str) -> InferKitError:
    return InferKitError(f"--aipp_config {path}: {message}", hint="fix the [aipp_op] section (ais_bench's "
                         "dynamic-AIPP format: key : value lines, switches 0 or 1)")


def read_ais_aipp_config(path: str | os.PathLike[str]) -> AippOp:
    """Parse and check an ais_bench dynamic-AIPP config; the static op it programs."""
    where = os.fspath(path)
    file = Path(path)
    if not file.is_file() or file.suffix != ".config" or file.stat().st_size > MAX_CONFIG_BYTES:
        raise InferKitError(f"aipp config path:{where} is illegal. Please check.",
                            hint=f"a .config file of at most {MAX_CONFIG_BYTES} bytes")
    parser = configparser.ConfigParser(interpolation=None)  # a '%' is a bad value, not a template
    text = read_text(file, what="--aipp_config")
    try:
        parser.read_string(text, source=where)
    except configparser.DuplicateOptionError as exc:
        raise _fail(where, f"option {exc.option!r} given twice (line {exc.lineno})") from None
    except configparser.Error as exc:
        raise _fail(where, str(exc).splitlines()[0]) from None
    if parser.sections().count(SECTION) != 1 or len(parser.sections()) != 1:
        raise _fail(where, "nums of section aipp_op in .config file is not supported, please check it!")
    options = parser.options(SECTION)

    def number(key: str, kind: type) -> Any:
        try:
            return (parser.getint if kind is int else parser.getfloat)(SECTION, key)
        except ValueError:
            raise _fail(where, f"get {kind.__name__} type value from aipp config file failed, head name:{SECTION}, "
                        f"key name:{key}") from None

    def integer(key: str) -> int:
        return number(key, int)

    def floating(key: str) -> float:
        return number(key, float)

    def optional_int(key: str) -> int:
        return integer(key) if key in options else 0

    def switch(key: str, label: str | None = None) -> bool:
        value = optional_int(key)
        if value not in (0, 1):
            raise _fail(where, f"{label or key} in config file out of range, please check it!")
        return value == 1

    if "input_format" not in options:
        raise _fail(where, "can not find input_format in config file, please check it!")
    fmt = parser.get(SECTION, "input_format")
    if fmt not in FORMATS:
        raise _fail(where, "input_format in config file is illegal, please check it!")
    if "src_image_size_w" not in options or "src_image_size_h" not in options:
        raise _fail(where, "can not find src_image_size in config file, please check it!")
    src_w, src_h = integer("src_image_size_w"), integer("src_image_size_h")
    if not 2 <= src_w <= 4096:
        raise _fail(where, "src_image_size_w in config file out of range, please check it!")
    if not 1 <= src_h <= 4096:
        raise _fail(where, "src_image_size_h in config file out of range, please check it!")
    values: dict[str, object] = {"aipp_mode": "static", "input_format": fmt, "src_image_size_w": src_w,
                                 "src_image_size_h": src_h,
                                 "rbuv_swap_switch": switch("rbuv_swap_switch"),
                                 "ax_swap_switch": switch("ax_swap_switch")}
    if switch("csc_switch"):
        csc = {key: optional_int(key) for key in _CSC_MATRIX + _CSC_BIAS}
        matrix_ok = all(-32677 <= csc[key] <= 32676 for key in _CSC_MATRIX[:8])
        bias_ok = all(0 <= csc[key] <= 255 for key in _CSC_BIAS[1:])
        if not (matrix_ok and bias_ok):
            raise _fail(where, "csc_params in config file out of range, please check it!")
        values["csc_switch"] = True
        values.update(csc)
    if switch("crop", "crop_switch(crop)"):
        crop = {key: optional_int(key) for key in ("load_start_pos_w", "load_start_pos_h", "crop_size_w",
                                                    "crop_size_h")}
        if not (0 <= crop["load_start_pos_w"] <= 4095 and 0 <= crop["load_start_pos_h"] <= 4095
                and 1 <= crop["crop_size_w"] <= 4096 and 1 <= crop["crop_size_h"] <= 4096):
            raise _fail(where, "crop_params in config file out of range, please check it!")
        values["crop"] = True
        values.update(crop)
    if switch("padding", "padding_switch"):
        pads = {f"{side}_padding_size": optional_int(f"{side}_padding_size")
                for side in ("top", "bottom", "left", "right")}
        if not all(0 <= v <= 32 for v in pads.values()):
            raise _fail(where, "padding_params in config file out of range, please check it!")
        values["padding"] = True
        values.update(pads)
    means = [optional_int(f"mean_chn_{i}") for i in range(4)]
    if not all(0 <= v <= 255 for v in means):
        raise _fail(where, "mean_chn_params in config file out of range, please check it!")
    mins = [floating(f"min_chn_{i}") if f"min_chn_{i}" in options else 0.0 for i in range(4)]
    if not all(0 <= v <= 255 for v in mins):
        raise _fail(where, "min_chn_params in config file out of range, please check it!")
    recis = [floating(f"var_reci_chn_{i}") if f"var_reci_chn_{i}" in options else 0.0 for i in range(4)]
    if not all(-65504 <= v <= 65504 for v in recis):
        raise _fail(where, "var_reci_chn_params in config file out of range, please check it!")
    for i in range(4):
        values[f"mean_chn_{i}"] = means[i]
        values[f"min_chn_{i}"] = mins[i]
        values[f"var_reci_chn_{i}"] = recis[i]
    try:
        return AippOp(values)
    except InferKitError as exc:
        raise _fail(where, exc.message) from None


def source_bytes(op: AippOp, batch: int) -> int:
    """Bytes of ``batch`` source images of ``op`` (YUV420SP: 1.5 per pixel), to check max_src_image_size."""
    per_pixel = {"YUV420SP_U8": 1.5, "XRGB8888_U8": 4, "RGB888_U8": 3, "YUV400_U8": 1}[op.input_format]
    return int(batch * int(op.get("src_image_size_w")) * int(op.get("src_image_size_h")) * per_pixel)
