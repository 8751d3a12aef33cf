"""The run summary: ``<result folder>_summary.json`` beside every result folder.

``run`` writes it; ``evaluate``, ``compare`` and ``pipeline`` read it. The keys are
ais_bench's (same names, same meaning): ``filesinfo`` ({sample_id: {infiles, outfiles}}),
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
from pathlib import Path
from typing import Any

from infer_kit.fsutil import read_json, write_json_atomic

SUMMARY_SUFFIX = "_summary.json"
PERCENTILE = 99
PERCENTILE_KEY = f"percentile({PERCENTILE}%)"


def summary_path(result_dir: str | os.PathLike[str]) -> Path:
    """``OUT/NAME`` -> ``OUT/NAME_summary.json`` (ais_bench puts the summary beside the folder)."""
    folder = Path(result_dir)
    return folder.parent / (folder.name + SUMMARY_SUFFIX)


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


def write_run_summary(path: str | os.PathLike[str], summary: dict[str, Any]) -> None:
    """One line of JSON, as ais_bench's ``json.dump`` writes it."""
    write_json_atomic(path, summary, indent=None)


def read_run_summary(result_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The summary beside ``result_dir``, or None when there is none (e.g. outputs from another tool)."""
    path = summary_path(Path(result_dir).resolve())
    if not path.is_file():
        return None
    data = read_json(path, what="run summary")
    return data if isinstance(data, dict) else None


def run_info(result_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``infer_kit`` block of the summary beside ``result_dir``, if there is one."""
    data = read_run_summary(result_dir)
    block = data.get("infer_kit") if data is not None else None
    return block if isinstance(block, dict) else None
