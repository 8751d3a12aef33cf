"""The spec's geometry applied to a PIL image: resize of the short side, then a centre crop.

One implementation shared by `preprocess` (the tensor files) and the trainer (its eval and
light-augmentation transforms), so what a model is trained on and what it is fed match
byte for byte. Rounding follows the ModelZoo script (see `infer_kit.spec`).
"""

from __future__ import annotations

from PIL import Image

from infer_kit.spec import PreprocessSpec, cover_size

RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


def resize_short_side(image: Image.Image, spec: PreprocessSpec) -> Image.Image:
    """Resize so the short side equals ``spec.resize`` (no-op when it already does)."""
    return resize_to_cover(image, spec.resize, spec.resize, spec.interpolation, spec.long_side)


def resize_to_cover(image: Image.Image, width: int, height: int, interpolation: str = "bilinear",
                    long_side: str = "floor") -> Image.Image:
    """Resize so the image covers ``width x height`` with one side exact (see `infer_kit.spec.cover_size`)."""
    size = cover_size(*image.size, width, height, long_side)
    if size == image.size:
        return image
    return image.resize(size, RESAMPLING[interpolation])


def center_crop(image: Image.Image, width: int, height: int | None = None) -> Image.Image:
    """The ``width x height`` (default square) centre crop, offsets rounded half to even as the ModelZoo does."""
    height = width if height is None else height
    w, h = image.size
    top = int(round((h - height) / 2.0))
    left = int(round((w - width) / 2.0))
    return image.crop((left, top, left + width, top + height))
