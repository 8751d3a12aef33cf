"""float16 and bfloat16 as the AI Core computes them, on ONNX Runtime's float32 kernels.

For every operator a precision mode puts in low precision (a :class:`Policy` per node, from
:mod:`infer_kit.converter.precision`):

* its operands are low-precision values: weights are rounded once (round to nearest, ties to
  even, as the device's Cast and numpy's ``astype`` round); an activation is low precision
  because its producer wrote it so, or gets a rounded copy where a float32 tensor enters a
  low-precision operator (where ATC inserts a Cast);
* the arithmetic inside the operator is float32 (ONNX Runtime's float32 kernel; the Cube
  accumulates in float32);
* its result is rounded once, where the device writes it.

A rounding is a ``Cast(to fp16|bf16) -> Cast(to float32)`` pair, placed where it is cheapest and
still exact:

* a tensor is rounded once, never at the producer's output *and* again at the consumer's input;
* the rounding is deferred through single-consumer operators that commute with it
  (:data:`COMMUTING_OPS`: Relu, MaxPool, reshapes...; round-to-nearest-even is monotone and odd
  and these operators only select, move or zero values), so Conv -> Relu -> MaxPool is rounded
  once, after the MaxPool, and ONNX Runtime's Conv+Relu fusion survives;
* a tensor already representable (rounded weights, AIPP's float16 output, integers cast to
  float, selections of representable values) is not rounded again;
* an Add, Sub, Mul or Div of two float16 values computed in float32 and rounded once equals the
  correctly rounded float16 operation (float32 has more than 2 x 11 + 2 significant bits, so the
  double rounding is harmless); the same holds for bfloat16;
* BatchNormalization is folded into the preceding convolution first (in float64, stored as
  float32), as ATC folds it, so the folded weights are what gets rounded.

``residual="exact"`` (the default) rounds a Conv output before the residual Add it feeds: the
device writes the convolution's result in float16, then adds. ``residual="fused"`` skips that
rounding (one rounding after Conv+Add+Relu): faster on ONNX Runtime, **not** the device's
arithmetic; it exists to measure what exactness costs.

Names: an original tensor name keeps meaning "the value the device holds". When an output is
rounded, its producer writes ``<name>__acc`` (the float32 accumulator) and the rounding pair
writes ``<name>``; a rounded copy of a float32 tensor is ``<name>__rfp16`` / ``<name>__rbf16``.
A tensor whose rounding was deferred to a later operator keeps its float32 value under its name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from infer_kit.converter.graphs import (
    ONNX_BFLOAT16,
    ONNX_BOOL,
    ONNX_FLOAT,
    ONNX_FLOAT16,
    ONNX_INT8,
    ONNX_UINT8,
    at_least_opset,
    consumers,
    copy_model,
    drop_unused_initializers,
    elem_types,
    initializer_map,
    unique_namer,
)

if TYPE_CHECKING:
    import numpy as np
    import onnx

FP32, FP16, BF16 = "fp32", "fp16", "bf16"
ONNX_TYPE = {FP16: ONNX_FLOAT16, BF16: ONNX_BFLOAT16}
FORMAT_NAMES = {FP32: "float32", FP16: "float16", BF16: "bfloat16"}

# Single-input operators whose outputs are input values moved, selected, zeroed or sign-flipped:
# they keep a tensor representable and commute with round-to-nearest-even.
COMMUTING_OPS = frozenset({
    "Relu", "MaxPool", "GlobalMaxPool", "Flatten", "Reshape", "Transpose", "Identity", "Squeeze", "Unsqueeze",
    "Slice", "Gather", "Neg", "Abs", "Tile", "Expand", "DepthToSpace", "SpaceToDepth", "ReduceMax", "ReduceMin",
})
# Multi-input operators that only select values: representable in, representable out.
SELECTING_OPS = frozenset({"Concat", "Max", "Min", "Split", "Pad", "Clip", "Where"})
# (op type, input index) of float inputs that are parameters, not operands: never rounded.
NON_OPERAND_INPUTS = frozenset({("Resize", 1), ("Resize", 2), ("Upsample", 1), ("Clip", 1), ("Clip", 2)})
CUBE_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})


@dataclass(frozen=True)
class Policy:
    """How one operator computes: operands rounded to ``inputs``, its result rounded to ``output``."""

    inputs: str = FP16
    output: str = FP16

    @property
    def is_float32(self) -> bool:
        return self.inputs == FP32 and self.output == FP32


FLOAT32 = Policy(FP32, FP32)


@dataclass
class EmulationReport:
    """What the pass did, for the manifest."""

    rounded_outputs: list[str] = field(default_factory=list)   # tensors the device writes in low precision
    rounded_copies: list[str] = field(default_factory=list)    # float32 tensors entering a low-precision op
    deferred: int = 0                                          # roundings moved past a commuting operator
    weights_rounded: int = 0
    bn_folded: int = 0
    low_precision_nodes: int = 0
    float32_nodes: int = 0
    opset: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rounded_outputs": len(self.rounded_outputs), "rounded_copies": len(self.rounded_copies),
                "deferred_roundings": self.deferred, "weights_rounded": self.weights_rounded,
                "batchnorm_folded": self.bn_folded, "low_precision_nodes": self.low_precision_nodes,
                "float32_nodes": self.float32_nodes, "opset": self.opset}

    def describe(self) -> str:
        return (f"{self.low_precision_nodes} operator(s) in low precision, {self.float32_nodes} in float32; "
                f"{len(self.rounded_outputs)} rounded output(s), {len(self.rounded_copies)} rounded input copy(ies), "
                f"{self.weights_rounded} weight(s) rounded, {self.bn_folded} BatchNormalization folded")


# ---- numpy references: what the ONNX graph must match bit for bit ------------------------------------

def round_fp16(x: np.ndarray) -> np.ndarray:
    """float32 -> float16 (round to nearest, ties to even) -> float32."""
    import numpy as np

    with np.errstate(over="ignore"):  # beyond 65504 becomes inf, as the device's cast (the range check warns)
        return np.asarray(x, np.float32).astype(np.float16).astype(np.float32)


def round_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 (round to nearest, ties to even; NaN stays NaN, overflow gives inf) -> float32."""
    import numpy as np

    x = np.ascontiguousarray(x, np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    out = (rounded & 0xFFFFFFFF).astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), x, out).astype(np.float32)


ROUND = {FP16: round_fp16, BF16: round_bf16}


# ---- BatchNormalization folding (ATC folds Conv+BN before it chooses precisions) ----------------------

def fold_batchnorm(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy of ``model`` with every BatchNormalization that is the only reader of a Conv folded into it.

    The Conv then writes the BatchNormalization's output name. Folded in float64, stored as float32.
    """
    import numpy as np
    from onnx import numpy_helper

    out = copy_model(model)
    graph = out.graph
    inits = initializer_map(graph)
    readers = consumers(graph)
    graph_outputs = {o.name for o in graph.output}
    new_name = unique_namer(out)
    nodes = list(graph.node)
    by_output = {name: i for i, node in enumerate(nodes) for name in node.output if name}
    removed: set[int] = set()
    for i, bn in enumerate(nodes):
        if bn.op_type != "BatchNormalization" or len([o for o in bn.output if o]) != 1 or len(bn.input) < 5:
            continue
        j = by_output.get(bn.input[0])
        if j is None:
            continue
        conv = nodes[j]
        if (conv.op_type != "Conv" or conv.output[0] in graph_outputs or len(readers[conv.output[0]]) != 1
                or conv.input[1] not in inits or any(name not in inits for name in bn.input[1:5])
                or (len(conv.input) > 2 and conv.input[2] and conv.input[2] not in inits)):
            continue
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        scale, beta, mean, var = (numpy_helper.to_array(inits[name]).astype(np.float64) for name in bn.input[1:5])
        weight = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)
        bias = (numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64)
                if len(conv.input) > 2 and conv.input[2] else np.zeros(weight.shape[0]))
        k = scale / np.sqrt(var + eps)
        w_name, b_name = new_name(f"{conv.input[1]}__bnfold"), new_name(f"{conv.name or conv.output[0]}__bias_bnfold")
        graph.initializer.extend([
            numpy_helper.from_array((weight * k.reshape(-1, *[1] * (weight.ndim - 1))).astype(np.float32), w_name),
            numpy_helper.from_array(((bias - mean) * k + beta).astype(np.float32), b_name),
        ])
        del conv.input[1:]
        conv.input.extend([w_name, b_name])
        conv.output[0] = bn.output[0]
        removed.add(i)
    keep = [node for i, node in enumerate(nodes) if i not in removed]
    del graph.node[:]
    graph.node.extend(keep)
    drop_unused_initializers(out)
    return out, len(removed)


# ---- the pass ------------------------------------------------------------------------------------------

def emulate_low_precision(model: onnx.ModelProto, policy: Callable[[onnx.NodeProto], Policy] | None = None, *,
                          fold_bn: bool = True, residual: str = "exact",
                          input_formats: dict[str, str] | None = None) -> tuple[onnx.ModelProto, EmulationReport]:
    """A copy of ``model`` computing as the AI Core would under ``policy`` (default: every operator float16).

    ``input_formats`` names graph inputs whose values are already representable, e.g. AIPP's
    float16 output: ``{"actual_input_1": "fp16"}``. ``policy`` is asked once per node (after BN folding).
    """
    from onnx import helper, numpy_helper

    if residual not in ("exact", "fused"):
        raise ValueError("residual must be 'exact' or 'fused'")
    policy = policy or (lambda node: Policy())
    report = EmulationReport()
    work = model
    if fold_bn:
        work, report.bn_folded = fold_batchnorm(work)
    work = copy_model(work)
    graph = work.graph
    types = elem_types(work)
    inits = initializer_map(graph)
    readers = consumers(graph)
    graph_outputs = {o.name for o in graph.output}
    new_name = unique_namer(work)

    def is_float(name: str) -> bool:
        return types.get(name, ONNX_FLOAT) == ONNX_FLOAT

    nodes = list(graph.node)
    policies = [policy(node) for node in nodes]
    producer = {name: i for i, node in enumerate(nodes) for name in node.output if name}
    # rep[name]: the formats the tensor's values are exactly representable in
    rep: dict[str, set[str]] = {v.name: {(input_formats or {})[v.name]} if v.name in (input_formats or {}) else set()
                                for v in graph.input}
    pending: dict[str, str] = {}            # tensor -> format it still has to be rounded to
    copies: dict[tuple[str, str], str] = {}
    weight_copies: dict[tuple[str, str], str] = {}
    after: dict[int, list[onnx.NodeProto]] = {}  # node index -> nodes emitted right after it (-1: first)

    def emit_after(name: str, new_nodes: list[onnx.NodeProto]) -> None:
        after.setdefault(producer.get(name, -1), []).extend(new_nodes)

    def pair(src: str, dst: str, fmt: str, label: str) -> list[onnx.NodeProto]:
        low = new_name(f"{dst}__{fmt}")
        return [helper.make_node("Cast", [src], [low], name=new_name(f"{label}/to_{fmt}"), to=ONNX_TYPE[fmt]),
                helper.make_node("Cast", [low], [dst], name=new_name(f"{label}/to_fp32"), to=ONNX_FLOAT)]

    def materialize(name: str) -> None:
        """Round ``name`` where it is written: the producer writes ``name__acc``, the rounding pair ``name``."""
        fmt = pending.pop(name)
        index = producer[name]
        node = nodes[index]
        acc = new_name(f"{name}__acc")
        node.output[list(node.output).index(name)] = acc
        producer[acc] = index
        emit_after(acc, pair(acc, name, fmt, f"{name}/round"))
        rep[name] = {fmt}
        report.rounded_outputs.append(name)

    def rounded_copy(name: str, fmt: str) -> str:
        key = (name, fmt)
        if key not in copies:
            out = new_name(f"{name}__r{fmt}")
            emit_after(name, pair(name, out, fmt, f"{name}/copy"))
            copies[key] = out
            rep[out] = {fmt}
            report.rounded_copies.append(name)
        return copies[key]

    def rounded_weight(name: str, fmt: str) -> str:
        key = (name, fmt)
        if key not in weight_copies:
            out = new_name(f"{name}__w{fmt}")
            graph.initializer.append(numpy_helper.from_array(ROUND[fmt](numpy_helper.to_array(inits[name])), out))
            weight_copies[key] = out
            rep[out] = {fmt}
            report.weights_rounded += 1
        return weight_copies[key]

    def feeds_residual_add(name: str, node: onnx.NodeProto) -> bool:
        index = producer.get(name)
        return node.op_type in ("Add", "Sum") and index is not None and nodes[index].op_type == "Conv"

    for node, pol in zip(nodes, policies, strict=True):  # an ONNX graph is topologically sorted
        if pol.is_float32:
            report.float32_nodes += 1
        else:
            report.low_precision_nodes += 1
        operands = [(i, name) for i, name in enumerate(node.input)
                    if name and is_float(name) and (node.op_type, i) not in NON_OPERAND_INPUTS]
        commuting = node.op_type in COMMUTING_OPS and len(operands) == 1 and operands[0][0] == 0
        deferred = None
        for i, name in operands:
            if name in inits and name not in producer:
                if pol.inputs != FP32 and node.op_type != "Cast":
                    node.input[i] = rounded_weight(name, pol.inputs)
                continue
            if name in pending:
                fmt = pending[name]
                if residual == "fused" and feeds_residual_add(name, node) and len(readers[name]) == 1:
                    pending.pop(name)  # fused: the conv's float32 result enters the Add unrounded
                    rep[name] = set()
                    continue
                if (commuting and pol.inputs == fmt and pol.output == fmt and len(readers[name]) == 1
                        and name not in graph_outputs):
                    deferred = fmt
                    pending.pop(name)
                    report.deferred += 1
                    continue
                materialize(name)
            if pol.inputs != FP32 and pol.inputs not in rep.get(name, set()):
                node.input[i] = rounded_copy(name, pol.inputs)
        outputs = [name for name in node.output if name and is_float(name)]
        if deferred is not None:
            for name in outputs:
                pending[name] = deferred
        elif node.op_type == "Cast":
            for name in outputs:
                rep[name] = _cast_rep(node, types)
                if pol.output != FP32 and pol.output not in rep[name]:
                    pending[name] = pol.output
        elif node.op_type in COMMUTING_OPS | SELECTING_OPS:
            held = [rep.get(node.input[i], set()) for i, _ in operands] or [set()]
            common = set.intersection(*held)
            for name in outputs:
                rep[name] = set(common)
                if pol.output != FP32 and pol.output not in common:
                    pending[name] = pol.output
        else:
            for name in outputs:
                rep[name] = set()
                if pol.output != FP32:
                    pending[name] = pol.output
    for name in list(pending):
        if name in graph_outputs or readers.get(name):
            materialize(name)
        else:
            pending.pop(name)

    ordered = list(after.get(-1, []))
    for i, node in enumerate(nodes):
        ordered.append(node)
        ordered.extend(after.get(i, []))
    del graph.node[:]
    graph.node.extend(ordered)
    drop_unused_initializers(work)
    del graph.value_info[:]
    if any(n.op_type == "Cast" and any(a.name == "to" and a.i == ONNX_BFLOAT16 for a in n.attribute)
           for n in graph.node):
        work = at_least_opset(work, 13)  # Cast takes bfloat16 from opset 13 on; ONNX Runtime refuses it before
    report.opset = next((o.version for o in work.opset_import if o.domain in ("", "ai.onnx")), None)
    return work, report


def _cast_rep(node: onnx.NodeProto, types: dict[str, int]) -> set[str]:
    """The formats a Cast's output is representable in, from its input's type."""
    source = types.get(node.input[0], ONNX_FLOAT)
    if source == ONNX_FLOAT16:
        return {FP16}
    if source == ONNX_BFLOAT16:
        return {BF16}
    if source in (ONNX_UINT8, ONNX_INT8, ONNX_BOOL):
        return {FP16, BF16}  # |v| <= 255: exact in both
    return set()
