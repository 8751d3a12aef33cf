"""How fast ``evaluate`` scores run outputs, against the ModelZoo's way, in one run.

Generates N outputs of width 1000 in the three formats ais_bench writes (TXT as
``np.savetxt(fmt="%f", newline=" ")`` lines, NPY, BIN with a run summary beside the folder)
and a ``val_label.txt``, then times on the same files:

* the baseline: a single-process loop written the way ``vision_metric_ImageNet.py`` works
  (``os.listdir``, first line, ``np.float32`` per value, ``np.argsort(-prediction)``);
* ``evaluate`` on TXT with one process and with every core (the default);
* ``evaluate`` on NPY and BIN.

The baseline runs once; each ``evaluate`` configuration runs ``--repeat`` times, interleaved,
and its best time counts.

It prints seconds, files/s and the ratios, and checks that every result.json is
identical to the baseline's. Figures are ratios measured in the same run: the machine is
shared and noisy. Nothing is asserted.

    .venv/bin/python benchmarks/bench_evaluate.py            # 20,000 files (about a minute)
    .venv/bin/python benchmarks/bench_evaluate.py --count 50000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def generate(root: Path, count: int, width: int, seed: int = 0) -> dict[str, Path]:
    """TXT, NPY and BIN result folders plus val_label.txt; about 76 % top-1 by construction.

    Scores are distinct and already rounded to 6 decimals, so the three formats hold the same
    values and no ties make the ModelZoo's unstable argsort arbitrary.
    """
    rng = np.random.default_rng(seed)
    folders = {fmt: root / f"result_{fmt}" for fmt in ("txt", "npy", "bin")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    line_format = "%f " * width
    labels = []
    for start in range(0, count, 1000):
        n = min(1000, count - start)
        order = rng.permuted(np.tile(np.arange(width), (n, 1)), axis=1)
        block = ((order + 0.5 * rng.random((n, width))) * (6 / width) - 3).round(6).astype(np.float32)
        truth = rng.integers(0, width, n)
        ranks = np.where(rng.random(n) < 0.76, 0, rng.integers(1, 12, n))
        for i in range(n):
            key = f"ILSVRC2012_val_{start + i + 1:08d}"
            row = block[i]
            other = int(np.argsort(-row)[ranks[i]])
            row[truth[i]], row[other] = row[other], row[truth[i]]
            (folders["txt"] / f"{key}_0.txt").write_bytes(((line_format % tuple(row.tolist())) + "\n").encode())
            np.save(folders["npy"] / f"{key}_0.npy", row[None, :])
            row.tofile(folders["bin"] / f"{key}_0.bin")
            labels.append(f"{key}.JPEG {truth[i]}\n")
    summary = {"infer_kit": {"outfmt": "BIN", "outputs": [{"name": "output1", "dtype": "float32", "shape": [width]}]}}
    (root / "result_bin_summary.json").write_text(json.dumps(summary))
    (root / "val_label.txt").write_text("".join(labels))
    return folders


def modelzoo_loop(result_dir: Path, label_file: Path, out_file: Path) -> None:
    """What vision_metric_ImageNet.py does, in its order and with its parsing (one process)."""
    gt = {}
    with open(label_file) as f:
        for line in f.readlines():
            temp = line.strip().split(" ")
            gt[temp[0].split(".")[0]] = temp[1]
    count, res_cnt, n_labels, topn = 0, 0, "", 5
    count_hit = np.zeros(topn)
    for name in os.listdir(result_dir):
        count += 1
        temp = name.split(".")[0]
        img_name = temp[: temp.rfind("_")]
        with open(os.path.join(result_dir, name)) as f:
            values = f.readline().strip().split(" ")
        n_labels = len(values)
        prediction = np.zeros(n_labels, dtype=np.float32)
        for i, value in enumerate(values):
            prediction[i] = np.float32(value)
        sort_index = np.argsort(-prediction)
        real_label = int(gt[img_name]) + (1 if n_labels == 1001 else 0)
        res_cnt = min(len(sort_index), topn)
        for i in range(res_cnt):
            if str(real_label) == str(sort_index[i]):
                count_hit[i] += 1
                break
    table = {"title": "Overall statistical evaluation", "value": [
        {"key": "Number of images", "value": str(count)}, {"key": "Number of classes", "value": str(n_labels)}]}
    accuracy = np.cumsum(count_hit) / count
    for i in range(res_cnt):
        value = str(round(accuracy[i] * 100, 2)) + "%"
        table["value"].append({"key": "Top" + str(i + 1) + " accuracy", "value": value})
    with open(out_file, "w") as writer:
        json.dump(table, writer)


def timed(func, *args, **kwargs) -> float:
    start = time.perf_counter()
    func(*args, **kwargs)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000, help="outputs to generate (default 20000)")
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for each evaluate run (default 3)")
    parser.add_argument("--workdir", help="where to generate (default: a temporary folder, removed afterwards)")
    args = parser.parse_args()

    from infer_kit.postprocess import evaluate
    from infer_kit.workers import cpu_count

    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench_evaluate_"))
    try:
        start = time.perf_counter()
        folders = generate(root, args.count, args.width)
        labels = root / "val_label.txt"
        print(f"generated {args.count} outputs of width {args.width} x 3 formats in {time.perf_counter() - start:.1f} s"
              f" ({sum(f.stat().st_size for f in folders['txt'].iterdir()) / 1e6:.0f} MB of TXT); "
              f"{cpu_count()} cores")

        baseline_json = root / "baseline.json"
        t_base = timed(modelzoo_loop, folders["txt"], labels, baseline_json)
        runs = {
            "txt, 1 process": dict(dirs=folders["txt"], workers=1),
            "txt, all cores": dict(dirs=folders["txt"], workers=None),
            "npy, all cores": dict(dirs=folders["npy"], workers=None),
            "bin, all cores": dict(dirs=folders["bin"], workers=None),
        }
        times = {name: float("inf") for name in runs}
        identical = True
        for _ in range(args.repeat):  # interleaved, best of N: the machine is shared
            for name, run in runs.items():
                out = root / f"result_{name.replace(', ', '_').replace(' ', '_')}.json"
                times[name] = min(times[name], timed(evaluate, run["dirs"], labels, output=out,
                                                     workers=run["workers"]))
                identical &= out.read_bytes() == baseline_json.read_bytes()

        n = args.count
        print(f"{'ModelZoo loop (txt, 1 process)':<32} {t_base:7.2f} s {n / t_base:8.0f} files/s   1.00x")
        for name, seconds in times.items():
            print(f"{'evaluate ' + name:<32} {seconds:7.2f} s {n / seconds:8.0f} files/s "
                  f"{t_base / seconds:6.2f}x")
        print(f"parallel speed-up on TXT (1 process -> all cores): "
              f"{times['txt, 1 process'] / times['txt, all cores']:.2f}x")
        print(f"NPY vs TXT: {times['txt, all cores'] / times['npy, all cores']:.1f}x faster; "
              f"BIN vs TXT: {times['txt, all cores'] / times['bin, all cores']:.1f}x faster")
        print(f"every result.json identical to the ModelZoo loop's: {identical}")
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory of this process (generator, baseline and evaluate's main side): {peak:.0f} MB; "
              f"all {n} score rows at once would be {n * args.width * 4 / 1e6:.0f} MB of float32 "
              f"(workers hold one chunk of rows each)")
        print(baseline_json.read_text())
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
