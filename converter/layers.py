"""Per-layer comparison of two graphs (msit's ``debug compare``, Polygraphy's ``--mark all``).

Both graphs run on the same preprocessed inputs with their intermediate tensors exposed, and
tensors are matched across them by name, through what the emulation inserted:

* the rounding pass keeps ``<name>`` for the value the device holds (its float32 accumulator is
  ``<name>__acc``), so a reference tensor is compared with the rounded value;
* an INT8 (QDQ) target holds ``DequantizeLinear(QuantizeLinear(<name>))``: that is compared;
* the reference input ``x`` is compared with ``x__aipp_out`` in an emulated OM with AIPP (AIPP's
  float16 output cast to float32), and then the reference is fed exactly that tensor, so what is
  measured is the network's error, not the preprocessing's;
* what exists only in the target (AIPP nodes, Casts, ``__acc``, ``__r<fmt>``, Q/DQ) is skipped.

This module is in the converter because matching needs the naming rules of the converter's own
passes (``emulate``, ``rounding``, ``quantize``); it runs ONNX Runtime directly, as export
verification does (the runtime stage sits above the converter).

Per matched tensor, over all samples: cosine similarity, max |a - b|, max relative error
``max|a - b| / max|a|`` and relative L2 error ``||a - b|| / ||a||``. The first diverging layer is
the first tensor, in the reference's order, whose relative L2 error exceeds both ``jump`` times
the largest before it and ``floor``: where the error is born, not where it is largest.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer_kit.artifacts import describe_model, onnx_io
from infer_kit.console import log
from infer_kit.converter.graphs import FLOAT_TYPES, analysis_session, consumers, elem_types, expose, producers
from infer_kit.errors import InferKitError
from infer_kit.fsutil import check_output_file, write_json_atomic

if TYPE_CHECKING:
    import numpy as np
    import onnx

LAYERS_FORMAT = "infer-kit/layer-comparison"
AIPP_OUTPUT = "{}__aipp_out"
DEFAULT_SAMPLES = 8
JUMP = 10.0
FLOOR = 1e-3


@dataclass(frozen=True)
class LayerDiff:
    tensor: str
    node: str
    op_type: str
    target_tensor: str
    cosine: float
    max_abs: float
    max_rel: float
    rel_l2: float


@dataclass(frozen=True)
class LayerComparison:
    reference: Path
    target: Path
    samples: int
    samples_text: str
    layers: tuple[LayerDiff, ...]
    first: LayerDiff | None
    unmatched: int  # reference tensors with no counterpart in the target
    seconds: float
    output_path: Path | None = None
    jump: float = JUMP
    floor: float = FLOOR

    @property
    def worst(self) -> LayerDiff | None:
        return max(self.layers, key=lambda d: d.rel_l2, default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"format": LAYERS_FORMAT, "version": 1, "reference": str(self.reference), "target": str(self.target),
                "samples": self.samples, "inputs": self.samples_text, "jump": self.jump, "floor": self.floor,
                "unmatched": self.unmatched, "seconds": round(self.seconds, 3),
                "first_divergence": asdict(self.first) if self.first else None,
                "layers": [asdict(d) for d in self.layers]}


@dataclass
class _Accumulator:
    xy: float = 0.0
    xx: float = 0.0
    yy: float = 0.0
    dd: float = 0.0
    max_abs: float = 0.0
    max_x: float = 0.0
    count: int = 0
    mismatched: bool = False

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        import numpy as np

        if a.shape != b.shape:
            self.mismatched = True
            return
        x = a.astype(np.float64).ravel()
        y = b.astype(np.float64).ravel()
        d = x - y
        self.count += 1
        self.xy += float(x @ y)
        self.xx += float(x @ x)
        self.yy += float(y @ y)
        self.dd += float(d @ d)
        self.max_abs = max(self.max_abs, float(np.abs(d).max(initial=0.0)))
        self.max_x = max(self.max_x, float(np.abs(x).max(initial=0.0)))

    def diff(self, tensor: str, node: str, op_type: str, target: str) -> LayerDiff:
        nx, ny = self.xx**0.5, self.yy**0.5
        cosine = self.xy / (nx * ny) if nx > 0 and ny > 0 else float(nx == ny)
        return LayerDiff(tensor, node, op_type, target, cosine, self.max_abs, self.max_abs / max(self.max_x, 1e-30),
                         self.dd**0.5 / max(nx, 1e-30))


def quantized_view(model: onnx.ModelProto, name: str) -> str:
    """The tensor an INT8 graph's consumers see for ``name``: the output of DequantizeLinear(QuantizeLinear(name))."""
    readers = consumers(model.graph)
    for q in readers.get(name, []):
        if q.op_type == "QuantizeLinear":
            for dq in readers.get(q.output[0], []):
                if dq.op_type == "DequantizeLinear":
                    return dq.output[0]
    return name


def match_tensors(reference: onnx.ModelProto, target: onnx.ModelProto) -> list[tuple[str, str]]:
    """(reference tensor, target tensor) pairs in the reference's order."""
    written = {name for node in target.graph.node for name in node.output if name}
    target_inputs = {v.name for v in target.graph.input}
    initializers = {init.name for init in reference.graph.initializer}
    pairs = []
    for value in reference.graph.input:
        if value.name in initializers:
            continue
        alias = AIPP_OUTPUT.format(value.name)
        if alias in written:
            pairs.append((value.name, alias))
        elif value.name in target_inputs:
            pairs.append((value.name, value.name))
    for node in reference.graph.node:
        for name in node.output:
            if name and (name in written or name in target_inputs):
                pairs.append((name, quantized_view(target, name)))
    return pairs


def first_divergence(layers: list[LayerDiff], jump: float = JUMP, floor: float = FLOOR) -> LayerDiff | None:
    worst = 0.0
    for layer in layers:
        if layer.rel_l2 > max(floor, jump * worst):
            return layer
        worst = max(worst, layer.rel_l2)
    return None


def compare_layers(reference: str | os.PathLike[str], target: str | os.PathLike[str],
                   inputs: str | os.PathLike[str], *, samples: int | None = DEFAULT_SAMPLES,
                   output: str | os.PathLike[str] | None = None, jump: float = JUMP, floor: float = FLOOR,
                   threads: int | None = None) -> LayerComparison:
    """Per-layer errors of ``target`` against ``reference`` on the first ``samples`` tensors of ``inputs``.

    ``target`` is an emulated artifact (``.emu.onnx`` or its manifest), an INT8 ``.int8.onnx``
    or any ONNX model; ``inputs`` a folder ``preprocess`` wrote for the target.
    """
    import numpy as np

    from infer_kit.aipp import parse_config, resolve_geometry, source_shape
    from infer_kit.converter.samples import folder_samples
    from infer_kit.metadata import load_onnx

    started = time.perf_counter()
    out = Path(output) if output is not None else None
    if out is not None:
        check_output_file(out, what="layer comparison")
    if samples is not None and samples < 1:
        raise InferKitError(f"--samples must be at least 1, got {samples}")
    ref_desc, target_desc = describe_model(reference), describe_model(target)
    for desc in (ref_desc, target_desc):
        if desc.kind == "om":
            raise InferKitError(f"{desc.path.name} is a compiled .om, whose layers only the device runs",
                                hint="compare the emulated artifact <base>.emu.onnx")
    ref_model, target_model = load_onnx(ref_desc.path), load_onnx(target_desc.path)
    (ref_in,), (target_in,) = _single_input(ref_model, ref_desc.path), _single_input(target_model, target_desc.path)
    aipp_front = AIPP_OUTPUT.format(target_in.name) in {n for node in target_model.graph.node for n in node.output}
    op = None
    if aipp_front:
        text = (target_desc.manifest or {}).get("aipp_config")
        if not text:
            raise InferKitError(f"{target_desc.path.name} has AIPP in front but no manifest with its config",
                                hint="compare the artifact's .manifest.json or keep it beside the .emu.onnx")
        op = parse_config(text, path=target_desc.manifest_path).op_for_input(0)
    network_chw = _network_chw(ref_in, target_in, target_desc)
    sample_set = folder_samples(inputs, chw=network_chw, spec=target_desc.spec, op=op, limit=samples,
                                what="input", strict_limit=False)
    if (sample_set.layout == "aipp") != aipp_front:
        want = "aipp (uint8 sources)" if aipp_front else "float (float32 CHW)"
        raise InferKitError(f"input folder {sample_set.folder} holds {sample_set.layout} tensors but "
                            f"{target_desc.path.name} takes {want} tensors",
                            hint=f"preprocess for it: 'infer-kit preprocess SRC DST --for {target_desc.path}'")
    if ref_in.dtype != "float32":
        raise InferKitError(f"the reference {ref_desc.path.name} takes {ref_in.dtype} input",
                            hint="give the float32 ONNX model as the reference (first), the artifact second")
    if not aipp_front and target_in.dtype != "float32":
        raise InferKitError(f"{target_desc.path.name} takes {target_in.dtype} input and has no AIPP front "
                            "infer-kit's emulation built", hint="compare an .emu.onnx, an .int8.onnx or a float32 ONNX")
    target_chw = _static_chw(target_in)
    if not aipp_front and target_chw is not None and target_chw != network_chw:
        raise InferKitError(f"the reference {ref_desc.path.name} takes {'x'.join(map(str, network_chw))} images "
                            f"and {target_desc.path.name} {'x'.join(map(str, target_chw))}",
                            hint="compare a model with the artifact built from it")
    pairs = match_tensors(ref_model, target_model)
    if not pairs:
        raise InferKitError(f"no tensor of {ref_desc.path.name} has a counterpart in {target_desc.path.name}",
                            hint="compare a model with the artifact built from it")
    target_batch = target_in.shape[0] if target_in.shape and target_in.shape[0] else None
    ref_batch = ref_in.shape[0] if ref_in.shape and ref_in.shape[0] else None
    batch = target_batch or ref_batch or min(sample_set.count, 8)
    if ref_batch is not None and ref_batch != batch:
        raise InferKitError(f"the reference {ref_desc.path.name} has a fixed batch {ref_batch} and the target "
                            f"{target_desc.path.name} batch {batch}", hint="give the exported ONNX (dynamic batch)")
    ref_names = [r for r, _ in pairs]
    target_names = list(dict.fromkeys([t for _, t in pairs] + ([AIPP_OUTPUT.format(target_in.name)] if aipp_front
                                                                else [])))
    ref_exposed, _ = expose(ref_model, ref_names)
    target_exposed, _ = expose(target_model, target_names)
    ref_session, target_session = analysis_session(ref_exposed, threads), analysis_session(target_exposed, threads)
    ref_outputs = [o.name for o in ref_session.get_outputs()]
    target_outputs = [o.name for o in target_session.get_outputs()]
    accumulators = {pair: _Accumulator() for pair in pairs}
    log.info("comparing %d tensor pair(s) of %s and %s on %s", len(pairs), ref_desc.path.name, target_desc.path.name,
             sample_set.describe())
    dtype = np.uint8 if aipp_front else np.float32
    # one file's tensor (the target's own input shape may leave H and W dynamic)
    item = tuple(source_shape(op, resolve_geometry(op, network_chw[1:]))) if op is not None else network_chw
    for raw, real in sample_set.raw_batches(batch):
        feed = raw.view(dtype).reshape((batch, *item))
        b_values = dict(zip(target_outputs, _run(target_session, target_outputs, {target_in.name: feed},
                                                 target_desc.path), strict=True))
        ref_feed = b_values[AIPP_OUTPUT.format(target_in.name)] if aipp_front else feed
        a_values = dict(zip(ref_outputs, _run(ref_session, ref_outputs, {ref_in.name: ref_feed}, ref_desc.path),
                            strict=True))
        for (r, t), acc in accumulators.items():
            if r in a_values and t in b_values:
                acc.add(a_values[r][:real], b_values[t][:real])
    writer = producers(ref_model.graph)
    layers = []
    for (r, t), acc in accumulators.items():
        if acc.mismatched or acc.count == 0:
            continue
        node = writer.get(r)
        layers.append(acc.diff(r, node.name if node else "(input)", node.op_type if node else "Input", t))
    compared = {d.tensor for d in layers}
    types = elem_types(ref_model)
    float_outputs = {name for node in ref_model.graph.node for name in node.output
                     if name and types.get(name, 1) in FLOAT_TYPES}
    unmatched = len(float_outputs - compared)
    result = LayerComparison(ref_desc.path, target_desc.path, sample_set.count, sample_set.describe(),
                             tuple(layers), first_divergence(layers, jump, floor), unmatched,
                             time.perf_counter() - started, out, jump, floor)
    if out is not None:
        write_json_atomic(out, result.to_dict())
    return result


def _run(session: Any, names: list[str], feed: dict[str, Any], path: Path) -> list[Any]:
    try:
        return list(session.run(names, feed))
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidArgument types
        text = str(exc).strip()
        first = text.splitlines()[0][:300] if text else type(exc).__name__
        raise InferKitError(f"ONNX Runtime cannot run {path.name} on the inputs: {first}",
                            hint="compare a model with the artifact built from it, on a folder preprocessed "
                                 "for the artifact") from None


def _static_chw(desc: Any) -> tuple[int, int, int] | None:
    if desc.dtype == "float32" and len(desc.shape) == 4 and all(d for d in desc.shape[1:]):
        return (int(desc.shape[1]), int(desc.shape[2]), int(desc.shape[3]))
    return None


def _single_input(model: onnx.ModelProto, path: Path) -> tuple[Any]:
    inputs, _ = onnx_io(model)
    if len(inputs) != 1:
        raise InferKitError(f"{path.name} has {len(inputs)} inputs; the per-layer comparison takes one image input")
    return (inputs[0],)


def _network_chw(ref_in: Any, target_in: Any, target_desc: Any) -> tuple[int, int, int]:
    """C, H, W of the network's float input (the reference's, else the target's, else the spec's crop)."""
    for desc in (ref_in, target_in):
        chw = _static_chw(desc)
        if chw is not None:
            return chw
    spec = target_desc.spec
    if spec is None:
        raise InferKitError(f"cannot tell the input size of {target_desc.path.name}", hint="give a model with a spec")
    return (3, spec.crop, spec.crop)

