"""The emulated OM: an ONNX model that takes what the ``.om`` takes and computes what it computes.

From the source ONNX it builds a static-batch model (the batch ATC's ``--input_shape`` sets),
with the precision mode applied (:mod:`infer_kit.converter.precision`) and, with AIPP, the AIPP
subgraph (:mod:`infer_kit.aipp.onnx_graph`) in front: the model input becomes uint8 NHWC
``[N, src_h, src_w, 3]`` under the source input's name, and AIPP's float16 NCHW output feeds the
original graph. ONNX Runtime runs it anywhere; it is never named ``.om``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infer_kit.aipp import DEFAULT_ASSUMPTIONS, AippOp, Assumptions, aipp_subgraph, resolve_geometry, source_shape
from infer_kit.artifacts import onnx_io
from infer_kit.errors import InferKitError

if TYPE_CHECKING:
    import onnx

EMULATED_KEY = "infer_kit.emulated_om"


@dataclass(frozen=True)
class ModelInput:
    """The one image input of a classifier: name and NCHW dims (None where dynamic)."""

    name: str
    batch: int | None
    channels: int | None
    height: int | None
    width: int | None
    dtype: str

    @property
    def chw(self) -> tuple[int | None, int | None, int | None]:
        return (self.channels, self.height, self.width)


def model_input(model: onnx.ModelProto, where: str = "model") -> ModelInput:
    """The model's single 4-D NCHW input; anything else is refused with a clear message."""
    inputs, _ = onnx_io(model)
    if len(inputs) != 1:
        names = ", ".join(t.name for t in inputs) or "none"
        raise InferKitError(f"{where} has {len(inputs)} inputs ({names}); infer-kit compiles image classifiers "
                            "with one NCHW image input")
    desc = inputs[0]
    if len(desc.shape) != 4:
        raise InferKitError(f"{where}: input {desc.name} has shape {desc.describe()}, expected 4-D NCHW")
    n, c, h, w = desc.shape
    return ModelInput(desc.name, n, c, h, w, desc.dtype)


def resolve_input_hw(source: ModelInput, fallback: tuple[int, int] | None, where: str) -> tuple[int, int]:
    """The model input H, W: from the model, else from ``fallback`` (the spec's crop)."""
    if source.height is not None and source.width is not None:
        return source.height, source.width
    if fallback is None:
        raise InferKitError(f"{where}: input {source.name} has a dynamic height/width and no spec gives the size",
                            hint="re-export with a fixed input size, or give the spec (--crop)")
    return fallback


def build_emulated_model(model: onnx.ModelProto, *, batch: int | None, input_hw: tuple[int, int],
                         aipp: AippOp | None = None, assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
                         input_dims: list[int | None] | None = None) -> onnx.ModelProto:
    """A copy of ``model`` (already precision-converted) at ``batch``, with AIPP in front when given.

    ``input_dims`` (NCHW, None = dynamic) replaces ``[batch, C, H, W]`` for a dynamic-shape
    compile; a dynamic batch (None) stays symbolic in the outputs too. With AIPP on a dynamic
    image size, ``input_hw`` is any gear's size (the AIPP then neither crops nor pads).
    """
    import onnx

    out = onnx.ModelProto.FromString(model.SerializeToString())
    src = model_input(out)
    graph = out.graph
    del graph.value_info[:]
    graph_input = next(v for v in graph.input if v.name == src.name)
    dims = input_dims if input_dims is not None else [batch, src.channels or 3, input_hw[0], input_hw[1]]
    _set_dims(graph_input, dims)
    for output in graph.output:
        out_dims = output.type.tensor_type.shape.dim
        if out_dims:
            out_dims[0].ClearField("dim_param")
            out_dims[0].ClearField("dim_value")
            if dims[0] is None:
                out_dims[0].dim_param = "batch"
            else:
                out_dims[0].dim_value = dims[0]
    if aipp is not None:
        dynamic_hw = input_dims is not None and (input_dims[2] is None or input_dims[3] is None)
        _attach_aipp(out, src.name, aipp, input_hw, dims[0], assumptions, dynamic_hw=dynamic_hw)
    props = {p.key: p.value for p in out.metadata_props}
    props[EMULATED_KEY] = "true"
    del out.metadata_props[:]
    for key, value in props.items():
        out.metadata_props.add(key=key, value=value)
    return out


_AXIS_NAMES = ("batch", "channels", "height", "width")


def _set_dims(value_info: onnx.ValueInfoProto, dims: list[int | None]) -> None:
    shape = value_info.type.tensor_type.shape
    del shape.dim[:]
    for axis, size in enumerate(dims):
        dim = shape.dim.add()
        if size is None:
            dim.dim_param = _AXIS_NAMES[axis] if axis < len(_AXIS_NAMES) else f"dim{axis}"
        else:
            dim.dim_value = int(size)


def attach_aipp(model: onnx.ModelProto, op: AippOp, *, input_hw: tuple[int, int], batch: int | None = None,
                assumptions: Assumptions = DEFAULT_ASSUMPTIONS, dynamic_hw: bool = False) -> onnx.ModelProto:
    """A copy of a float NCHW model with the AIPP of ``op`` in front (uint8 NHWC input of the same name).

    ``run`` uses it for a model compiled with dynamic AIPP: the parameters of each run's
    ``--aipp_config`` become a static AIPP subgraph in front of the emulated model.
    """
    import onnx

    out = onnx.ModelProto.FromString(model.SerializeToString())
    src = model_input(out)
    _attach_aipp(out, src.name, op, input_hw, batch, assumptions, dynamic_hw=dynamic_hw)
    return out


def _attach_aipp(model: onnx.ModelProto, input_name: str, op: AippOp, input_hw: tuple[int, int], batch: int | None,
                 assumptions: Assumptions, *, dynamic_hw: bool = False) -> None:
    """Replace the float NCHW input by AIPP's uint8 NHWC input of the same name."""
    from onnx import TensorProto, helper

    graph = model.graph
    fed = f"{input_name}__aipp_out"
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == input_name:
                node.input[i] = fed
    for output in graph.output:
        if output.name == input_name:
            raise InferKitError(f"model input {input_name} is also a model output; AIPP cannot be inserted")
    half = f"{input_name}__aipp_fp16"
    nodes, initializers = aipp_subgraph(op, input_name, half, model_hw=input_hw, assumptions=assumptions,
                                        prefix=f"{input_name}_0_huawei_aipp")
    nodes.append(helper.make_node("Cast", [half], [fed], name=f"{input_name}_0_huawei_aipp/to_float32",
                                  to=TensorProto.FLOAT))
    new_nodes = nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(initializers)
    src: list[int | str | None] = list(source_shape(op, resolve_geometry(op, input_hw)))
    if dynamic_hw:  # AIPP without crop or padding takes each gear's whole image
        src[0], src[1] = "height", "width"
    new_input = helper.make_tensor_value_info(input_name, TensorProto.UINT8,
                                              ["batch" if batch is None else batch, *src])
    index = next(i for i, v in enumerate(graph.input) if v.name == input_name)
    graph.input[index].CopyFrom(new_input)


def check_runs_at_batch(model: onnx.ModelProto, batch: int, where: str) -> None:
    """Refuse a model whose graph cannot take ``batch`` (e.g. a Reshape that bakes the export batch)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:  # onnx raises InferenceError (and friends) with a long message
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InferKitError(f"{where} cannot be compiled at batch {batch}: {first}",
                            hint="re-export the model with a dynamic batch axis") from None
    for output in inferred.graph.output:
        dims = output.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value != batch:
            raise InferKitError(f"{where} cannot be compiled at batch {batch}: output {output.name} keeps batch "
                                f"{dims[0].dim_value}", hint="re-export the model with a dynamic batch axis")


def check_runs_at_shape(model: onnx.ModelProto, shape: tuple[int, ...], where: str, gear: str) -> None:
    """Refuse a source model that cannot be compiled at one gear's input ``shape`` (as ATC compiles every gear)."""
    import onnx

    out = onnx.ModelProto.FromString(model.SerializeToString())
    src = model_input(out)
    del out.graph.value_info[:]
    _set_dims(next(v for v in out.graph.input if v.name == src.name), list(shape))
    for output in out.graph.output:
        dims = output.type.tensor_type.shape.dim
        for dim in dims:
            dim.ClearField("dim_value")
            dim.dim_param = "out"
    try:
        inferred = onnx.shape_inference.infer_shapes(out, strict_mode=True)
    except Exception as exc:  # onnx raises InferenceError (and friends) with a long message
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InferKitError(f"{where} cannot be compiled at gear {gear} (input {'x'.join(map(str, shape))}): {first}",
                            hint="the graph must accept every gear's shape; re-export it with those axes dynamic") \
            from None
    for output in inferred.graph.output:
        dims = output.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value != shape[0]:
            raise InferKitError(f"{where} cannot be compiled at gear {gear}: output {output.name} keeps batch "
                                f"{dims[0].dim_value}", hint="re-export the model with a dynamic batch axis")
