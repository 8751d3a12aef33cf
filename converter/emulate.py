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


def build_emulated_model(model: onnx.ModelProto, *, batch: int, input_hw: tuple[int, int],
                         aipp: AippOp | None = None, assumptions: Assumptions = DEFAULT_ASSUMPTIONS) -> onnx.ModelProto:
    """A static-batch copy of ``model`` (already precision-converted), with AIPP in front when given."""
    import onnx

    out = onnx.ModelProto.FromString(model.SerializeToString())
    src = model_input(out)
    graph = out.graph
    del graph.value_info[:]
    graph_input = next(v for v in graph.input if v.name == src.name)
    _set_dims(graph_input, [batch, src.channels or 3, input_hw[0], input_hw[1]])
    for output in graph.output:
        dims = output.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_param")
            dims[0].dim_value = batch
    if aipp is not None:
        _attach_aipp(out, src.name, aipp, input_hw, batch, assumptions)
    props = {p.key: p.value for p in out.metadata_props}
    props[EMULATED_KEY] = "true"
    del out.metadata_props[:]
    for key, value in props.items():
        out.metadata_props.add(key=key, value=value)
    return out


def _set_dims(value_info: onnx.ValueInfoProto, dims: list[int]) -> None:
    shape = value_info.type.tensor_type.shape
    del shape.dim[:]
    for size in dims:
        shape.dim.add().dim_value = int(size)


def _attach_aipp(model: onnx.ModelProto, input_name: str, op: AippOp, input_hw: tuple[int, int], batch: int,
                 assumptions: Assumptions) -> None:
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
    src = source_shape(op, resolve_geometry(op, input_hw))
    new_input = helper.make_tensor_value_info(input_name, TensorProto.UINT8, [batch, *src])
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
