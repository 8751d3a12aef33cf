"""A PIL image made RGB, then the spec's geometry: resize of the short side, then a centre crop.

One implementation shared by `preprocess` (the tensor files), the trainer (its eval and
light-augmentation transforms) and the AIPP source loader, so what a model is trained on and
what it is fed match byte for byte. Rounding follows the ModelZoo script (see `infer_kit.spec`).
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


# PIL modes that hold 16 bits per pixel: scaled to 8 bits, where convert('RGB') would clip them to white.
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


class UnsupportedPixels(ValueError):
    """An image whose pixel values have no known 8-bit meaning (32-bit float, wide 32-bit integers)."""


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB as the ModelZoo's ``convert('RGB')`` gives it, except where that would be silent garbage.

    8-bit modes (1, L, LA, P, PA, RGBA, CMYK, YCbCr, LAB, HSV, ...) convert exactly as the
    ModelZoo script does. 16-bit greyscale (``I;16*``) is scaled to 8 bits (``round(v / 257)``:
    0 -> 0, 65535 -> 255) where ``convert`` clips every value above 255 to white. 32-bit integer
    pixels are taken when they fit 0..255 (then identical to ``convert``) and refused otherwise,
    as are 32-bit float pixels: their scale is not known, and clipping would be garbage.
    """
    import numpy as np

    mode = image.mode
    if mode == "RGB":
        return image
    if mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.uint32)
        return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), "L").convert("RGB")
    if mode == "I":
        low, high = image.getextrema()
        if low < 0 or high > 255:
            raise UnsupportedPixels(f"32-bit integer pixels from {low} to {high}: their bit depth is not known "
                           "(save the image as 8-bit, or as a 16-bit PNG)")
    elif mode == "F":
        raise UnsupportedPixels("32-bit float pixels: their scale is not known (save the image as 8-bit or 16-bit)")
    return image.convert("RGB")



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
