"""One source image in the layout an AIPP op reads, from a photo, a ``.bin`` or a ``.npy``.

Photos are brought to the config's source size the ModelZoo way (short side resized with PIL
bilinear, long side truncated, centre crop with Python rounding) and given as RGB bytes, the
``aipp`` layout infer-kit's ``preprocess`` writes; YUV420SP configs get them encoded as NV12 with
the colour standard of the config's matrix; YUV400 configs get the luma.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from infer_kit.aipp.config import AippOp
from infer_kit.aipp.csc import identify_yuv_matrix, rgb_to_nv12
from infer_kit.aipp.geometry import resolve_geometry, source_shape
from infer_kit.errors import InferKitError
from infer_kit.imageops import UnsupportedPixels, center_crop, resize_to_cover, to_rgb

TENSOR_SUFFIXES = (".bin", ".npy")


def fit_image(image: object, height: int, width: int) -> np.ndarray:
    """uint8 RGB ``(height, width, 3)``: resized to cover (bilinear, the ModelZoo way), then centre-cropped."""
    from PIL import Image

    assert isinstance(image, Image.Image)
    covered = resize_to_cover(to_rgb(image), width, height)
    return np.asarray(center_crop(covered, width, height), dtype=np.uint8)


def load_source(path: str | os.PathLike[str], op: AippOp, *, model_hw: tuple[int, int] | None = None,
                standard: str | None = None) -> np.ndarray:
    """One image in ``op``'s source layout (see :func:`infer_kit.aipp.geometry.source_shape`)."""
    path = Path(path)
    geometry = resolve_geometry(op, model_hw)
    shape = source_shape(op, geometry)
    if not path.is_file():
        raise InferKitError(f"input not found: {path}")
    if path.suffix.lower() in TENSOR_SUFFIXES:
        return _load_tensor(path, shape)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = fit_image(image, geometry.src_h, geometry.src_w)
    except (UnidentifiedImageError, OSError, UnsupportedPixels) as exc:
        raise InferKitError(f"{path} is neither an image nor a .bin/.npy tensor ({exc})") from None
    fmt = op.input_format
    if fmt == "RGB888_U8":
        return rgb
    if fmt == "YUV400_U8":
        return np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint8)[..., None]
    if fmt == "YUV420SP_U8":
        found = identify_yuv_matrix(op.csc_matrix(), op.input_bias()) if op.get("csc_switch") else None
        nv12 = rgb_to_nv12(rgb, standard or (found[0] if found else "jpeg"))
        if op.get("rbuv_swap_switch"):  # the config expects NV21: V before U
            chroma = nv12[geometry.src_h:].reshape(-1, 2)[:, ::-1].reshape(-1, geometry.src_w)
            nv12 = np.concatenate([nv12[: geometry.src_h], chroma], axis=0)
        return nv12[..., None]
    raise InferKitError(f"cannot build {fmt} input from a photo", hint="give the source bytes as a .bin file")


def _load_tensor(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    expected = int(np.prod(shape))
    if path.suffix.lower() == ".npy":
        try:
            data = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise InferKitError(f"{path} is not a readable .npy file ({exc})") from None
        if data.dtype != np.uint8:
            raise InferKitError(f"{path} holds {data.dtype}; AIPP takes uint8 source bytes")
        raw = data.reshape(-1)
    else:
        raw = np.fromfile(path, dtype=np.uint8)
    if raw.size != expected:
        hint = None
        if raw.size > expected and raw.size % 4 == 0:
            hint = "a float32 tensor? AIPP models take the raw uint8 image bytes ('infer-kit preprocess' aipp layout)"
        raise InferKitError(f"{path} has {raw.size} bytes, the AIPP source takes {expected} "
                            f"({'x'.join(map(str, shape))} uint8)", hint=hint)
    return raw.reshape(shape)
