"""Small helpers over an ONNX ``ModelProto`` for the precision passes and the graph analyses.

Nothing here changes what a graph computes: copies, the users of every tensor, names not yet
taken, element types, a copy with intermediate tensors exposed as outputs (for the range check
and the per-layer comparison), and an ONNX Runtime session for such analysis graphs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

ONNX_FLOAT, ONNX_UINT8, ONNX_INT8, ONNX_FLOAT16, ONNX_DOUBLE, ONNX_BOOL, ONNX_BFLOAT16 = 1, 2, 3, 10, 11, 9, 16
FLOAT_TYPES = frozenset({ONNX_FLOAT, ONNX_FLOAT16, ONNX_BFLOAT16, ONNX_DOUBLE})


def copy_model(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnx

    return onnx.ModelProto.FromString(model.SerializeToString())


def consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    """Tensor name -> the nodes that read it."""
    out: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            if name:
                out[name].append(node)
    return out


def producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    """Tensor name -> the node that writes it."""
    return {name: node for node in graph.node for name in node.output if name}


def initializer_map(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    return {init.name: init for init in graph.initializer}


def ai_onnx_opset(model: onnx.ModelProto) -> int | None:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor that shape inference (or the graph itself) can tell."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # onnx raises several types for graphs it cannot infer: use what the graph declares
        inferred = model
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.output, *graph.value_info]}
    types.update({init.name: init.data_type for init in graph.initializer})
    return types


def unique_namer(model: onnx.ModelProto) -> Callable[[str], str]:
    """``suggest(name)``: ``name``, or ``name_1``, ``name_2``... whichever no tensor or node uses yet."""
    used = {init.name for init in model.graph.initializer} | {v.name for v in model.graph.input}
    for node in model.graph.node:
        used.update(node.input)
        used.update(node.output)
        used.add(node.name)

    def suggest(name: str) -> str:
        candidate, k = name, 1
        while candidate in used:
            candidate = f"{name}_{k}"
            k += 1
        used.add(candidate)
        return candidate

    return suggest


def name_nodes(model: onnx.ModelProto) -> None:
    """Give every unnamed node a unique name (``<op_type>_<k>``), in place: policies are keyed by node name."""
    new_name = unique_namer(model)
    for node in model.graph.node:
        if not node.name:
            node.name = new_name(f"{node.op_type}_{node.output[0]}" if node.output else node.op_type)


def drop_unused_initializers(model: onnx.ModelProto) -> None:
    used = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
    keep = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def at_least_opset(model: onnx.ModelProto, version: int) -> onnx.ModelProto:
    """``model`` converted up to ai.onnx ``version`` when it declares less (Cast to bfloat16 and per-channel
    DequantizeLinear need opset 13)."""
    current = ai_onnx_opset(model)
    if current is None or current >= version:
        return model
    from onnx import version_converter

    from infer_kit.errors import InferKitError

    try:
        return version_converter.convert_version(model, version)
    except Exception as exc:  # the converter raises plain RuntimeErrors for ops it cannot convert
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InferKitError(f"cannot raise the model from opset {current} to {version}: {first}",
                            hint=f"re-export it with opset_version={version}") from None


def expose(model: onnx.ModelProto, names: list[str]) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of ``model`` with the float tensors among ``names`` added as graph outputs; (copy, names exposed)."""
    import onnx

    out = copy_model(model)
    types = elem_types(out)
    existing = {o.name for o in out.graph.output}
    picked = []
    for name in names:
        if name in existing:
            picked.append(name)
            continue
        if types.get(name, ONNX_FLOAT) not in FLOAT_TYPES:
            continue
        value = onnx.ValueInfoProto()
        value.name = name  # no type: ONNX Runtime accepts graph outputs without one
        out.graph.output.append(value)
        existing.add(name)
        picked.append(name)
    return out, picked


def analysis_session(model: onnx.ModelProto, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for a graph with exposed intermediates (level basic: no fusion drops them)."""
    import onnxruntime as ort

    from infer_kit.errors import InferKitError
    from infer_kit.workers import cpu_count

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.intra_op_num_threads = threads or cpu_count()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(model.SerializeToString(), sess_options=options,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise InferKitError(f"ONNX Runtime cannot run the graph {model.graph.name or '(unnamed)'}: {first}") from None
