"""Is disk I/O hidden behind compute in ``infer-kit run``?

For a ResNet-50 (random weights; speed does not depend on them) this measures, in one run:

* the raw ONNX Runtime loop: ``session.run`` over batches already in memory;
* ``infer_kit.runtime.stage.run`` over the same number of ``.bin`` files, outputs written
  (its end-to-end images/s: reading, compute and writing, warm-up and model load excluded);

for an emulated AIPP artifact at batch 1 and 16 (uint8 256x256x3 bins) and for the float
ONNX model at batch 16 (float32 3x224x224 bins). The ratio run / raw should be >= 0.95.
"compute share" is the fraction of ``run``'s own wall time spent inside ``session.run``,
measured in the same interval, so it is immune to the machine's noise: 1.0 means the
reader and writer threads cost the compute nothing visible. It also reports torch eager
vs ONNX Runtime images/s on the same model and batch.

The machine is shared and noisy: every measurement is repeated ``--rounds`` times,
alternating raw and run, and the median is reported. Nothing is asserted.

    .venv/bin/python benchmarks/bench_run.py [--rounds 3] [--images 32] [--outfmt BIN]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from infer_kit.console import configure
from infer_kit.runtime import open_runner, run


def export_resnet50(folder: Path) -> Path:
    from infer_kit.converter import export_onnx

    result = export_onnx("resnet50", None, folder / "resnet50.onnx", batch=None, random_init=True, verify=False)
    return result.path


def emulated_artifacts(onnx_path: Path, batches: list[int]) -> dict[int, Path]:
    """The atc stage's emulated artifacts (AIPP + the default force_fp16 precision emulated)."""
    from infer_kit.converter import compile_om

    artifacts = compile_om(onnx_path, soc="Ascend910A", batch_sizes=batches, emulate=True)
    return {a.batch: a.model_file for a in artifacts}


def write_bins(folder: Path, count: int, shape: tuple[int, ...], dtype: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        if dtype == "uint8":
            data = rng.integers(0, 256, shape, dtype=np.uint8)
        else:
            data = rng.standard_normal(shape).astype(np.float32)
        data.tofile(folder / f"ILSVRC2012_val_{i + 1:08d}.bin")
    return folder


def raw_feeds(runner: object, images: int) -> list[np.ndarray]:
    desc = runner.inputs[0]
    rng = np.random.default_rng(1)
    feeds = []
    for _ in range(images // runner.batch):
        raw = rng.integers(0, 256, desc.nbytes, dtype=np.uint8) if desc.dtype == "uint8" else (
            rng.standard_normal(int(np.prod(desc.shape))).astype(np.float32))
        feeds.append(raw.view(desc.dtype).reshape(desc.shape))
    return feeds


def raw_images_per_s(runner: object, feeds: list[np.ndarray]) -> float:
    """``session.run`` on batches already in memory (same session options as ``run``'s default)."""
    runner.infer([feeds[0]])
    start = time.perf_counter()
    for feed in feeds:
        runner.infer([feed])
    return len(feeds) * runner.batch / (time.perf_counter() - start)


def run_images_per_s(model: Path, folder: Path, out: Path, name: str, batch: int, outfmt: str) -> tuple[float, float]:
    """``run``'s end-to-end images/s, and the share of its wall time spent inside the model."""
    result = run(model, folder, out, output_dirname=name, outfmt=outfmt, batchsize=batch, warmup_count=1)
    info = result.summary["infer_kit"]
    return info["throughput_e2e"], sum(result.summary["npu_compute_time_list"]) / 1000 / info["wall_time_s"]


def torch_images_per_s(batch: int, images: int) -> float:
    import torch

    from infer_kit.registry import create_model

    model = create_model("resnet50", num_classes=1000).eval()
    data = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode():
        model(data)
        start = time.perf_counter()
        for _ in range(images // batch):
            model(data)
    return (images // batch) * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=32, help="images per measurement (a multiple of 16)")
    parser.add_argument("--outfmt", default="BIN", choices=("BIN", "NPY", "TXT"))
    args = parser.parse_args()
    configure(-1)
    with tempfile.TemporaryDirectory(prefix="bench_run_") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        onnx_path = export_resnet50(work)
        cases = [(f"emulated OM bs{batch} (uint8 256x256x3 bins)", emu, batch, "aipp")
                 for batch, emu in emulated_artifacts(onnx_path, [1, 16]).items()]
        cases.append(("float ONNX bs16 (float32 3x224x224 bins)", onnx_path, 16, "float"))
        aipp_bins = write_bins(work / "prep_aipp", args.images, (256, 256, 3), "uint8")
        float_bins = write_bins(work / "prep_float", args.images, (3, 224, 224), "float32")
        print(f"setup (export, artifacts, {args.images} bins each): {time.perf_counter() - started:.1f} s")
        print(f"{'case':<44} {'raw ORT img/s':>14} {'run img/s':>10} {'run/raw':>8} {'compute share':>14}")
        ort16 = []
        for label, model, batch, layout in cases:
            runner = open_runner("onnxruntime", model, batch=batch)
            feeds = raw_feeds(runner, args.images)
            raw, piped, ratios, shares = [], [], [], []
            for n in range(args.rounds):
                order = (0, 1) if n % 2 == 0 else (1, 0)
                for step in order:
                    if step == 0:
                        raw.append(raw_images_per_s(runner, feeds))
                    else:
                        folder = aipp_bins if layout == "aipp" else float_bins
                        speed, share = run_images_per_s(model, folder, work / "out", f"{Path(model).stem}_{n}",
                                                        batch, args.outfmt)
                        piped.append(speed)
                        shares.append(share)
                ratios.append(piped[-1] / raw[-1])
            if layout == "float":
                ort16 = raw
            runner.close()
            print(f"{label:<44} {statistics.median(raw):>14.2f} {statistics.median(piped):>10.2f} "
                  f"{statistics.median(ratios):>8.3f} {statistics.median(shares):>14.3f}")
        eager = statistics.median(torch_images_per_s(16, args.images) for _ in range(args.rounds))
        ort = statistics.median(ort16)
        print(f"torch eager vs ONNX Runtime, resnet50 bs16: {eager:.2f} vs {ort:.2f} img/s (ORT {ort / eager:.2f}x)")
        print(f"total: {time.perf_counter() - started:.1f} s, outputs as {args.outfmt}")


if __name__ == "__main__":
    main()
