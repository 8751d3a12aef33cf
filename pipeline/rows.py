"""One row of the pipeline's results, from the run that makes it to the report that shows it.

A row is a compiled (or emulated) model at one batch size and precision mode, or a
reference: the fp32 ONNX model, or the checkpoint itself in eager torch. It is planned with
what identifies it, then :meth:`Row.measured` adds what ``run``, ``evaluate`` and ``compare``
measured; ``summary.json`` and the report show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infer_kit.run_summary import PERCENTILE_KEY

REFERENCE_ROW = "onnx_fp32"
TORCH_ROW = "torch_fp32"


@dataclass(frozen=True)
class StageOutcome:
    stage: str
    status: str  # "ran" | "cached"
    seconds: float


@dataclass(frozen=True)
class Row:
    name: str
    model: Path  # an artifact manifest, the ONNX model for the reference row, the checkpoint for the torch row
    layout: str
    batch: int
    precision: str
    backend: str
    # measured (None until the row ran)
    images: int | None = None
    top1: float | None = None  # percent
    top5: float | None = None
    images_per_s: float = 0.0
    compute_images_per_s: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    agreement: float | None = None  # percent of images whose top-1 equals the reference's
    result_json: Path | None = None
    agreement_torch: float | None = None  # ... equals eager torch's
    delta_top1: float | None = None  # percentage points against the fp32 reference row
    delta_top5: float | None = None
    range_check: str | None = None   # the range check's summary (float16/bfloat16 modes)
    range_warning: bool = False      # a tensor overflows or flushes to zero
    layers_json: Path | None = None  # the per-layer comparison, made when the row misses its agreement gate

    @property
    def is_reference(self) -> bool:
        return self.name in (REFERENCE_ROW, TORCH_ROW)

    @property
    def is_torch(self) -> bool:
        return self.name == TORCH_ROW

    def measured(self, summary: dict[str, Any], evaluation: dict[str, Any], comparison: dict[str, Any] | None,
                 result_json: Path, versus_torch: dict[str, Any] | None = None) -> Row:
        """This row with accuracy from evaluate, speed from the run summary, agreement from compare."""
        compute = summary.get("NPU_compute_time", {})
        ours = summary.get("infer_kit", {})
        return replace(
            self,
            images=evaluation["images"],
            top1=100 * evaluation["top1"],
            top5=100 * evaluation["top5"] if evaluation.get("top5") is not None else None,
            images_per_s=float(ours.get("throughput_e2e", 0.0)),
            compute_images_per_s=float(summary.get("throughput", 0.0)),
            latency_p50_ms=float(compute.get("median", 0.0)),
            latency_p99_ms=float(compute.get(PERCENTILE_KEY, 0.0)),
            latencies_ms=[float(v) for v in summary.get("npu_compute_time_list", [])],
            agreement=100 * comparison["top1_agreement"] if comparison else None,
            result_json=result_json,
            agreement_torch=100 * versus_torch["top1_agreement"] if versus_torch else None,
        )

    def against(self, reference: Row | None) -> Row:
        """This row with its top-1/top-5 deltas against the fp32 ``reference`` row."""
        if reference is None or self.is_reference or self.top1 is None or reference.top1 is None:
            return self
        top5 = (self.top5 - reference.top5) if self.top5 is not None and reference.top5 is not None else None
        return replace(self, delta_top1=self.top1 - reference.top1, delta_top5=top5)

    def record(self) -> dict[str, Any]:
        """The row as ``summary.json`` holds it."""
        return {
            "name": self.name, "backend": self.backend, "batch": self.batch, "precision": self.precision,
            "layout": self.layout, "images": self.images, "top1": self.top1, "top5": self.top5,
            "images_per_s": self.images_per_s, "compute_images_per_s": self.compute_images_per_s,
            "latency_p50_ms": self.latency_p50_ms, "latency_p99_ms": self.latency_p99_ms,
            "latencies_ms": self.latencies_ms, "agreement": self.agreement, "agreement_torch": self.agreement_torch,
            "delta_top1": self.delta_top1, "delta_top5": self.delta_top5, "range_check": self.range_check,
            "range_warning": self.range_warning,
            "layers_json": str(self.layers_json) if self.layers_json is not None else None,
            "result_json": str(self.result_json) if self.result_json is not None else None,
        }
