"""``--perf --backend trtexec``: ais_bench's TensorRT path, which runs NVIDIA's ``trtexec`` on an ONNX model.

ais_bench builds ``trtexec --onnx=<model> --fp16 [--device=<d>] [--iterations=<loop>]
[--batch=<batchsize>]`` (its warm-up count lands in an attribute the command never reads, so no
``--warmUp``), echoes each line as ``[INFO] <line>`` and parses Throughput, H2D Latency, GPU Compute
Time, D2H Latency and Total Host Walltime. No NPU is involved. Here it runs the same command when
``trtexec`` is on PATH; without TensorRT it says so (exit 2). (The newest ais_bench refuses a
non-``.om`` model at parse time, so there this path cannot be reached at all.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from infer_kit.errors import BackendUnavailable, InferKitError

_AFTER_COLON = re.compile(r"(?<=: )\d+\.?\d*")
_AFTER_EQUALS = re.compile(r"(?<== )\d+\.?\d*")


@dataclass
class TrtexecResult:
    argv: list[str]
    lines: list[str] = field(default_factory=list)
    throughput: float | None = None
    compute_time: list[float] | None = None  # min, max, mean, median, percentile (ms)
    h2d_latency: list[float] | None = None
    d2h_latency: list[float] | None = None
    host_wall_time: float | None = None


def trtexec_argv(executable: str, model: str, *, device: int | None, loop: int | None,
                 batchsize: int | None) -> list[str]:
    argv = [executable, f"--onnx={model}", "--fp16"]
    if device is not None:
        argv.append(f"--device={device}")
    if loop is not None:
        argv.append(f"--iterations={loop}")
    if batchsize is not None:
        argv.append(f"--batch={batchsize}")
    return argv


def run_trtexec(model: str, *, backend: str | None, device: int | None = 0, loop: int | None = 1,
                batchsize: int | None = None) -> TrtexecResult:
    if backend != "trtexec":
        raise InferKitError("--perf runs a backend named by --backend, and none was given",
                            hint="ais_bench's only one: --backend trtexec")
    if not Path(model).is_file():
        raise InferKitError(f"model not found: {model}")
    executable = shutil.which("trtexec")
    if executable is None:
        raise BackendUnavailable("--perf --backend trtexec runs NVIDIA TensorRT's trtexec, which is not installed here",
                                 hint="install TensorRT (trtexec on PATH) on a GPU machine; without it use 'infer-kit "
                                      "run' on the model instead")
    result = TrtexecResult(trtexec_argv(executable, model, device=device, loop=loop, batchsize=batchsize))
    result.lines.append("[INFO] Trtexec Build command: " + " ".join(["trtexec", *result.argv[1:]]))
    try:
        done = subprocess.run(result.argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise InferKitError(f"cannot start trtexec: {exc.strerror}") from None
    for line in done.stdout.splitlines():
        text = line.strip()
        if text:
            result.lines.append(f"[INFO] {text}")
        if "Throughput" in line and _AFTER_COLON.findall(line):
            result.throughput = float(_AFTER_COLON.findall(line)[0])
        elif "H2D Latency" in line:
            result.h2d_latency = [float(v) for v in _AFTER_EQUALS.findall(line)[:5]]
        elif "GPU Compute Time: min" in line:
            result.compute_time = [float(v) for v in _AFTER_EQUALS.findall(line)[:5]]
        elif "D2H Latency" in line:
            result.d2h_latency = [float(v) for v in _AFTER_EQUALS.findall(line)[:5]]
        elif "Total Host Walltime" in line and _AFTER_COLON.findall(line):
            result.host_wall_time = float(_AFTER_COLON.findall(line)[0])
    if done.returncode != 0:
        raise InferKitError(f"trtexec failed with exit code {done.returncode}",
                            hint=(done.stderr.strip().splitlines() or ["see its output above"])[-1][:200])
    result.lines.append(f"[INFO] perf info:throughput={result.throughput} compute_time={result.compute_time} "
                        f"h2d_latency={result.h2d_latency} d2h_latency={result.d2h_latency} "
                        f"host_wall_time={result.host_wall_time}")
    return result
