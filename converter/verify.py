"""Export verification: torch eager vs ONNX Runtime on the same inputs.

Several random batches (seeded), and with ``images`` real photos preprocessed with the
model's spec by torchvision's own transforms (an implementation independent of
infer-kit's preprocess stage). Reports max/mean abs difference, the lowest per-sample
cosine similarity and top-1 agreement; fails above ``atol + rtol * max|torch output|``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer_kit.errors import InferKitError
from infer_kit.imageops import UnsupportedPixels, to_rgb
from infer_kit.spec import PreprocessSpec

if TYPE_CHECKING:
    import numpy as np
    import torch

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class VerificationReport:
    samples: int
    random_batches: int
    images: int
    max_abs_diff: float
    mean_abs_diff: float
    min_cosine: float
    top1_agreement: float
    tolerance: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        source = f"{self.random_batches} random batch(es)"
        if self.images:
            source += f" + {self.images} image(s)"
        return (
            f"{source}, {self.samples} samples: max |diff| {self.max_abs_diff:.2e} (tolerance {self.tolerance:.2e}), "
            f"mean |diff| {self.mean_abs_diff:.2e}, min cosine {self.min_cosine:.6f}, "
            f"top-1 agreement {100 * self.top1_agreement:.1f} %"
        )


def verify_onnx(
    model: torch.nn.Module,
    onnx_path: str | os.PathLike[str],
    spec: PreprocessSpec,
    *,
    batch_size: int = 2,
    random_batches: int = 3,
    images: str | os.PathLike[str] | None = None,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    seed: int = 0,
) -> VerificationReport:
    """Compare ``model`` (eval mode) with the ONNX file on random batches and optional images."""
    import numpy as np
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    input_meta = session.get_inputs()[0]
    fixed_batch = input_meta.shape[0] if isinstance(input_meta.shape[0], int) else None
    batch = fixed_batch or batch_size
    generator = torch.Generator().manual_seed(seed)
    feeds = [torch.randn(batch, 3, spec.crop, spec.crop, generator=generator) for _ in range(random_batches)]
    image_count = 0
    if images is not None:
        image_tensor = load_images(images, spec)
        image_count = int(image_tensor.shape[0])
        feeds.extend(_rebatch(image_tensor, batch))
    refs, outs = [], []
    with torch.inference_mode():
        for x in feeds:
            refs.append(model(x).float().numpy())
            outs.append(session.run(None, {input_meta.name: x.numpy()})[0])
    ref, out = np.concatenate(refs), np.concatenate(outs)
    if images is not None and image_count % batch:
        keep = len(ref) - (batch - image_count % batch)
        ref, out = ref[:keep], out[:keep]
    return _report(ref, out, random_batches, image_count, atol, rtol)


def _report(ref: np.ndarray, out: np.ndarray, random_batches: int, images: int, atol: float,
            rtol: float) -> VerificationReport:
    import numpy as np

    diff = np.abs(ref.astype(np.float64) - out.astype(np.float64))
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    cosine = np.where(norms > 0, np.sum(ref * out, axis=1) / np.maximum(norms, 1e-30), 1.0)
    tolerance = atol + rtol * float(np.max(np.abs(ref)))
    max_diff = float(diff.max())
    return VerificationReport(
        samples=int(ref.shape[0]),
        random_batches=random_batches,
        images=images,
        max_abs_diff=max_diff,
        mean_abs_diff=float(diff.mean()),
        min_cosine=float(cosine.min()),
        top1_agreement=float(np.mean(ref.argmax(1) == out.argmax(1))),
        tolerance=tolerance,
        passed=bool(max_diff <= tolerance and np.isfinite(out).all()),
    )


def find_images(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files under ``folder``, sorted; a missing folder or one without images is one line."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InferKitError(f"--verify-images: {folder} is not a folder of images")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InferKitError(f"--verify-images: no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def load_images(folder: str | os.PathLike[str], spec: PreprocessSpec) -> torch.Tensor:
    """Real images from ``folder`` as a float NCHW batch, preprocessed by torchvision per ``spec``."""
    import torch
    from PIL import Image, UnidentifiedImageError
    from torchvision import transforms

    files = find_images(folder)
    transform = transforms.Compose([
        transforms.Resize(spec.resize, interpolation=transforms.InterpolationMode(spec.interpolation)),
        transforms.CenterCrop(spec.crop),
        transforms.ToTensor(),
        transforms.Normalize(spec.mean, spec.std),
    ])
    tensors = []
    for file in files:
        try:
            with Image.open(file) as image:
                tensor = transform(to_rgb(image))
        except (UnidentifiedImageError, OSError, UnsupportedPixels) as exc:
            raise InferKitError(f"--verify-images: cannot read {file} ({exc})") from None
        tensors.append(tensor.flip(0) if spec.channel_order == "BGR" else tensor)
    return torch.stack(tensors)


def _rebatch(tensor: torch.Tensor, batch: int) -> list[torch.Tensor]:
    """Split into batches of exactly ``batch`` (the last padded by repeating its first sample)."""
    import torch

    chunks = list(torch.split(tensor, batch))
    last = chunks[-1]
    if last.shape[0] < batch:
        chunks[-1] = torch.cat([last, last[:1].expand(batch - last.shape[0], *last.shape[1:])])
    return chunks
