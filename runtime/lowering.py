"""Run an emulated low-precision graph fast on ONNX Runtime's CPU provider, computing exactly the same values.

An emulated artifact rounds with ``Cast(to fp16|bf16) -> Cast(to float32)`` pairs. ONNX Runtime's
NCHWc layout pass (level ALL) does not know Cast, so around every pair it converts the tensor
out of its blocked layout and back (ReorderOutput + ReorderInput: about 100 extra passes over
memory in ResNet-50). At session creation, instead:

1. every rounding pair on a 4-D tensor becomes a *marker* the NCHWc pass carries in the blocked
   layout, a one-input ``Concat(axis=1)`` (an identity no other optimizer removes);
2. ONNX Runtime optimizes that graph at level ALL and saves it;
3. in the saved graph each marker becomes the rounding pair again (Cast is elementwise: it rounds
   a blocked tensor as it rounds a plain one);
4. the session runs that graph with graph optimizations off (it is optimized already).

A residual Add of a rounded tensor also gets an identity BatchNormalization (scale 1, bias 0,
epsilon 0) on that input: ONNX Runtime turns it into a 1x1 depthwise NCHWc convolution and fuses
the Add and a following Relu into it, so rounding -> Add -> Relu costs one pass; ``x * 1 + 0`` is
exact. The lowered graph is bit-identical to the portable one at level ALL.

The saved graph is specific to this machine (block size, reordered weights): it is built when a
session opens and never written next to the artifact. If ONNX Runtime ever removes a marker
(fewer restored than placed), the session falls back to the portable graph with a warning.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from infer_kit.console import log

if TYPE_CHECKING:
    import onnx

MARKER_PREFIX = "__infer_kit_round__"
_FLOAT, _FLOAT16, _BFLOAT16 = 1, 10, 16
_FORMAT = {_FLOAT16: "fp16", _BFLOAT16: "bf16"}
_TO = {name: code for code, name in _FORMAT.items()}


@dataclass(frozen=True)
class Lowering:
    """What :func:`lower_for_ort` did: markers placed and restored, layout conversions left."""

    markers: int
    restored: int
    reorders: int

    @property
    def complete(self) -> bool:
        return self.markers == self.restored


def _to(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "to"), -1)


def rounding_pairs(model: onnx.ModelProto) -> list[tuple[int, int]]:
    """Node indices of (Cast to fp16/bf16, Cast back to float32) pairs whose low tensor nothing else reads."""
    graph = model.graph
    users: dict[str, list[int]] = {}
    for j, node in enumerate(graph.node):
        for name in node.input:
            users.setdefault(name, []).append(j)
    outputs = {o.name for o in graph.output}
    pairs = []
    for i, node in enumerate(graph.node):
        if node.op_type != "Cast" or _to(node) not in _FORMAT or node.output[0] in outputs:
            continue
        use = users.get(node.output[0], [])
        if len(use) == 1 and graph.node[use[0]].op_type == "Cast" and _to(graph.node[use[0]]) == _FLOAT:
            pairs.append((i, use[0]))
    return pairs


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int | None, ...]]:
    import onnx

    try:
        graph = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # a graph shape inference cannot handle: no tensor qualifies
        return {}
    out = {}
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.type.tensor_type.HasField("shape"):
            out[value.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                    for d in value.type.tensor_type.shape.dim)
    return out


def with_markers(model: onnx.ModelProto, add_via_bn: bool = True) -> tuple[onnx.ModelProto, int]:
    """A copy with the rounding pairs on 4-D tensors replaced by markers; (copy, markers placed)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    out = onnx.ModelProto.FromString(model.SerializeToString())
    graph = out.graph
    shapes = _shapes(out)
    drop, marker_at = set(), {}
    for k, (down_i, up_i) in enumerate(rounding_pairs(out)):
        down, up = graph.node[down_i], graph.node[up_i]
        if len(shapes.get(down.input[0], ())) != 4:
            continue
        marker_at[up_i] = helper.make_node("Concat", [down.input[0]], [up.output[0]],
                                           name=f"{MARKER_PREFIX}{_FORMAT[_to(down)]}__{k}", axis=1)
        drop.update({down_i, up_i})
    nodes = [marker_at.get(i, node) for i, node in enumerate(graph.node) if i in marker_at or i not in drop]
    if add_via_bn:
        marked = {n.output[0] for n in marker_at.values()}
        users: dict[str, int] = {}
        for node in nodes:
            for name in node.input:
                users[name] = users.get(name, 0) + 1
        constants: dict[int, list[str]] = {}
        with_bn = []
        for node in nodes:
            if node.op_type == "Add" and len(node.input) == 2 and all(len(shapes.get(x, ())) == 4 for x in node.input):
                pick = next((x for x in node.input if x in marked and users.get(x) == 1 and shapes[x][1]), None)
                if pick is not None:
                    channels = int(shapes[pick][1])  # type: ignore[arg-type]
                    if channels not in constants:
                        names = [f"{MARKER_PREFIX}bn{channels}_{part}" for part in ("scale", "bias", "mean", "var")]
                        values = [np.ones(channels, np.float32), np.zeros(channels, np.float32),
                                  np.zeros(channels, np.float32), np.ones(channels, np.float32)]
                        graph.initializer.extend(numpy_helper.from_array(v, n) for v, n in zip(values, names,
                                                                                               strict=True))
                        constants[channels] = names
                    bn_out = f"{pick}{MARKER_PREFIX}bn"
                    with_bn.append(helper.make_node("BatchNormalization", [pick, *constants[channels]], [bn_out],
                                                    name=f"{pick}{MARKER_PREFIX}bn", epsilon=0.0))
                    node.input[list(node.input).index(pick)] = bn_out
            with_bn.append(node)
        nodes = with_bn
    del graph.node[:]
    graph.node.extend(nodes)
    return out, len(marker_at)


def restore_markers(optimized: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """The optimized graph with every marker turned back into a rounding pair; (graph, markers restored)."""
    from onnx import helper

    nodes, count = [], 0
    for node in optimized.graph.node:
        if node.op_type == "Concat" and node.name.startswith(MARKER_PREFIX) and len(node.input) == 1:
            fmt = node.name[len(MARKER_PREFIX):].split("__")[0]
            low = f"{node.output[0]}__{fmt}_blocked"
            nodes.append(helper.make_node("Cast", [node.input[0]], [low], name=f"{node.name}/down", to=_TO[fmt]))
            nodes.append(helper.make_node("Cast", [low], [node.output[0]], name=f"{node.name}/up", to=_FLOAT))
            count += 1
        else:
            nodes.append(node)
    del optimized.graph.node[:]
    optimized.graph.node.extend(nodes)
    return optimized, count


def needs_lowering(model: onnx.ModelProto) -> bool:
    return bool(rounding_pairs(model))


def lower_for_ort(model: onnx.ModelProto, threads: int | None = None,
                  add_via_bn: bool = True) -> tuple[onnx.ModelProto, Lowering]:
    """An ONNX Runtime-optimized (machine-specific) copy of ``model`` computing the same roundings, to be run
    with optimizations off."""
    import onnx
    import onnxruntime as ort

    marked, placed = with_markers(model, add_via_bn)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "optimized.onnx")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = threads
        options.optimized_model_filepath = path
        options.log_severity_level = 3  # "the optimized model is hardware specific" is what we want
        ort.InferenceSession(marked.SerializeToString(), options, providers=["CPUExecutionProvider"])
        optimized = onnx.load(path)
    lowered, restored = restore_markers(optimized)
    reorders = sum(1 for n in lowered.graph.node if n.op_type in ("ReorderInput", "ReorderOutput"))
    return lowered, Lowering(placed, restored, reorders)


def lowered_model_bytes(model: onnx.ModelProto, where: str, threads: int | None = None) -> bytes | None:
    """The lowered graph's bytes, or None (with a warning) when a marker was lost: then run the portable graph."""
    try:
        lowered, stats = lower_for_ort(model, threads)
    except Exception as exc:  # any ORT failure here only costs speed: the portable graph still runs
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        log.warning("%s: cannot lower the rounding casts for ONNX Runtime (%s); running the portable graph "
                    "(same values, slower)", where, text)
        return None
    if not stats.complete:
        log.warning("%s: ONNX Runtime removed %d of %d rounding markers; running the portable graph (same values, "
                    "slower)", where, stats.markers - stats.restored, stats.markers)
        return None
    log.debug("%s: %d rounding casts kept in ORT's blocked layout (%d reorders left)", where, stats.restored,
              stats.reorders)
    return lowered.SerializeToString()


def session_source(path: str | os.PathLike[str], threads: int | None) -> tuple[Any, bool]:
    """What to open for ``path``: (lowered bytes, True) for a graph with rounding pairs, else (path, False)."""
    import onnx

    model = onnx.load(str(path))
    if not needs_lowering(model):
        return str(path), False
    lowered = lowered_model_bytes(model, os.path.basename(path), threads)
    return (lowered, True) if lowered is not None else (str(path), False)
