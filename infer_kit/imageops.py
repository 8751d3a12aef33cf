"""The spec's geometry applied to a PIL image: resize of the short side, then a centre crop.

One implementation shared by `preprocess` (the tensor files) and the trainer (its eval and
light-augmentation transforms), so what a model is trained on and what it is fed match
byte for byte. Rounding follows the ModelZoo script (see `infer_kit.spec`).
"""

from __future__ import annotations

from PIL import Image

from infer_kit.spec import PreprocessSpec

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
    size = spec.resized_size(*image.size)
    if size == image.size:
        return image
    return image.resize(size, RESAMPLING[spec.interpolation])


def center_crop(image: Image.Image, side: int) -> Image.Image:
    """The ``side x side`` centre crop, offsets rounded half to even as the ModelZoo does."""
    width, height = image.size
    top = int(round((height - side) / 2.0))
    left = int(round((width - side) / 2.0))
    return image.crop((left, top, left + side, top + side))
