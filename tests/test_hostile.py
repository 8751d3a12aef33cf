"""Hostile inputs and faults: each case once broke the one-line contract or lost, mixed or left work running.

Add a test here for every new bug of this kind (issue 12 started it with the cases found by
145 hostile inputs). Each asserts the documented exit code, one line, and what must stay intact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_preprocess_transforms import modelzoo_aipp

from infer_kit.imageops import to_rgb
from infer_kit.preprocess.transforms import BadImage, load_rgb, sample_bytes
from infer_kit.presets import get_preset

SPEC = get_preset("resnet").with_overrides(resize=16, crop=12)


def _photo(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (21, 29, 3), dtype=np.uint8), "RGB")


def _save(image: Image.Image, path: Path) -> Path:
    image.save(path)
    return path


# ---- every PIL mode: the ModelZoo's convert('RGB') bytes where that is right; never silent garbage ----
# (mode, file suffix): PNG where PIL writes the mode to PNG, TIFF otherwise.
EIGHT_BIT = [("1", "png"), ("L", "png"), ("LA", "png"), ("P", "png"), ("PA", "tiff"), ("RGB", "png"),
             ("RGBA", "png"), ("CMYK", "tiff"), ("YCbCr", "tiff"), ("LAB", "tiff")]


@pytest.mark.parametrize("mode, suffix", EIGHT_BIT)
def test_eight_bit_modes_give_the_modelzoo_bytes(tmp_path, mode, suffix):
    path = _save(_photo().convert(mode), tmp_path / f"img.{suffix}")
    assert Image.open(path).mode == mode
    assert sample_bytes(load_rgb(path), SPEC, "aipp") == modelzoo_aipp(path, SPEC.resize)


def test_hsv_which_no_format_stores_converts_like_the_modelzoo():
    image = _photo().convert("HSV")
    assert to_rgb(image).tobytes() == image.convert("RGB").tobytes()


@pytest.mark.parametrize("mode", ["I;16", "I;16B"])
def test_sixteen_bit_greyscale_is_scaled_not_clipped_to_white(tmp_path, mode):
    grey = np.asarray(_photo().convert("L"), dtype=np.uint16)
    wide = grey * 257  # the same picture at 16 bits: 0 -> 0, 255 -> 65535
    raw = wide.astype(">u2" if mode == "I;16B" else "<u2").tobytes()
    image = Image.frombytes(mode, (wide.shape[1], wide.shape[0]), raw)
    path = _save(image, tmp_path / ("img.png" if mode == "I;16" else "img.tiff"))
    assert Image.open(path).mode in ("I;16", "I;16B")
    eight_bit = _save(Image.fromarray(grey.astype(np.uint8), "L"), tmp_path / "grey.png")
    ours = sample_bytes(load_rgb(path), SPEC, "aipp")
    assert ours == sample_bytes(load_rgb(eight_bit), SPEC, "aipp")
    clipped = np.frombuffer(modelzoo_aipp(path, SPEC.resize), np.uint8)
    assert (clipped == 255).mean() > 0.9  # what convert('RGB') alone gives: the bug this guards against


def test_integer_pixels_within_eight_bits_match_and_wider_ones_are_refused(tmp_path):
    small = _save(Image.fromarray(np.asarray(_photo().convert("L"), dtype=np.int32), "I"), tmp_path / "small.tiff")
    assert Image.open(small).mode == "I"
    assert sample_bytes(load_rgb(small), SPEC, "aipp") == modelzoo_aipp(small, SPEC.resize)
    wide = _save(Image.fromarray(np.full((9, 9), 4095, np.int32), "I"), tmp_path / "wide.tiff")
    with pytest.raises(BadImage, match="32-bit integer pixels from 4095 to 4095: their bit depth is not known"):
        load_rgb(wide)


def test_float_pixels_are_refused(tmp_path):
    path = _save(Image.fromarray(np.full((9, 9), 0.5, np.float32), "F"), tmp_path / "f.tiff")
    with pytest.raises(BadImage, match="32-bit float pixels: their scale is not known"):
        load_rgb(path)


def test_a_sixteen_bit_png_through_the_cli_is_not_white(tmp_path, cli):
    src = tmp_path / "src"
    src.mkdir()
    grey = (np.asarray(_photo().convert("L"), dtype=np.uint16) * 257).astype("<u2")
    Image.frombytes("I;16", (grey.shape[1], grey.shape[0]), grey.tobytes()).save(src / "deep.png")
    result = cli("preprocess", "--preset", "resnet", src, tmp_path / "prep")
    assert result.exit_code == 0, result.stderr
    data = np.fromfile(tmp_path / "prep" / "deep.bin", np.uint8)
    assert (data == 255).mean() < 0.1 and data.std() > 20
