"""The aipp layout plus its generated AIPP config selects exactly the float layout's pixels, for every image size.

The float layout takes one centre crop of the resized image. The aipp layout writes either the
``resize x resize`` centre square (AIPP then crops ``crop`` at ``int(round((resize - crop) / 2))``)
or, where those two crops do not compose for every image size, the crop itself. The sweep covers
odd and even differences, portrait and landscape, sizes whose offsets round at .5, and images that
are resized first (china.jpg's 640x427 and coffee.png's 600x400 among them).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from infer_kit.aipp import emulate_aipp, generate_op, resolve_geometry
from infer_kit.imageops import center_crop, resize_short_side
from infer_kit.preprocess.transforms import aipp_bytes
from infer_kit.presets import PRESETS
from infer_kit.spec import PreprocessSpec

# Every preset, and overrides with each residue of (resize - crop) mod 4.
SPECS = {**PRESETS,
         "r101_c100": PreprocessSpec(resize=101, crop=100), "r102_c99": PreprocessSpec(resize=102, crop=99),
         "r103_c100": PreprocessSpec(resize=103, crop=100), "r104_c100": PreprocessSpec(resize=104, crop=100),
         "square_only": PreprocessSpec(resize=64, crop=64)}


def _offset(size: int, crop: int) -> int:
    return int(round((size - crop) / 2))


def _long_sides(resize: int) -> list[int]:
    """Long sides after resizing: every difference 0..24 (all residues, .5 roundings), and a few far ones."""
    return sorted({*range(resize, resize + 25), 3 * resize - 1, 3 * resize, int(resize * 640 / 427),
                   int(resize * 600 / 400)})


def _aipp_pixels(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """The pixels AIPP feeds the model: the aipp-layout file, cropped as the generated config says."""
    side = spec.aipp_side
    source = np.frombuffer(aipp_bytes(image, spec), np.uint8).reshape(side, side, 3)
    box = resolve_geometry(generate_op(spec), (spec.crop, spec.crop))
    assert (box.src_h, box.src_w) == (side, side)
    return source[box.top:box.top + box.crop_h, box.left:box.left + box.crop_w]


def _float_pixels(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """The pixels the float layout normalises: one centre crop of the resized image."""
    return np.asarray(center_crop(resize_short_side(image, spec), spec.crop))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_aipp_layout_and_config_select_the_float_layouts_pixels(name):
    spec = SPECS[name]
    rng = np.random.default_rng(spec.resize * 1000 + spec.crop)
    checked = 0
    for long in _long_sides(spec.resize):
        pixels = rng.integers(0, 256, (spec.resize, long, 3), dtype=np.uint8)
        for image in (Image.fromarray(pixels), Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 0, 2)))):
            assert np.array_equal(_aipp_pixels(image, spec), _float_pixels(image, spec)), (name, image.size)
            checked += 1
    assert checked == 2 * len(_long_sides(spec.resize))


@pytest.mark.parametrize("name", ["inceptionv3", "efficientnetB3", "efficientnetB5", "resnet", "r102_c99"])
@pytest.mark.parametrize("size", [(640, 427), (600, 400), (427, 640), (1001, 999), (333, 500)])
def test_resized_photos_too(name, size):
    spec = SPECS[name]
    pixels = np.random.default_rng(sum(size)).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    assert np.array_equal(_aipp_pixels(image, spec), _float_pixels(image, spec))


def test_the_geometry_rule_is_needed_where_it_writes_the_crop():
    """Where the rule writes the crop itself, the square + AIPP crop would shift some image sizes by a pixel."""
    for name, spec in SPECS.items():
        square = spec.with_overrides(aipp_geometry="square")
        a = square.crop_offset
        shifted = [long for long in _long_sides(spec.resize)
                   if _offset(long, spec.resize) + a != _offset(long, spec.crop)]
        assert (spec.geometry == "crop") == bool(shifted), name
        assert (spec.geometry == "square") == ((spec.resize - spec.crop) % 4 == 0), name


def test_the_inception_presets_write_the_299_crop_and_an_aipp_config_without_crop():
    for name in ("inceptionv3", "inceptionv4"):
        spec = PRESETS[name]
        op = generate_op(spec)
        assert spec.sample_shape("aipp") == (299, 299, 3) and spec.sample_nbytes("aipp") == 268_203
        assert (op.get("src_image_size_w"), op.get("src_image_size_h"), op.is_set("crop")) == (299, 299, False)
        assert spec.geometry_dict() == {"kind": "crop", "side": 299, "aipp_crop": None}
    assert PRESETS["resnet"].geometry_dict() == {"kind": "square", "side": 256,
                                                 "aipp_crop": {"offset": 16, "size": 224}}


@pytest.mark.parametrize("name", ["inceptionv3", "efficientnetB3", "resnet"])
def test_the_emulated_aipp_output_equals_aipp_on_the_float_crop(name):
    """Through the AIPP emulation: the normalised tensor is AIPP's normalisation of the float crop's pixels."""
    spec = SPECS[name]
    image = Image.fromarray(np.random.default_rng(5).integers(0, 256, (spec.resize, spec.resize + 3, 3), np.uint8))
    op = generate_op(spec)
    side = spec.aipp_side
    source = np.frombuffer(aipp_bytes(image, spec), np.uint8).reshape(1, side, side, 3)
    crop_only = generate_op(spec.with_overrides(resize=spec.crop))  # same normalisation, no crop
    reference = _float_pixels(image, spec)[None]
    got = emulate_aipp(op, source, model_hw=(spec.crop, spec.crop))
    want = emulate_aipp(crop_only, reference, model_hw=(spec.crop, spec.crop))
    assert got.shape == (1, 3, spec.crop, spec.crop) and np.array_equal(got, want)
