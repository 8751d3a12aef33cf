"""Overflow and underflow before the device: which tensors of the float32 model leave float16's range.

The float32 model (BatchNorm folded, as ATC folds it) runs on sample inputs with every float
intermediate exposed, a few samples at a time; per tensor only running statistics are kept:
max |x|, how many values exceed the largest finite float16 (65504: inf on the device, or
saturated, by the SoC's overflow mode), how many flush to zero (|x| <= 2^-25, half the smallest
float16 subnormal) and how many land in the subnormal range (below 2^-14, fewer significant bits).
The same for bfloat16's limits. Which tensors matter depends on the precision mode: only those
the mode holds in low precision (:func:`~infer_kit.converter.precision.held_formats`) are reported.

Findings are listed overflows first, then underflows, each in graph order: the first named is
where the trouble starts (an overflow propagates to what reads it). A finding is an overflow
(any value over the limit), an underflow (at least
:data:`FLUSH_SHARE` of the tensor's non-zero values flush to zero) or, weaker, a subnormal
tensor (at least :data:`SUBNORMAL_SHARE` of them lose precision).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from infer_kit.converter.graphs import analysis_session, expose, producers
from infer_kit.converter.rounding import BF16, FORMAT_NAMES, FP16

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from infer_kit.converter.samples import SampleSet

LIMITS = {  # largest finite, smallest normal, half the smallest subnormal (rounds to 0 at or below it)
    FP16: (65504.0, 2.0**-14, 2.0**-25),
    BF16: (3.3895313892515355e38, 2.0**-126, 2.0**-134),
}
FLUSH_SHARE = 0.10  # a tenth of the non-zero values gone: not the few tiny weights every trained net has
SUBNORMAL_SHARE = 0.10
SHOWN = 5


@dataclass
class TensorRange:
    """Running statistics of one tensor over the samples."""

    tensor: str
    node: str
    op_type: str
    weight: bool = False  # an initializer the node reads (rounded once), not an activation
    max_abs: float = 0.0
    count: int = 0
    nonzero: int = 0
    over: dict[str, int] = field(default_factory=lambda: {FP16: 0, BF16: 0})
    flush: dict[str, int] = field(default_factory=lambda: {FP16: 0, BF16: 0})
    subnormal: dict[str, int] = field(default_factory=lambda: {FP16: 0, BF16: 0})

    def add(self, values: np.ndarray) -> None:
        import numpy as np

        a = np.abs(values.astype(np.float32, copy=False)).ravel()
        if a.size == 0:
            return
        self.count += a.size
        self.max_abs = max(self.max_abs, float(np.nanmax(a)) if not np.isnan(a).all() else 0.0)
        self.nonzero += int(np.count_nonzero(a))
        small = a[a < LIMITS[FP16][1]]  # every float16 and bfloat16 subnormal or flushed value is in here
        small = small[small > 0]
        for fmt, (big, normal, tiny) in LIMITS.items():
            self.over[fmt] += int(np.count_nonzero(a > big)) if self.max_abs > big else 0
            self.flush[fmt] += int(np.count_nonzero(small <= tiny))
            self.subnormal[fmt] += int(np.count_nonzero((small > tiny) & (small < normal)))


@dataclass(frozen=True)
class RangeFinding:
    kind: str  # "overflow" | "underflow" | "subnormal"
    tensor: str
    node: str
    op_type: str
    weight: bool
    max_abs: float
    overflow_share: float
    flush_share: float
    subnormal_share: float

    def describe(self, fmt: str) -> str:
        where = (f"{self.node} ({self.op_type}) weight {self.tensor}" if self.weight
                 else f"{self.node} ({self.op_type}) -> {self.tensor}")
        if self.kind == "overflow":
            return (f"{where}: max |x| {self.max_abs:.4g} > {LIMITS[fmt][0]:.6g} in {self.overflow_share:.2%} "
                    "of values")
        if self.kind == "underflow":
            return f"{where}: {self.flush_share:.1%} of values flush to 0"
        return f"{where}: {self.subnormal_share:.1%} of values are subnormal"


@dataclass(frozen=True)
class RangeReport:
    """What the range check found for one precision mode."""

    mode: str
    format: str               # fp16 | bf16
    samples: dict[str, Any]   # SampleSet.to_dict()
    samples_text: str
    tensors_checked: int
    findings: tuple[RangeFinding, ...]

    @property
    def overflows(self) -> list[RangeFinding]:
        return [f for f in self.findings if f.kind == "overflow"]

    @property
    def underflows(self) -> list[RangeFinding]:
        return [f for f in self.findings if f.kind == "underflow"]

    @property
    def warns(self) -> bool:
        return any(f.kind in ("overflow", "underflow") for f in self.findings)

    def summary(self) -> str:
        """One line: what was checked and what leaves the range (the worst few named)."""
        name = FORMAT_NAMES[self.format]
        head = f"{self.mode}: {self.tensors_checked} {name} tensor(s) checked on {self.samples_text}"
        serious = len(self.overflows) + len(self.underflows)
        if not serious:
            return f"{head}: none overflows or flushes to zero"
        named = self.overflows[:SHOWN - min(2, len(self.underflows))]
        named += self.underflows[:SHOWN - len(named)]
        shown = "; ".join(f.describe(self.format) for f in named)
        more = f"; and {serious - len(named)} more" if serious > len(named) else ""
        return f"{head}: {len(self.overflows)} overflow(s), {len(self.underflows)} underflow(s): {shown}{more}"

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "format": self.format, "samples": self.samples,
                "tensors_checked": self.tensors_checked, "summary": self.summary(),
                "findings": [asdict(f) for f in self.findings]}


def scan_ranges(model: onnx.ModelProto, input_name: str, batches: Iterable[np.ndarray],
                threads: int | None = None) -> dict[str, TensorRange]:
    """Statistics of every float node output of ``model`` (float32) over ``batches`` fed to ``input_name``, and of
    every float weight a node reads (named by its first reader)."""
    from onnx import numpy_helper

    writer = producers(model.graph)
    weights: dict[str, TensorRange] = {}
    initializers = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        for name in node.input:
            if name in initializers and name not in weights and initializers[name].data_type == 1:
                weights[name] = TensorRange(name, node.name, node.op_type, weight=True)
                weights[name].add(numpy_helper.to_array(initializers[name]))
    exposed, names = expose(model, [name for node in model.graph.node for name in node.output if name])
    session = analysis_session(exposed, threads)
    outputs = [o.name for o in session.get_outputs()]
    stats = {name: TensorRange(name, writer[name].name, writer[name].op_type) for name in names if name in writer}
    for batch in batches:
        for name, value in zip(outputs, session.run(outputs, {input_name: batch}), strict=True):
            if name in stats and value.dtype.kind == "f":
                stats[name].add(value)
    return {**weights, **stats}


def range_report(stats: dict[str, TensorRange], held: dict[str, str], *, mode: str, samples: SampleSet,
                 flush_share: float = FLUSH_SHARE, subnormal_share: float = SUBNORMAL_SHARE) -> RangeReport | None:
    """The findings among the tensors ``mode`` holds in low precision (``held``: tensor -> format); None when
    the mode holds none."""
    formats = set(held.values())
    if not formats:
        return None
    fmt = FP16 if FP16 in formats else BF16
    found = []
    checked = 0
    for name, item in stats.items():
        if name not in held or item.count == 0:
            continue
        checked += 1
        f = held[name]
        nonzero = max(item.nonzero, 1)
        shares = (item.over[f] / item.count, item.flush[f] / nonzero, item.subnormal[f] / nonzero)
        kind = ("overflow" if item.over[f] else "underflow" if shares[1] >= flush_share
                else "subnormal" if shares[2] >= subnormal_share else None)
        if kind:
            found.append(RangeFinding(kind, name, item.node, item.op_type, item.weight, item.max_abs, *shares))
    order = {"overflow": 0, "underflow": 1, "subnormal": 2}
    found.sort(key=lambda f: order[f.kind])  # stable: graph order within a kind, so the first is where it starts
    return RangeReport(mode, fmt, samples.to_dict(), samples.describe(), checked, tuple(found))
