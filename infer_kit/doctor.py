"""What this machine can run: one line per tool or backend, with the reason when not."""

from __future__ import annotations

import importlib
import importlib.util
import platform
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _module_version(module: str, required: bool = True, extra: str = "") -> Check:
    if importlib.util.find_spec(module) is None:
        return Check(module, False, "not installed", required)
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # a broken install raises anything
        return Check(module, False, f"import failed: {type(exc).__name__}: {exc}".splitlines()[0], required)
    version = getattr(mod, "__version__", "installed")
    return Check(module, True, f"{version}{extra}", required)


def _torch() -> Check:
    check = _module_version("torch")
    if not check.ok:
        return check
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append(f"cuda x{torch.cuda.device_count()}")
    return Check("torch", True, f"{torch.__version__} (devices: {', '.join(devices)})")


def _onnxruntime() -> Check:
    check = _module_version("onnxruntime")
    if not check.ok:
        return check
    import onnxruntime

    providers = ", ".join(p.removesuffix("ExecutionProvider") for p in onnxruntime.get_available_providers())
    return Check("onnxruntime", True, f"{onnxruntime.__version__} (providers: {providers})")


def _atc() -> Check:
    path = shutil.which("atc")
    if path is None:
        return Check(
            "atc (CANN)", False,
            "not on PATH: CANN is not installed or set_env.sh not sourced; 'infer-kit atc' emulates the .om",
            required=False,
        )
    try:
        out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30)
        first = (out.stdout or out.stderr).strip().splitlines()[:1]
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("atc (CANN)", False, f"{path} does not run: {exc}", required=False)
    return Check("atc (CANN)", True, f"{path}" + (f" ({first[0][:60]})" if first else ""), required=False)


def _optional_module(label: str, module: str, why: str) -> Check:
    if importlib.util.find_spec(module) is None:
        return Check(label, False, f"not installed: {why}", required=False)
    try:
        mod = importlib.import_module(module)
    except Exception as exc:
        return Check(label, False, f"import failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}",
                     required=False)
    return Check(label, True, getattr(mod, "__version__", "installed"), required=False)


def collect() -> list[Check]:
    """Run every check (imports the heavy packages; not for start-up paths)."""
    return [
        Check("python", True, f"{platform.python_version()} ({platform.machine()}, {platform.system()})"),
        _torch(),
        _module_version("torchvision"),
        _module_version("timm"),
        _module_version("onnx"),
        _onnxruntime(),
        _module_version("onnxsim"),
        _atc(),
        _optional_module("ais_bench", "ais_bench", "runs .om models on Ascend (install from the ais_bench repo)"),
        _optional_module("torch_npu", "torch_npu", "trains on Ascend NPUs (pip install torch_npu)"),
        _optional_module("ray", "ray", "--engine ray spreads preprocess, run, evaluate, pipeline rows over a "
                                       "cluster (pip install 'infer-kit[ray]')"),
    ]
