"""ais_bench's printed performance summary, then a short table of what infer-kit did."""

from __future__ import annotations

from typing import Any

from infer_kit.run_summary import PERCENTILE, PERCENTILE_KEY


def _stats_line(name: str, stats: dict[str, Any]) -> str:
    """``[INFO] NAME (ms): min = .., max = .., mean = .., median = .., percentile(99%) = ..`` (Python str of floats)."""
    if "min" not in stats:  # the multi-thread pipeline reports the mean only
        return f"[INFO] {name} (ms): mean = {stats['mean']}"
    return (f"[INFO] {name} (ms): min = {stats['min']}, max = {stats['max']}, mean = {stats['mean']}, "
            f"median = {stats['median']}, percentile({PERCENTILE}%) = {stats[PERCENTILE_KEY]}")


def format_summary(summary: dict[str, Any], *, display_all_summary: bool = False) -> str:
    """ais_bench's performance lines (H2D and D2H too with ``display_all_summary``), then infer-kit's table."""
    compute = summary["NPU_compute_time"]
    info = summary["infer_kit"]
    lines = ["[INFO] -----------------Performance Summary------------------"]
    if display_all_summary:
        lines.append(_stats_line("H2D_latency", summary["H2D_latency"]))
    lines.append(_stats_line("NPU_compute_time", compute))
    if display_all_summary:
        lines.append(_stats_line("D2H_latency", summary["D2H_latency"]))
    batch = info.get("throughput_batchsize", info["batchsize"])
    lines += [
        f"[INFO] throughput 1000*batchsize.mean({batch})/NPU_compute_time.mean({compute['mean']}): "
        f"{summary['throughput']}",
        "[INFO] ------------------------------------------------------",
    ]
    threads = f", {info['threads']} threads" if info.get("threads") else ""
    devices = ",".join(str(d) for d in info["devices"])
    rows = [
        ("backend", f"{info['backend']} ({info['provider']}{threads}), device {devices}"),
        ("model", f"{info['model']} ({info['model_kind']}, batch {info['batchsize']})"),
    ]
    if info.get("dynamic"):
        rows.append(("shapes", str(info["dynamic"])))
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
    if info.get("dump"):
        rows.append(("dump", str(info["dump"]["path"])))
    width = max(len(name) for name, _ in rows)
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)
