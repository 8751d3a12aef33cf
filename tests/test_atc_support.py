"""Helpers for the aipp/atc/emulation tests: a tiny exported classifier, a fake ``atc``, photo sources.

* ``tiny_classifier``: a seeded torch CNN exported the way ``infer-kit export`` does (opset 11,
  ``actual_input_1`` -> ``output1``, batch dynamic or fixed) with its spec stamped; returns the
  path and the torch module, so results can be compared with torch.
* ``install_fake_atc``: an ``atc`` executable on PATH that records its argv and cwd and either
  writes ``<output>.om`` (or ``<output>_linux_x86_64.om``) or fails like ATC with an E-code.
* ``source_images``: the real photos as the ``aipp`` layout holds them (uint8 RGB, resize x resize).
"""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from infer_kit.metadata import stamp
from infer_kit.spec import PreprocessSpec

TINY_SPEC = PreprocessSpec(resize=40, crop=32)


def tiny_torch_model(classes: int = 10, seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes),
    )
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.2, 0.2)
        model[1].running_var.uniform_(0.5, 1.5)
    return model.eval()


def export_model(model, path: Path, spec: PreprocessSpec, *, batch: int | None = None, opset: int = 11,
                 arch: str = "tiny", classes: int = 10) -> Path:
    """Export like ``infer-kit export``: names of the recipe, dynamic batch unless ``batch`` is given."""
    import torch

    example = torch.zeros(batch or 2, 3, spec.crop, spec.crop)
    buffer = io.BytesIO()
    dynamic = None if batch else {"actual_input_1": {0: "-1"}, "output1": {0: "-1"}}
    torch.onnx.export(model, example, buffer, dynamo=False, opset_version=opset, input_names=["actual_input_1"],
                      output_names=["output1"], dynamic_axes=dynamic)
    proto = onnx.load_from_string(buffer.getvalue())
    stamp(proto, spec, arch=arch, num_classes=classes)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return path


def tiny_classifier(folder: Path, *, spec: PreprocessSpec = TINY_SPEC, name: str = "tiny", batch: int | None = None,
                    opset: int = 11, classes: int = 10):
    model = tiny_torch_model(classes)
    return export_model(model, folder / f"{name}.onnx", spec, batch=batch, opset=opset, classes=classes), model


FAKE_ATC = """#!{python}
import json, os, sys
from pathlib import Path
Path(os.environ["FAKE_ATC_LOG"]).open("a").write(json.dumps({{"argv": sys.argv, "cwd": os.getcwd()}}) + "\\n")
mode = os.environ.get("FAKE_ATC_MODE", "ok")
print("ATC start working now, please wait for a moment.", flush=True)
if mode.startswith("fail"):
    print("ATC run failed, Please check the detail log, Try 'atc --help' for more information")
    print("E10052: AIPP configuration is invalid. Reason: crop_size_w[300] should be equal to output W[224].")
    print("        TraceBack (most recent call last):")
    sys.exit(0 if mode == "fail-exit0" else 1)
if mode == "crash":
    print("Segmentation fault")
    sys.exit(139)
output = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--output="))
if mode != "no-om":
    suffix = "_linux_x86_64.om" if mode == "suffix" else ".om"
    Path(output + suffix).write_bytes(b"fake om")
print("ATC run success, welcome to the next use.")
"""


def install_fake_atc(folder: Path, monkeypatch: pytest.MonkeyPatch, mode: str = "ok") -> Path:
    """Put a fake ``atc`` first on PATH; returns the file its calls are recorded in (one JSON per line)."""
    bin_dir = folder / "fake_bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "atc"
    script.write_text(FAKE_ATC.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    calls = folder / "atc_calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_ATC_LOG", str(calls))
    monkeypatch.setenv("FAKE_ATC_MODE", mode)
    return calls


def atc_calls(calls: Path) -> list[dict]:
    if not calls.exists():
        return []
    return [json.loads(line) for line in calls.read_text().splitlines()]


def source_images(photos: dict, size: int) -> np.ndarray:
    """The photos as aipp-layout sources: uint8 RGB ``(n, size, size, 3)`` (ModelZoo resize + centre crop)."""
    from infer_kit.aipp.source import fit_image

    return np.stack([fit_image(image, size, size) for image in photos.values()])


def float_preprocess(sources: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """torchvision-style float input from the same bytes: centre crop, /255, (x - mean) / std, CHW."""
    import torch
    from torchvision.transforms import functional as tf

    batch = []
    for image in sources:
        tensor = tf.to_tensor(image)  # C,H,W float in 0..1
        tensor = tf.center_crop(tensor, [spec.crop, spec.crop])
        tensor = tf.normalize(tensor, list(spec.mean), list(spec.std))
        if spec.channel_order == "BGR":
            tensor = tensor.flip(0)
        batch.append(tensor)
    return torch.stack(batch).numpy()
