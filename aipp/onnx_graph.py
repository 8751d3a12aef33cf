"""The AIPP arithmetic as an ONNX subgraph, bit-identical to :mod:`infer_kit.aipp.reference`.

Only operators whose semantics are the same from opset 11 to 18 are used (Gather, Slice, Reshape,
Tile, Concat, Cast, MatMul, Add/Sub/Mul/Div, Max/Min, Pad, Transpose), so the subgraph can be put
in front of any model ATC accepts. Integer steps run in int32: ``>> 8`` is an integer ``Div`` of
a sum made non-negative by an offset (ONNX integer division truncates), and float16 rounding is
a ``Cast`` to float16 and back, exactly as numpy's ``astype`` rounds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from infer_kit.aipp.assumptions import DEFAULT_ASSUMPTIONS, Assumptions
from infer_kit.aipp.config import AippOp
from infer_kit.aipp.geometry import Geometry, output_channels, resolve_geometry, source_shape
from infer_kit.aipp.params import SHIFT_BIAS, channel_permutation, csc_matrix_int32, dtc_constants

if TYPE_CHECKING:
    import onnx

DEFAULT_OPSET = 11


class _Graph:
    """Collects nodes and constants under one name prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.count = 0

    def _name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}/{hint}_{self.count}"

    def const(self, value: Any, dtype: Any, hint: str = "const") -> str:
        from onnx import numpy_helper

        name = self._name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, output: str | None = None,
           **attrs: Any) -> str:
        from onnx import helper

        out = output or self._name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self._name(op_type), **attrs))
        return out

    def cast(self, tensor: str, to: int) -> str:
        return self.op("Cast", [tensor], "cast", to=to)

    def slice(self, tensor: str, starts: list[int], ends: list[int], axes: list[int]) -> str:
        return self.op("Slice", [tensor, self.const(starts, np.int64), self.const(ends, np.int64),
                                 self.const(axes, np.int64)], "slice")

    def reshape(self, tensor: str, shape: list[int]) -> str:
        return self.op("Reshape", [tensor, self.const(shape, np.int64)], "reshape")


def aipp_subgraph(op: AippOp, input_name: str, output_name: str, *, model_hw: tuple[int, int] | None = None,
                  assumptions: Assumptions = DEFAULT_ASSUMPTIONS, prefix: str = "aipp") -> tuple[list[Any], list[Any]]:
    """Nodes and initializers computing ``output_name`` (float16 NCHW) from ``input_name`` (uint8)."""
    from onnx import TensorProto

    geometry = resolve_geometry(op, model_hw)
    source_shape(op, geometry)  # refuses formats the emulation does not cover
    g = _Graph(prefix)
    if op.input_format == "YUV420SP_U8":
        pixels = _yuv420sp(g, op, input_name, geometry, assumptions)
        if op.get("csc_switch"):
            centred = g.op("Sub", [pixels, g.const(op.input_bias(), np.int32, "input_bias")])
            pixels = _csc(g, op, centred, assumptions, bias=None)
    else:
        source_channels = source_shape(op, geometry)[2]
        perm = channel_permutation(op)
        pixels = input_name
        if perm != list(range(source_channels)):
            pixels = g.op("Gather", [pixels, g.const(perm, np.int64, "channels")], "swap", axis=3)
        pixels = _crop(g, pixels, geometry, 1)
        if op.get("csc_switch"):
            pixels = _csc(g, op, g.cast(pixels, TensorProto.INT32), assumptions, bias=op.output_bias())
    # Planes first, on the narrowest dtype (uint8 without CSC): every later step is per channel.
    planes = g.op("Transpose", [pixels], "planes", perm=[0, 3, 1, 2])
    if not op.get("csc_switch"):
        planes = g.cast(planes, TensorProto.FLOAT)
    exact_integers = not op.get("csc_switch") or assumptions.csc_saturate
    out = _dtc(g, op, planes, assumptions, exact_integers)
    if geometry.padded:
        constants = dtc_constants(op, output_channels(op))
        pads = [0, 0, geometry.pad_top, geometry.pad_left, 0, 0, geometry.pad_bottom, geometry.pad_right]
        widened = g.cast(out, TensorProto.FLOAT)
        padded = g.op("Pad", [widened, g.const(pads, np.int64, "pads"),
                              g.const(constants.padding_value, np.float32, "padding_value")], "pad", mode="constant")
        out = g.cast(padded, TensorProto.FLOAT16)
    g.op("Identity", [out], output=output_name)
    return g.nodes, g.initializers


def _crop(g: _Graph, tensor: str, geometry: Geometry, scale: int) -> str:
    """Crop rows/cols (axes 1, 2); ``scale`` 2 crops a half-resolution chroma plane."""
    top, left = geometry.top // scale, geometry.left // scale
    h, w = geometry.crop_h // scale, geometry.crop_w // scale
    if (top, left, h, w) == (0, 0, geometry.src_h // scale, geometry.src_w // scale):
        return tensor
    return g.slice(tensor, [top, left], [top + h, left + w], [1, 2])


def _yuv420sp(g: _Graph, op: AippOp, input_name: str, geometry: Geometry, assumptions: Assumptions) -> str:
    from onnx import TensorProto

    h, w = geometry.src_h, geometry.src_w
    luma = _crop(g, g.slice(input_name, [0], [h], [1]), geometry, 1)
    chroma = g.reshape(g.slice(input_name, [h], [h + h // 2], [1]), [0, h // 2, w // 2, 2])
    if op.get("rbuv_swap_switch"):
        chroma = g.op("Gather", [chroma, g.const([1, 0], np.int64, "vu")], "swap_uv", axis=3)
    chroma = g.cast(_crop(g, chroma, geometry, 2), TensorProto.INT32)
    ch, cw = geometry.crop_h // 2, geometry.crop_w // 2
    if assumptions.chroma_upsampling == "replicate":
        block = g.reshape(chroma, [0, ch, 1, cw, 1, 2])
        tiled = g.op("Tile", [block, g.const([1, 1, 2, 1, 2, 1], np.int64, "repeats")], "replicate")
        chroma = g.reshape(tiled, [0, 2 * ch, 2 * cw, 2])
    else:
        chroma = _fancy_upsample(g, chroma, ch, cw)
    return g.op("Concat", [g.cast(luma, TensorProto.INT32), chroma], "yuv444", axis=3)


def _fancy_upsample(g: _Graph, chroma: str, ch: int, cw: int) -> str:
    three = g.const(3, np.int32, "three")

    def double(plane: str, axis: int, size: int, shape_after: list[int]) -> str:
        first = g.slice(plane, [0], [1], [axis])
        last = g.slice(plane, [size - 1], [size], [axis])
        before = g.op("Concat", [first, g.slice(plane, [0], [size - 1], [axis])], "before", axis=axis)
        after = g.op("Concat", [g.slice(plane, [1], [size], [axis]), last], "after", axis=axis)
        tripled = g.op("Mul", [plane, three])
        even = g.op("Add", [tripled, before])
        odd = g.op("Add", [tripled, after])
        unsqueezed = [0, ch, cw, 2]
        unsqueezed.insert(axis + 1, 1)
        if axis == 2:
            unsqueezed[1] = 2 * ch
        pair = g.op("Concat", [g.reshape(even, unsqueezed), g.reshape(odd, unsqueezed)], "interleave", axis=axis + 1)
        return g.reshape(pair, shape_after)

    rows = double(chroma, 1, ch, [0, 2 * ch, cw, 2])
    both = double(rows, 2, cw, [0, 2 * ch, 2 * cw, 2])
    rounded = g.op("Add", [both, g.const(8, np.int32, "eight")])
    return g.op("Div", [rounded, g.const(16, np.int32, "sixteen")], "upsampled")


def _csc(g: _Graph, op: AippOp, pixels: str, assumptions: Assumptions, bias: tuple[int, int, int] | None) -> str:
    from onnx import TensorProto

    total = g.op("MatMul", [pixels, g.const(csc_matrix_int32(op), np.int32, "csc_matrix")], "csc_sum")
    if assumptions.csc_shift == "trunc":
        shifted = g.op("Div", [total, g.const(256, np.int32, "d256")], "csc_shift")
    else:
        offset = SHIFT_BIAS + (128 if assumptions.csc_shift == "round" else 0)
        positive = g.op("Add", [total, g.const(offset, np.int32, "shift_bias")])
        divided = g.op("Div", [positive, g.const(256, np.int32, "d256")])
        shifted = g.op("Sub", [divided, g.const(SHIFT_BIAS // 256, np.int32, "unbias")], "csc_shift")
    if bias is not None:
        shifted = g.op("Add", [shifted, g.const(bias, np.int32, "output_bias")])
    result = g.cast(shifted, TensorProto.FLOAT)
    if assumptions.csc_saturate:
        result = g.op("Max", [result, g.const(0, np.float32, "zero")])
        result = g.op("Min", [result, g.const(255, np.float32, "max255")], "csc_out")
    return result


def _round16(g: _Graph, tensor: str) -> str:
    from onnx import TensorProto

    return g.cast(g.cast(tensor, TensorProto.FLOAT16), TensorProto.FLOAT)


def _dtc(g: _Graph, op: AippOp, planes: str, assumptions: Assumptions, exact_integers: bool) -> str:
    """``((x - mean_chn) - min_chn) * var_reci`` on float32 NCHW planes, rounded as the reference rounds.

    Steps that are exact identities are left out: subtracting or multiplying by neutral
    constants, and the float16 rounding of ``x - mean_chn`` when ``x`` holds integers 0..255
    (every integer up to 2048 is a float16).
    """
    from onnx import TensorProto

    constants = dtc_constants(op, output_channels(op))
    shape = (-1, 1, 1)
    tensor = planes
    if constants.mean.any():
        tensor = g.op("Sub", [tensor, g.const(constants.mean.reshape(shape), np.float32, "mean_chn")], "centred")
    if assumptions.dtc_precision == "float16" and not exact_integers:
        tensor = _round16(g, tensor)
    if constants.minimum.any():
        tensor = g.op("Sub", [tensor, g.const(constants.minimum.reshape(shape), np.float32, "min_chn")])
        if assumptions.dtc_precision == "float16":
            tensor = _round16(g, tensor)
    if (constants.var_reci != 1).any():
        tensor = g.op("Mul", [tensor, g.const(constants.var_reci.reshape(shape), np.float32, "var_reci_chn")],
                      "normalised")
    return g.cast(tensor, TensorProto.FLOAT16)


def aipp_model(op: AippOp, *, batch: int = 1, model_hw: tuple[int, int] | None = None,
               assumptions: Assumptions = DEFAULT_ASSUMPTIONS, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """A standalone model ``images`` (uint8 source) -> ``features`` (float16 NCHW) for one op."""
    from onnx import TensorProto, helper

    geometry = resolve_geometry(op, model_hw)
    src = source_shape(op, geometry)
    nodes, initializers = aipp_subgraph(op, "images", "features", model_hw=model_hw, assumptions=assumptions)
    graph = helper.make_graph(
        nodes, "aipp", [helper.make_tensor_value_info("images", TensorProto.UINT8, [batch, *src])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT16,
                                       [batch, output_channels(op), geometry.out_h, geometry.out_w])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="infer-kit")
    model.ir_version = 7
    return model
