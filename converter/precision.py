"""ATC's precision modes, in one table, and the per-operator policy each one gives the emulation.

:data:`MODES` holds every value ATC's ``--precision_mode`` and ``--precision_mode_v2`` take
(and infer-kit's ``int8``): which precision the Cube (matrix) operators and the vector
operators compute in, and how the emulation reproduces it with
:func:`~infer_kit.converter.rounding.emulate_low_precision` (float16 or bfloat16 operands,
float32 arithmetic inside an operator, a rounded result). Sources (hiascend.com, CANN 8.0 ATC
reference): ``--precision_mode`` (atlasatcparam_16_0067), ``--precision_mode_v2`` (_0069),
``--keep_dtype`` (_0074), ``--modify_mixlist`` (_0071); ``cube_fp16in_fp32out`` (GE API
atlasgeapi_07_0850); the mixed-precision lists (AOE aoepar_16_042).

``--keep_dtype`` (a file with one operator name per line, or ``OpType::TypeName``; ``#``
comments) keeps the named operators in their original dtype, float32 here; ATC ignores it under
``must_keep_origin_dtype`` / ``origin``. ``--modify_mixlist`` (JSON ``{"black-list": {"to-add":
[...], "to-remove": [...]}, "white-list": {...}}``, Ascend IR op types) edits the mixed lists.

**Assumption.** The real mixed-precision lists are not public: CANN ships them per chip in
``opp/built-in/op_impl/ai_core/tbe/config/<soc>/aic-<soc>-ops-info.json`` (``precision_reduce
flag``: true = white list, lowered; false = black list, kept float32; absent = gray, follows the
operator before it). The defaults here (:data:`ASSUMED_WHITE_LIST`, :data:`ASSUMED_BLACK_LIST`)
are Cube operators white and the precision-sensitive operators every AMP list keeps in float32
black; replace them from a CANN install with ``--modify-mixlist``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer_kit.converter.rounding import BF16, CUBE_OPS, FLOAT32, FP16, FP32, EmulationReport, Policy
from infer_kit.errors import InferKitError
from infer_kit.fsutil import read_text

if TYPE_CHECKING:
    import onnx

INT8 = "int8"


@dataclass(frozen=True)
class PrecisionMode:
    """One row of the table: a value ATC takes, what the AI Core does with it, and how it is emulated."""

    name: str
    flag: str            # the ATC option that takes it: --precision_mode, --precision_mode_v2, or "" (int8)
    same_as: str | None  # the --precision_mode value it is an alias of
    cube: str            # Conv, MatMul, Gemm (the Cube unit)
    vector: str          # every other operator
    emulation: str
    low: str | None      # fp16 | bf16 | None: the low format the emulation rounds to
    emulated: bool = True

    @property
    def canonical(self) -> str:
        return self.same_as or self.name


_LISTS = "white list lowered, black list float32, gray list follows the operator before it"
MODES: dict[str, PrecisionMode] = {m.name: m for m in (
    PrecisionMode("force_fp16", "--precision_mode", None, "float16 operands and result, float32 accumulation",
                  "float16", "every operator float16", FP16),
    PrecisionMode("allow_fp32_to_fp16", "--precision_mode", None, "float16 (float32 accumulation)",
                  "float32 where the operator has a float32 implementation", "Cube float16, the rest float32", FP16),
    PrecisionMode("allow_fp32_to_bf16", "--precision_mode", None, "bfloat16 (float32 accumulation)",
                  "float32 where the operator has a float32 implementation", "Cube bfloat16, the rest float32", BF16),
    PrecisionMode("must_keep_origin_dtype", "--precision_mode", None,
                  "original dtype (Atlas training 910A: Conv2D has no float32 kernel, ATC refuses it)",
                  "original dtype", "float32 throughout", None),
    PrecisionMode("cube_fp16in_fp32out", "--precision_mode", None,
                  "float16 operands, float32 result (falls back to float32, then float16, in/out)",
                  "float32", "Cube: operands rounded to float16, float32 result; the rest float32", FP16),
    PrecisionMode("force_fp32", "--precision_mode", "cube_fp16in_fp32out", "as cube_fp16in_fp32out",
                  "as cube_fp16in_fp32out", "as cube_fp16in_fp32out", FP16),
    PrecisionMode("allow_mix_precision_fp16", "--precision_mode", None, "float16 (white list)", _LISTS,
                  "per operator type from the mixed lists (assumed, see below), float16", FP16),
    PrecisionMode("allow_mix_precision", "--precision_mode", "allow_mix_precision_fp16", "as allow_mix_precision_fp16",
                  "as allow_mix_precision_fp16", "as allow_mix_precision_fp16", FP16),
    PrecisionMode("allow_mix_precision_bf16", "--precision_mode", None, "bfloat16 (white list; Atlas A2 only)",
                  _LISTS, "per operator type from the mixed lists (assumed), bfloat16", BF16),
    PrecisionMode("fp16", "--precision_mode_v2", "force_fp16", "as force_fp16", "as force_fp16", "as force_fp16",
                  FP16),
    PrecisionMode("origin", "--precision_mode_v2", "must_keep_origin_dtype", "as must_keep_origin_dtype",
                  "as must_keep_origin_dtype", "as must_keep_origin_dtype", None),
    PrecisionMode("mixed_float16", "--precision_mode_v2", "allow_mix_precision_fp16", "as allow_mix_precision_fp16",
                  "as allow_mix_precision_fp16", "as allow_mix_precision_fp16", FP16),
    PrecisionMode("mixed_bfloat16", "--precision_mode_v2", "allow_mix_precision_bf16", "as allow_mix_precision_bf16",
                  "as allow_mix_precision_bf16", "as allow_mix_precision_bf16", BF16),
    PrecisionMode("mixed_hif8", "--precision_mode_v2", None, "HiFloat8 (Atlas 350)", "by list", "not emulated", None,
                  emulated=False),
    PrecisionMode("cube_hif8", "--precision_mode_v2", None, "HiFloat8 (Atlas 350)", "float16", "not emulated", None,
                  emulated=False),
    PrecisionMode(INT8, "", None, "int8 (AMCT-quantized model)", "float16 between quantized operators",
                  "QDQ: uint8 activations, int8 per-channel weights (infer-kit quantize)", None),
)}
PRECISION_MODES = tuple(MODES)
# Every value ATC's --precision_mode takes (the v1 names).
ATC_PRECISION_MODES = tuple(m.name for m in MODES.values() if m.flag == "--precision_mode")
DEFAULT_PRECISION_MODE = "force_fp16"
# What "all" builds: one artifact per distinct emulation (aliases left out; int8 only when named).
ALL_MODES = ("force_fp16", "allow_fp32_to_fp16", "allow_fp32_to_bf16", "must_keep_origin_dtype",
             "cube_fp16in_fp32out", "allow_mix_precision_fp16", "allow_mix_precision_bf16")

# ONNX operator type -> Ascend IR type, where they differ (keep_dtype "OpType::" entries and mixlists use IR types).
ASCEND_IR_TYPES = {
    "Conv": "Conv2D", "ConvTranspose": "Conv2DTranspose", "Gemm": "MatMulV2", "MatMul": "BatchMatMulV2",
    "AveragePool": "AvgPool", "GlobalAveragePool": "ReduceMean", "Softmax": "SoftmaxV2",
    "BatchNormalization": "BatchNorm", "LayerNormalization": "LayerNorm", "ReduceMean": "ReduceMean",
    "Sigmoid": "Sigmoid", "HardSigmoid": "HardSigmoid", "Erf": "Erf",
}
ASSUMED_WHITE_LIST = frozenset(CUBE_OPS)
ASSUMED_BLACK_LIST = frozenset({
    "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp", "Exp",
    "Log", "Pow", "Sqrt", "Reciprocal", "Erf", "LayerNormalization", "InstanceNormalization", "GroupNormalization",
})


@dataclass(frozen=True)
class KeepDtype:
    """``--keep_dtype`` entries: operator names and operator types kept in their original dtype."""

    names: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.names or self.types)

    def entries(self) -> list[str]:
        return sorted(self.names) + [f"OpType::{t}" for t in sorted(self.types)]

    def matches(self, node: onnx.NodeProto) -> bool:
        return (node.name in self.names or node.op_type in self.types
                or ASCEND_IR_TYPES.get(node.op_type, "") in self.types)


def parse_keep_dtype(entries: Iterable[str], where: str = "--keep-dtype") -> KeepDtype:
    """``["conv1", "OpType::Softmax", ...]`` (blank entries and ``#`` comments ignored)."""
    names, types = set(), set()
    for raw in entries:
        entry = raw.split("#", 1)[0].strip()
        if not entry:
            continue
        if entry.startswith("OpType::"):
            op_type = entry[len("OpType::"):].strip()
            if not op_type:
                raise InferKitError(f"{where}: 'OpType::' names no operator type", hint="e.g. OpType::Softmax")
            types.add(op_type)
        else:
            names.add(entry)
    return KeepDtype(frozenset(names), frozenset(types))


KEEP_DTYPE_SUFFIXES = (".cfg", ".txt", ".conf", ".list")  # a --keep-dtype value with these is a file, not a name


def keep_dtype_from(value: str | os.PathLike[str] | Sequence[str] | KeepDtype | None) -> KeepDtype:
    """An ATC keep_dtype file, a comma list (``conv1,OpType::Softmax``), a list of entries, or None."""
    if value is None:
        return KeepDtype()
    if isinstance(value, KeepDtype):
        return value
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if path.is_file():
            return parse_keep_dtype(read_text(path, what="keep_dtype file").splitlines(), where=str(path))
        if "," not in str(value) and path.suffix.lower() in KEEP_DTYPE_SUFFIXES:
            raise InferKitError(f"keep_dtype file not found: {value}",
                                hint="give an existing file, or operator names separated by commas")
        return parse_keep_dtype(str(value).split(","))
    return parse_keep_dtype(value)


def check_keep_dtype(keep: KeepDtype, model: onnx.ModelProto, where: str) -> None:
    """Refuse operator names the model does not have (a typo would silently keep nothing)."""
    present = {node.name for node in model.graph.node if node.name}
    missing = sorted(keep.names - present)
    if missing:
        close = difflib.get_close_matches(missing[0], sorted(present), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else "give node names as the ONNX graph has them"
        raise InferKitError(f"--keep-dtype names {len(missing)} operator(s) {where} does not have "
                            f"({', '.join(missing[:3])})", hint=hint)


def keep_through_folding(keep: KeepDtype, original: onnx.ModelProto, folded: onnx.ModelProto) -> KeepDtype:
    """``keep`` for the BN-folded graph: a kept BatchNormalization folded into its Conv keeps that Conv (the
    fused operator computes the BatchNormalization; without this the entry would keep nothing)."""
    outputs = {node.output[0] for node in original.graph.node
               if node.op_type == "BatchNormalization" and node.output and keep.matches(node)}
    convs = {node.name for node in folded.graph.node
             if node.op_type == "Conv" and node.output and node.output[0] in outputs}
    return KeepDtype(keep.names | convs, keep.types) if convs else keep


def read_mixlist(value: str | os.PathLike[str] | dict[str, Any] | None) -> dict[str, Any] | None:
    """A ``--modify_mixlist`` JSON (file or parsed), checked for its shape."""
    if value is None:
        return None
    where = "--modify-mixlist"
    if not isinstance(value, dict):
        where = str(value)
        try:
            value = json.loads(read_text(Path(value), what="modify_mixlist file"))
        except json.JSONDecodeError as exc:
            raise InferKitError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(value, dict) or set(value) - {"black-list", "white-list", "gray-list"}:
        raise InferKitError(f"{where}: expected {{\"black-list\": {{\"to-add\": [...], \"to-remove\": [...]}}, "
                            "\"white-list\": {...}}")
    for key, part in value.items():
        if not isinstance(part, dict) or set(part) - {"to-add", "to-remove"} or not all(
                isinstance(v, list) and all(isinstance(x, str) for x in v) for v in part.values()):
            raise InferKitError(f"{where}: {key} takes \"to-add\" and \"to-remove\" lists of operator types")
    return value


def mixed_lists(mixlist: dict[str, Any] | None) -> tuple[frozenset[str], frozenset[str]]:
    """(white, black) operator types after the ``--modify_mixlist`` edits (types in ONNX or Ascend IR names)."""
    white, black = set(ASSUMED_WHITE_LIST), set(ASSUMED_BLACK_LIST)
    onnx_name = {ir: onnx_type for onnx_type, ir in ASCEND_IR_TYPES.items()}
    for key, target, others in (("black-list", black, (white,)), ("white-list", white, (black,)),
                                ("gray-list", set(), (white, black))):
        part = (mixlist or {}).get(key, {})
        for op in part.get("to-remove", []):
            target.discard(onnx_name.get(op, op))
        for op in part.get("to-add", []):
            op = onnx_name.get(op, op)
            target.add(op)
            for other in others:
                other.discard(op)
    return frozenset(white), frozenset(black)


def precision_mode(name: str) -> PrecisionMode:
    if name not in MODES:
        close = difflib.get_close_matches(name, PRECISION_MODES, n=1)
        raise InferKitError(f"Value {name} for parameter --precision_mode is invalid",
                            hint=(f"did you mean {close[0]}? " if close else "") + f"use one of {', '.join(MODES)}")
    return MODES[name]


def soc_has_bfloat16(soc: str) -> bool:
    """Whether the chip computes bfloat16: the Atlas A2 (Ascend910B1-B4) and A3 (Ascend910_93xx) series do."""
    return re.fullmatch(r"Ascend910B\d.*|Ascend910_93\d\d", soc) is not None


def resolve_precision_modes(value: str | Sequence[str], soc: str | None = None) -> list[str]:
    """``"all"``, ``"force_fp16,int8"`` or a list -> the modes, checked, without duplicates (all: :data:`ALL_MODES`).

    With ``soc``, ``all`` leaves out the bfloat16 modes when the chip has no bfloat16, and naming one is refused:
    ATC would refuse it, and an emulated row would show an accuracy the device cannot give.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    bf16 = soc is None or soc_has_bfloat16(soc)
    out: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        for name in ALL_MODES if item == "all" else (item,):
            row = precision_mode(name)
            if row.low == BF16 and not bf16:
                if item == "all":
                    continue
                raise InferKitError(f"precision mode {name} needs bfloat16, which {soc} does not compute",
                                    hint="bfloat16 modes need an Atlas A2/A3 chip (--soc Ascend910B1-B4 or "
                                         "Ascend910_93xx); use a float16 mode")
            if name not in out:
                out.append(name)
    if not out:
        raise InferKitError("no precision mode given", hint="e.g. --precision-mode force_fp16 or all")
    return out


def check_precision_mode(mode: str, *, emulate: bool) -> str:
    """``mode`` if ATC knows it (and, for the emulation, if it can be emulated)."""
    row = precision_mode(mode)
    if emulate and not row.emulated:
        raise InferKitError(f"precision mode {mode} is passed to a real ATC but infer-kit cannot emulate it",
                            hint=f"emulated modes: {', '.join(m for m, r in MODES.items() if r.emulated)}")
    return mode


def precision_argv(mode: str) -> list[str]:
    """The ATC option for ``mode`` (none for the default ``force_fp16`` and for int8, whose model is quantized)."""
    row = precision_mode(mode)
    if mode == DEFAULT_PRECISION_MODE or not row.flag:
        return []
    return [f"{row.flag}={mode}"]


def node_policies(model: onnx.ModelProto, mode: str, *, keep_dtype: KeepDtype = KeepDtype(),
                  mixlist: dict[str, Any] | None = None) -> list[Policy]:
    """One :class:`Policy` per node of ``model`` (in graph order) for ATC ``mode``."""
    row = precision_mode(mode)
    canonical = row.canonical
    if row.low is None:
        return [FLOAT32 for _ in model.graph.node]
    low = row.low
    white, black = mixed_lists(mixlist)
    out: list[Policy] = []
    written: dict[str, Policy] = {}
    for node in model.graph.node:
        if keep_dtype.matches(node):
            policy = FLOAT32
        elif canonical == "force_fp16":
            policy = Policy(FP16, FP16)
        elif canonical in ("allow_fp32_to_fp16", "allow_fp32_to_bf16"):
            policy = Policy(low, low) if node.op_type in CUBE_OPS else FLOAT32
        elif canonical == "cube_fp16in_fp32out":
            policy = Policy(FP16, FP32) if node.op_type in CUBE_OPS else FLOAT32
        elif canonical in ("allow_mix_precision_fp16", "allow_mix_precision_bf16"):
            if node.op_type in white:
                policy = Policy(low, low)
            elif node.op_type in black:
                policy = FLOAT32
            else:  # gray: as the operator that writes its first float input (a graph input: float32)
                source = next((written[name] for name in node.input if name in written), FLOAT32)
                policy = Policy(low, low) if source.output == low else FLOAT32
        else:  # pragma: no cover - every emulated low-precision mode is handled above
            raise InferKitError(f"precision mode {mode} has no emulation")
        out.append(policy)
        for name in node.output:
            written[name] = policy
    return out


def apply_precision_mode(model: onnx.ModelProto, mode: str, *, keep_dtype: KeepDtype = KeepDtype(),
                         mixlist: dict[str, Any] | None = None, input_formats: dict[str, str] | None = None,
                         residual: str = "exact") -> tuple[onnx.ModelProto, EmulationReport]:
    """A copy of ``model`` computing as ATC's ``mode`` would (see :data:`MODES`), and what the pass did."""
    from infer_kit.converter.graphs import copy_model, name_nodes
    from infer_kit.converter.rounding import emulate_low_precision, fold_batchnorm

    row = MODES[check_precision_mode(mode, emulate=True)]
    if mode == INT8:
        raise InferKitError("int8 is not a rounding mode", hint="quantize the model (infer-kit quantize)")
    work = copy_model(model)
    name_nodes(work)
    if row.low is None:
        return work, EmulationReport(float32_nodes=len(work.graph.node))
    folded, count = fold_batchnorm(work)
    keep_dtype = keep_through_folding(keep_dtype, work, folded)
    policies = node_policies(folded, mode, keep_dtype=keep_dtype, mixlist=mixlist)
    by_name = {node.name: policy for node, policy in zip(folded.graph.node, policies, strict=True)}
    emulated, report = emulate_low_precision(folded, _lookup(by_name), fold_bn=False, residual=residual,
                                             input_formats=input_formats)
    report.bn_folded = count
    return emulated, report


def _lookup(by_name: dict[str, Policy]) -> Callable[[onnx.NodeProto], Policy]:
    return lambda node: by_name.get(node.name, FLOAT32)


def held_formats(model: onnx.ModelProto, mode: str, *, keep_dtype: KeepDtype = KeepDtype(),
                 mixlist: dict[str, Any] | None = None) -> dict[str, str]:
    """Tensor (or weight) -> the low format ``mode`` holds it in (written by a low-precision operator or read
    as a low-precision operand), for the range check. ``model`` is the BN-folded float32 graph."""
    row = precision_mode(mode)
    if row.low is None:
        return {}
    held: dict[str, str] = {}
    for node, policy in zip(model.graph.node, node_policies(model, mode, keep_dtype=keep_dtype, mixlist=mixlist),
                            strict=True):
        if policy.output != FP32:
            for name in node.output:
                if name:
                    held[name] = policy.output
        if policy.inputs != FP32:
            for name in node.input:  # activations and weights alike are rounded on the way in
                if name:
                    held.setdefault(name, policy.inputs)
    return held


def mode_table_markdown() -> str:
    """The table of :data:`MODES` as the README shows it."""
    lines = ["| mode | option | Cube ops (Conv, MatMul, Gemm) | other ops | emulation |", "|---|---|---|---|---|"]
    for row in MODES.values():
        option = row.flag or "(infer-kit)"
        lines.append(f"| `{row.name}` | `{option}` | {row.cube} | {row.vector} | {row.emulation} |")
    return "\n".join(lines)
