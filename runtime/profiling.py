"""``--profiler`` on the emulation: ONNX Runtime's per-operator profile, summarised.

On the device ais_bench re-runs itself under msprof (or hands ACL a profiling acl.json) and
writes ``OUTPUT/profiler/PROF_.../`` with the NPU's timeline. Here there is no NPU: the honest
equivalent is ONNX Runtime's own profiler on the CPU, which times every operator of every
inference. Its raw trace (Chrome trace JSON, ``ort_profile_<model>_device<d>_<time>.json``) goes
to ``OUTPUT/profiler/``, with ``<trace>_op_summary.csv`` (per node: op type, calls,
total/mean/max microseconds, share) and ``<trace>_op_type_summary.csv`` (the same per op type)
beside it; these are CPU figures of the
emulated graph, not the device's. As with ais_bench, ``--profiler`` needs ``--output`` and, with
``--input``, sets the warm-up count to 0.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infer_kit.errors import InferKitError
from infer_kit.fsutil import write_text_atomic

PROFILE_DIR = "profiler"


@dataclass(frozen=True)
class OpTime:
    name: str
    op_type: str
    calls: int
    total_us: float
    max_us: float

    @property
    def mean_us(self) -> float:
        return self.total_us / self.calls if self.calls else 0.0


def profile_prefix(output: str | os.PathLike[str], model_name: str, device: int) -> str:
    folder = Path(output) / PROFILE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / f"ort_profile_{model_name}_device{device}")


def read_profile(path: str | os.PathLike[str]) -> list[OpTime]:
    """Per-node times from an ONNX Runtime profile (kernel-time events), slowest first."""
    try:
        events = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InferKitError(f"cannot read the ONNX Runtime profile {path}: {exc}") from None
    totals: dict[str, list[Any]] = defaultdict(lambda: ["", 0, 0.0, 0.0])
    for event in events if isinstance(events, list) else []:
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        args = event.get("args", {})
        name = str(args.get("node_name") or event["name"][: -len("_kernel_time")])
        entry = totals[name]
        entry[0] = str(args.get("op_name", entry[0]))
        entry[1] += 1
        duration = float(event.get("dur", 0.0))
        entry[2] += duration
        entry[3] = max(entry[3], duration)
    ops = [OpTime(name, op, calls, total, peak) for name, (op, calls, total, peak) in totals.items()]
    return sorted(ops, key=lambda o: -o.total_us)


def by_op_type(ops: list[OpTime]) -> list[OpTime]:
    merged: dict[str, list[Any]] = defaultdict(lambda: [0, 0.0, 0.0])
    for op in ops:
        entry = merged[op.op_type]
        entry[0] += op.calls
        entry[1] += op.total_us
        entry[2] = max(entry[2], op.max_us)
    return sorted((OpTime(t, t, c, tot, m) for t, (c, tot, m) in merged.items()), key=lambda o: -o.total_us)


def write_summaries(profile: str | os.PathLike[str]) -> tuple[Path, Path, list[OpTime]]:
    """``<trace>_op_summary.csv`` and ``<trace>_op_type_summary.csv`` beside the raw profile."""
    ops = read_profile(profile)
    trace = Path(profile)
    per_node = trace.with_name(trace.stem + "_op_summary.csv")
    per_type = trace.with_name(trace.stem + "_op_type_summary.csv")
    for path, rows in ((per_node, ops), (per_type, by_op_type(ops))):
        total = sum(o.total_us for o in rows) or 1.0
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["name", "op_type", "calls", "total_us", "mean_us", "max_us", "share_percent"])
        for o in rows:
            writer.writerow([o.name, o.op_type, o.calls, f"{o.total_us:.1f}", f"{o.mean_us:.2f}", f"{o.max_us:.1f}",
                             f"{100 * o.total_us / total:.2f}"])
        write_text_atomic(path, buffer.getvalue())
    return per_node, per_type, ops


def format_profile(ops: list[OpTime], top: int = 10) -> list[str]:
    """A short table of the slowest operator types, for the terminal."""
    types = by_op_type(ops)
    total = sum(o.total_us for o in types) or 1.0
    lines = ["[INFO] ONNX Runtime per-operator profile (CPU, the emulated graph; not the NPU's msprof timeline):"]
    for o in types[:top]:
        lines.append(f"[INFO]   {o.op_type:<20} calls {o.calls:>6}  total {o.total_us / 1000:10.3f} ms  "
                     f"mean {o.mean_us:9.1f} us  {100 * o.total_us / total:5.1f} %")
    return lines
