"""The run summary: ais_bench's ``<dir>_summary.json`` keys plus infer-kit's own object.

ais_bench keys (same names, same meaning): ``filesinfo`` ({sample_id: {infiles, outfiles}}),
``args`` (the command line), ``NPU_compute_time`` / ``H2D_latency`` / ``D2H_latency`` (each
``{min, max, mean, median, percentile(99%), count}`` in ms, zeros when not measured),
``throughput`` (``1000 * batchsize / NPU_compute_time.mean``), ``npu_compute_time_list``
and ``pid``. infer-kit adds ``"infer_kit"``: backend, provider, threads, model, batch size,
file counts, end-to-end wall time and throughput, output format and folder, shard, devices,
and the outputs' dtype and per-sample shape, so a BIN file can be decoded without the model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

PERCENTILE = 99
PERCENTILE_KEY = f"percentile({PERCENTILE}%)"


def time_stats(values: Sequence[float]) -> dict[str, float | int]:
    """min/max/mean/median/p99 (ms) and count; zeros for an empty list, as ais_bench reports."""
    import numpy as np

    if not values:
        return {"min": 0.0, "max": 0.0, "mean": 0.0, "median": 0.0, PERCENTILE_KEY: 0.0, "count": 0}
    data = np.asarray(values, dtype=np.float64)
    return {
        "min": float(data.min()), "max": float(data.max()), "mean": float(data.mean()),
        "median": float(np.median(data)), PERCENTILE_KEY: float(np.percentile(data, PERCENTILE)),
        "count": int(data.size),
    }


def build_summary(*, filesinfo: dict[int, Any], args: list[str], compute_ms: Sequence[float],
                  h2d_ms: Sequence[float], d2h_ms: Sequence[float], batchsize: float,
                  infer_kit: dict[str, Any]) -> dict[str, Any]:
    """The summary dict in ais_bench's key order, ``infer_kit`` last."""
    compute = time_stats(compute_ms)
    mean = float(compute["mean"])
    return {
        "filesinfo": {int(k): v for k, v in sorted(filesinfo.items())},
        "args": list(args),
        "NPU_compute_time": compute,
        "H2D_latency": time_stats(h2d_ms),
        "D2H_latency": time_stats(d2h_ms),
        "throughput": 1000.0 * batchsize / mean if mean else 0,
        "npu_compute_time_list": [float(v) for v in compute_ms],
        "pid": os.getpid(),
        "infer_kit": infer_kit,
    }


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def format_summary(summary: dict[str, Any]) -> str:
    """ais_bench's performance lines, then a short table of what infer-kit did."""
    compute = summary["NPU_compute_time"]
    info = summary["infer_kit"]
    lines = [
        "[INFO] -----------------Performance Summary------------------",
        "[INFO] NPU_compute_time (ms): min = {}, max = {}, mean = {}, median = {}, {} = {}".format(
            _fmt(compute["min"]), _fmt(compute["max"]), _fmt(compute["mean"]), _fmt(compute["median"]),
            PERCENTILE_KEY, _fmt(compute[PERCENTILE_KEY])),
        "[INFO] throughput 1000*batchsize.mean({})/NPU_compute_time.mean({}): {}".format(
            info["batchsize"], _fmt(compute["mean"]), _fmt(summary["throughput"])),
        "[INFO] ------------------------------------------------------",
    ]
    threads = f", {info['threads']} threads" if info.get("threads") else ""
    devices = ",".join(str(d) for d in info["devices"])
    rows = [
        ("backend", f"{info['backend']} ({info['provider']}{threads}), device {devices}"),
        ("model", f"{info['model']} ({info['model_kind']}, batch {info['batchsize']})"),
    ]
    if info.get("pure_data_type"):
        rows.append(("inputs", f"none: pure-performance mode on {info['pure_data_type']} data"))
    else:
        extra = [f"{info['padded']} padded slot(s)"]
        if info.get("skipped"):
            extra.insert(0, f"{info['skipped']} already done (resume)")
        if info.get("shard"):
            extra.append(f"shard {info['shard']}")
        rows.append(("files", f"{info['files']} ({', '.join(extra)})"))
    rows.append(("wall time", f"{info['wall_time_s']:.2f} s, {info['throughput_e2e']:.2f} images/s end to end"))
    if info.get("result_dir"):
        rows.append(("results", f"{info['result_dir']} ({info['outfmt']})"))
        rows.append(("summary", str(info.get("summary_path"))))
    width = max(len(name) for name, _ in rows)
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)
