"""The ModelZoo preprocessing steps, byte for byte, and the two tensor layouts.

``imagenet_torch_preprocess.py`` (Ascend ModelZoo) does, per image: PIL open,
``convert('RGB')``, resize the short side to ``resize`` with PIL (skipped when it already
is), long side ``int(resize * long / short)``, then a centre crop at
``int(round((side - crop) / 2))`` (Python rounding, half to even). Its AIPP recipe writes
the ``resize x resize`` crop (``resnet``) or the ``crop x crop`` crop itself (``inceptionv3``,
``inceptionv4``) as raw HWC bytes, as the aipp layout's geometry says; its float recipes write float32 CHW
computed in float32 as ``x / 255.``, ``- mean``, ``/ std`` (RGB constants on RGB planes),
then reverse the planes for BGR models (``img[::-1, :, :]``, the EfficientNet scripts).

The float layout here is computed through a per-channel 256-entry lookup table built
with exactly those float32 operations, so every output value is bit-identical to the
script's while costing one gather per element.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

from infer_kit.imageops import UnsupportedPixels, center_crop, resize_short_side, to_rgb
from infer_kit.spec import PreprocessSpec

if TYPE_CHECKING:
    import numpy as np

class BadImage(Exception):
    """An input file that cannot be turned into a tensor; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def load_rgb(path: str | Path) -> Image.Image:
    """Decode an image completely and return it in RGB (grayscale, CMYK, palette, RGBA, 16-bit...)."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise BadImage("empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                image.load()
                return to_rgb(image)
    except BadImage:
        raise
    except UnsupportedPixels as exc:
        raise BadImage(str(exc)) from None
    except UnidentifiedImageError:
        raise BadImage("not an image format PIL can read") from None
    except Image.DecompressionBombError as exc:
        raise BadImage(f"image too large ({exc})") from None
    except OSError as exc:
        if exc.strerror and exc.filename:
            raise BadImage(f"cannot read the file ({exc.strerror})") from None
        raise BadImage(f"truncated or corrupt image ({exc})") from None
    except (ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise BadImage(f"cannot decode the image ({type(exc).__name__}: {exc})") from None


def aipp_bytes(image: Image.Image, spec: PreprocessSpec) -> bytes:
    """The aipp layout: uint8 HWC RGB, the centre square of the spec's geometry (``aipp_side``)."""
    return center_crop(resize_short_side(image, spec), spec.aipp_side).tobytes()


def float_tensor(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """The float layout: float32 CHW ``3 x crop x crop``, normalised, planes in channel order."""
    return normalised_planes(center_crop(resize_short_side(image, spec), spec.crop), spec)


def normalised_planes(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """An RGB image (already cropped) as float32 CHW, normalised, planes in channel order."""
    import numpy as np

    pixels = np.asarray(image, dtype=np.uint8)
    size = pixels.shape[:2]
    tables = _float_tables(spec.mean, spec.std)
    order = (0, 1, 2) if spec.channel_order == "RGB" else (2, 1, 0)
    out = np.empty((3, *size), dtype=np.float32)
    for plane, channel in enumerate(order):
        np.take(tables[channel], pixels[:, :, channel], out=out[plane], mode="clip")
    return out


def float_bytes(image: Image.Image, spec: PreprocessSpec) -> bytes:
    return float_tensor(image, spec).tobytes()


def sample_bytes(image: Image.Image, spec: PreprocessSpec, layout: str) -> bytes:
    """One image's file content in ``layout`` (``aipp`` or ``float``)."""
    return aipp_bytes(image, spec) if layout == "aipp" else float_bytes(image, spec)


@functools.lru_cache(maxsize=16)
def _float_tables(mean: tuple[float, float, float], std: tuple[float, float, float]) -> np.ndarray:
    """``tables[c][v]`` = ``(float32(v) / 255. - mean[c]) / std[c]`` evaluated in float32 like the script."""
    import numpy as np

    values = np.arange(256, dtype=np.float32)[None, :].repeat(3, axis=0)
    values = values / 255.0
    values -= np.array(mean, dtype=np.float32)[:, None]
    values /= np.array(std, dtype=np.float32)[:, None]
    values.setflags(write=False)
    return values
