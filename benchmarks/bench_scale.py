"""What ``run --engine ray`` costs and gains: 1 and 2 Ray workers against the plain single-process run.

In one run, on the same model and the same input files, on a 2-node Ray test cluster on this
machine (1 CPU per node; the machine has 2 cores), inside a loopback-only network namespace
(the script re-executes itself under ``unshare -n`` / ``unshare -rn``, or stops saying why):

* images/s of ``run`` for a ResNet-18 (random weights, batch 8, 3x224x224 float32 ``.bin``):
  one process (ONNX Runtime, 2 threads), Ray with 1 worker (2 threads), Ray with 2 workers on
  2 nodes (1 thread each); end to end (the whole ``run`` call: connect, storage check, actor
  start and model load included) and in the compute phase (the batches only). The sides are
  interleaved, each round starting with the next one; the figures are medians, the ratios
  medians of per-round ratios (the JSON keeps every round);
* the scheduling overhead per file and per task: a trivial model (batch 1, 10x10x3 uint8) over
  ``--tiny-files`` files, one process against one Ray worker at 1, 8 and 64 files per task,
  both with one thread;
* from the per-task overhead, where the driver (which takes one task result at a time) bounds a
  50,000-image run on N nodes.

Outputs of every side are checked byte-identical. Nothing is asserted.

    .venv/bin/python benchmarks/bench_scale.py [--images 256] [--tiny-files 2000] [--rounds 5] [--json out.json]

It needs the repository's ``tests/`` (the loopback-only test cluster and the trivial model).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from ray_support import LocalCluster, is_private_netns, netns_prefix  # noqa: E402

from infer_kit.cluster import RayOptions  # noqa: E402
from infer_kit.console import configure  # noqa: E402
from infer_kit.runtime import run  # noqa: E402

_REEXEC = "INFER_KIT_BENCH_NETNS"
FILES_PER_TASK = (1, 8, 64)


def enter_private_netns() -> None:
    """Re-execute this script in a loopback-only network namespace (Ray must not bind the host's interface)."""
    if is_private_netns():
        os.system("ip link set lo up")
        return
    prefix, reason = netns_prefix()
    if prefix is None or os.environ.get(_REEXEC):
        sys.exit(f"bench_scale: {reason or 'still not isolated after unshare'}; refusing to start Ray on a real "
                 "network interface")
    os.environ[_REEXEC] = "1"
    os.execvp(prefix[0], [*prefix, sys.executable, *sys.argv])


def resnet18(folder: Path) -> Path:
    from infer_kit.converter import export_onnx

    return export_onnx("resnet18", None, folder / "resnet18.onnx", batch=8, random_init=True, verify=False).path


def float_inputs(folder: Path, count: int) -> Path:
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        rng.standard_normal((3, 224, 224), dtype=np.float32).tofile(folder / f"img_{i}.bin")
    return folder


def one_run(model: Path, inputs: Path, out: Path, name: str, **kwargs) -> dict:
    began = time.perf_counter()
    result = run(model, inputs, out, output_dirname=name, args=["bench_scale"], **kwargs)
    wall = time.perf_counter() - began
    info = result.summary["infer_kit"]
    row = {"e2e_s": wall, "compute_s": info["wall_time_s"], "images": info["processed"],
           "e2e_ips": info["processed"] / wall, "compute_ips": info["throughput_e2e"], "dir": str(result.result_dir)}
    if "ray" in info:
        row.update(tasks=info["ray"]["tasks"], actors=len(info["ray"]["actors"]),
                   storage_check_s=info["ray"]["storage_check_s"], fixed_s=wall - info["wall_time_s"])
    if name != "keep":  # timed rounds keep nothing
        shutil.rmtree(out / name, ignore_errors=True)
    return row


def same_tree(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all((a / n).read_bytes() == (b / n).read_bytes()
                                                                for n in names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--tiny-files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    enter_private_netns()
    configure(-1)
    from test_run_support import aipp_folder, emulated_artifact

    work = Path(tempfile.mkdtemp(prefix="ikscale"))
    report: dict = {"images": args.images, "rounds": args.rounds, "cores": os.cpu_count(),
                    "load_before": os.getloadavg()[0]}
    cluster = LocalCluster([{"num_cpus": 1}, {"num_cpus": 1, "node_name": "w1"}])
    try:
        model, inputs = resnet18(work), float_inputs(work / "in", args.images)
        tiny_model, tiny_in = emulated_artifact(work, batch=1), aipp_folder(work / "tiny", args.tiny_files)
        cluster.start()
        report["cluster_start_s"] = cluster.start_s
        ray = {"engine": "ray", "address": cluster.address}
        sides = {
            "one process (2 threads)": lambda n: one_run(model, inputs, work / "out", n, batchsize=8),
            "ray, 1 worker (2 threads)": lambda n: one_run(model, inputs, work / "out", n, batchsize=8, threads=2,
                                                           ray_options=RayOptions(max_actors=1), **ray),
            "ray, 2 workers (1 thread each)": lambda n: one_run(model, inputs, work / "out", n, batchsize=8, **ray),
        }
        # Byte identity first (kept folders), then the timed rounds, interleaved.
        kept = [one_run(model, inputs, work / f"keep{i}", "keep", **kw)["dir"] for i, kw in enumerate(
            ({"batchsize": 8}, {"batchsize": 8, "threads": 2, "ray_options": RayOptions(max_actors=1), **ray},
             {"batchsize": 8, **ray}))]
        report["identical_outputs"] = all(same_tree(Path(kept[0]), Path(other)) for other in kept[1:])
        rows: dict[str, list[dict]] = {name: [] for name in sides}
        order = list(sides)
        for r in range(args.rounds):  # interleaved, and each round starts with another side (the load drifts)
            for name in order[r % len(order):] + order[:r % len(order)]:
                rows[name].append(sides[name](f"r{r}"))
        base = rows["one process (2 threads)"]
        report["rows"] = {name: {
            "e2e_ips": statistics.median(x["e2e_ips"] for x in runs),
            "compute_ips": statistics.median(x["compute_ips"] for x in runs),
            "e2e_ratio": statistics.median(x["e2e_ips"] / b["e2e_ips"] for x, b in zip(runs, base, strict=True)),
            "compute_ratio": statistics.median(x["compute_ips"] / b["compute_ips"]
                                               for x, b in zip(runs, base, strict=True)),
            "fixed_s": statistics.median(x.get("fixed_s", x["e2e_s"] - x["compute_s"]) for x in runs),
            "rounds": [{k: v for k, v in x.items() if k != "dir"} for x in runs],
        } for name, runs in rows.items()}
        report["overhead"] = overhead(tiny_model, tiny_in, work, args.tiny_files, args.rounds, ray)
    finally:
        report["cluster_shutdown_s"] = cluster.shutdown() if cluster.cluster is not None else None
        shutil.rmtree(work, ignore_errors=True)
    report["extrapolation"] = extrapolate(report)
    report["load_after"] = os.getloadavg()[0]
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    print_report(report)
    return 0


def overhead(model: Path, inputs: Path, work: Path, files: int, rounds: int, ray: dict) -> dict:
    """Compute-phase ms per file: one process vs one Ray worker (1 thread) at 1, 8, 64 files per task."""
    local, remote = [], {f: [] for f in FILES_PER_TASK}
    tasks = {}
    for r in range(rounds):
        local.append(one_run(model, inputs, work / "tiny_out", f"l{r}", threads=1))
        for fpt in FILES_PER_TASK:
            row = one_run(model, inputs, work / "tiny_out", f"r{fpt}_{r}", threads=1,
                          ray_options=RayOptions(max_actors=1, files_per_task=fpt), **ray)
            remote[fpt].append(row)
            tasks[fpt] = row["tasks"]
    out = {"files": files, "local_ms_per_file": statistics.median(x["compute_s"] for x in local) * 1000 / files}
    for fpt in FILES_PER_TASK:
        extra = [(x["compute_s"] - b["compute_s"]) * 1000 for x, b in zip(remote[fpt], local, strict=True)]
        out[f"fpt{fpt}"] = {"tasks": tasks[fpt],
                            "ms_per_file": statistics.median(x["compute_s"] for x in remote[fpt]) * 1000 / files,
                            "overhead_ms_per_file": statistics.median(extra) / files,
                            "overhead_ms_per_task": statistics.median(extra) / tasks[fpt]}
    return out


def extrapolate(report: dict) -> dict:
    """The driver takes one task result at a time: with c ms of it per task and F files per task it completes at
    most F / c images/s however many nodes there are; a 50,000-image run costs 50,000 / F * c of its time."""
    per_task = report["overhead"]["fpt1"]["overhead_ms_per_task"]  # one file per task: tasks == files
    node_ips = report["rows"]["ray, 1 worker (2 threads)"]["compute_ips"]
    fixed = report["rows"]["ray, 2 workers (1 thread each)"]["fixed_s"]
    cases = []
    for fpt in (8, 64):
        bound = fpt / per_task * 1000
        cases.append({"files_per_task": fpt, "driver_bound_ips": bound, "nodes_at_this_speed": bound / node_ips,
                      "nodes_at_2000_ips": bound / 2000, "driver_s_for_50k": 50000 / fpt * per_task / 1000,
                      "fixed_s": fixed})
    return {"overhead_ms_per_task": per_task, "resnet18_ips_per_node_here": node_ips, "cases": cases}


def print_report(r: dict) -> None:
    print(f"\nResNet-18 bs8, {r['images']} images (3x224x224 float32), {r['cores']} cores, median of {r['rounds']} "
          f"interleaved rounds; load {r['load_before']:.1f} -> {r['load_after']:.1f}; cluster of 2 nodes up in "
          f"{r['cluster_start_s']:.1f} s; outputs byte-identical: {r['identical_outputs']}")
    print(f"{'side':<32}{'e2e img/s':>10}{'ratio':>7}{'compute img/s':>15}{'ratio':>7}{'fixed s':>9}")
    for name, row in r["rows"].items():
        print(f"{name:<32}{row['e2e_ips']:>10.1f}{row['e2e_ratio']:>7.2f}{row['compute_ips']:>15.1f}"
              f"{row['compute_ratio']:>7.2f}{row['fixed_s']:>9.2f}")
    o = r["overhead"]
    print(f"\ntrivial model, {o['files']} files, 1 thread: one process {o['local_ms_per_file']:.3f} ms/file")
    for fpt in FILES_PER_TASK:
        row = o[f"fpt{fpt}"]
        print(f"  one Ray worker, {fpt:>2} file(s) per task ({row['tasks']} tasks): {row['ms_per_file']:.3f} ms/file, "
              f"overhead {row['overhead_ms_per_file']:.3f} ms/file = {row['overhead_ms_per_task']:.2f} ms/task")
    e = r["extrapolation"]
    print(f"\n50,000 images on N nodes, at {e['overhead_ms_per_task']:.2f} ms of driver time per task:")
    for c in e["cases"]:
        print(f"  {c['files_per_task']:>2} files/task: the driver bounds the cluster at {c['driver_bound_ips']:,.0f} "
              f"img/s = {c['nodes_at_this_speed']:,.0f} nodes of this one ({e['resnet18_ips_per_node_here']:.1f} "
              f"img/s) or {c['nodes_at_2000_ips']:.1f} nodes at 2,000 img/s; {c['driver_s_for_50k']:.1f} s of driver "
              f"time for 50,000 images, plus {c['fixed_s']:.1f} s fixed per run")


if __name__ == "__main__":
    sys.exit(main())
