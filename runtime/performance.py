"""ais_bench's printed performance summary, then a short table of what infer-kit did."""

from __future__ import annotations

from typing import Any

from infer_kit.run_summary import PERCENTILE_KEY


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
