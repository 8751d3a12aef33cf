"""What the Ascend emulation costs on a CPU, as ratios measured in one run.

For a ResNet-50 (random weights; speed does not depend on them) at batch 16 this compares
ONNX Runtime images/s of:

* the plain float ONNX model on already-normalised float32 batches (the baseline);
* the emulated artifact with AIPP in front, ``must_keep_origin_dtype`` (float32 compute);
* the emulated artifact with AIPP in front, ``force_fp16`` (ATC's default: float16 operands and results);
* the AIPP subgraph alone (ONNX) and the numpy reference of the same arithmetic;

and times ``compile_om`` for both precision modes. Rounds alternate between the cases and
the medians are reported (the machine is shared and noisy). Nothing is asserted.

    .venv/bin/python benchmarks/bench_atc.py [--rounds 5] [--batch 16] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import onnxruntime as ort

    from infer_kit.aipp import aipp_model, emulate_aipp, generate_op
    from infer_kit.console import configure
    from infer_kit.converter import compile_om, export_onnx
    from infer_kit.registry import get_model

    configure(-1)
    batch = args.batch
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        onnx_path = export_onnx("resnet50", None, work / "resnet50.onnx", random_init=True, verify=False).path
        compile_seconds, models = {}, {"plain float ONNX": onnx_path}
        for mode in ("must_keep_origin_dtype", "force_fp16"):
            started = time.perf_counter()
            artifact = compile_om(onnx_path, soc="Ascend910A", batch_sizes=[batch], emulate=True, force=True,
                                  precision_mode=mode, output=work / f"r50_{mode}")[0]
            compile_seconds[mode] = time.perf_counter() - started
            models[f"AIPP + {mode}"] = artifact.paths.emulated

        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        sessions = {name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                    for name, path in models.items()}
        op = generate_op(get_model("resnet50").spec)
        subgraph = ort.InferenceSession(aipp_model(op, batch=batch).SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])
        source = np.random.default_rng(0).integers(0, 256, (batch, 256, 256, 3), dtype=np.uint8)
        normalised = emulate_aipp(op, source).astype(np.float32)
        feeds = {name: normalised if name == "plain float ONNX" else source for name in sessions}

        cases = {name: (lambda s=session, x=feeds[name]: s.run(None, {s.get_inputs()[0].name: x}))
                 for name, session in sessions.items()}
        cases["AIPP subgraph alone (ONNX)"] = lambda: subgraph.run(None, {subgraph.get_inputs()[0].name: source})
        cases["AIPP numpy reference"] = lambda: emulate_aipp(op, source)
        for case in cases.values():
            case()
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, case in cases.items():
                started = time.perf_counter()
                case()
                times[name].append(time.perf_counter() - started)

    median = {name: statistics.median(values) for name, values in times.items()}
    base = median["plain float ONNX"]
    print(f"ResNet-50, batch {batch}, {args.threads} threads, median of {args.rounds} interleaved rounds")
    for mode, seconds in compile_seconds.items():
        print(f"  compile_om ({mode}): {seconds:.1f} s")
    print(f"  {'case':<34} {'img/s':>8} {'vs plain':>9}")
    for name, seconds in median.items():
        print(f"  {name:<34} {batch / seconds:8.1f} {base / seconds:8.2f}x")


if __name__ == "__main__":
    main()
