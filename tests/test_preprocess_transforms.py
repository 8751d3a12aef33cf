"""Byte identity with the ModelZoo steps, the float layout against torchvision, image modes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from infer_kit.preprocess.transforms import BadImage, float_tensor, load_rgb, sample_bytes
from infer_kit.presets import get_preset
from infer_kit.spec import PreprocessSpec


# ---- an independent, minimal re-implementation of imagenet_torch_preprocess.py -----------
def modelzoo_image(path: Path, resize: int, crop: int) -> Image.Image:
    image = Image.open(path).convert("RGB")
    w, h = image.size
    if not ((w <= h and w == resize) or (h <= w and h == resize)):
        if w < h:
            image = image.resize((resize, int(resize * h / w)), Image.BILINEAR)
        else:
            image = image.resize((int(resize * w / h), resize), Image.BILINEAR)
    w, h = image.size
    top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
    return image.crop((left, top, left + crop, top + crop))


def modelzoo_uint8(path: Path, resize: int, crop: int) -> bytes:
    """The Resnet50 recipe's gen_input_bin: the crop cast to int8 (the uint8 bytes) and written raw."""
    return np.array(modelzoo_image(path, resize, crop), dtype=np.int8).tobytes()


def modelzoo_aipp(path: Path, resize: int) -> bytes:
    """The resize x resize square (the resnet preset's uint8 layout)."""
    return modelzoo_uint8(path, resize, resize)


# (resize, crop) of each preset in the Resnet50 recipe's imagenet_torch_preprocess.py, which writes uint8 HWC
R50_UINT8 = {"resnet": (256, 256), "inceptionv3": (342, 299), "inceptionv4": (342, 299)}


def modelzoo_float(path: Path, spec: PreprocessSpec) -> bytes:
    img = np.array(modelzoo_image(path, spec.resize, spec.crop), dtype=np.float32)
    img = img.transpose(2, 0, 1)
    img = img / 255.0
    img -= np.array(spec.mean, dtype=np.float32)[:, None, None]
    img /= np.array(spec.std, dtype=np.float32)[:, None, None]
    if spec.channel_order == "BGR":
        img = img[::-1, :, :]
    return img.tobytes()


@pytest.fixture(scope="module")
def varied_images(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The real photos plus sizes that hit every branch: .5 crop offsets, short side == resize,
    square, portrait, upscaling, and the grayscale/CMYK/palette/RGBA modes."""
    folder = tmp_path_factory.mktemp("varied")
    paths = sorted(photo_dir.glob("*.jpg"))
    base = Image.open(paths[0]).convert("RGB")
    sizes = {"odd_offset": (500, 375), "short_is_resize": (256, 300), "square": (300, 300),
             "portrait": (333, 500), "tiny": (40, 31), "exact": (256, 256), "wide": (700, 257)}
    for name, size in sizes.items():
        base.resize(size).save(folder / f"{name}.jpg", quality=90)
    photo = Image.open(paths[1])
    photo.convert("L").save(folder / "gray.jpg")
    photo.convert("CMYK").save(folder / "cmyk.jpg")
    photo.convert("P").save(folder / "palette.png")
    rgba = photo.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "rgba.png")
    return paths + sorted(folder.iterdir())


@pytest.mark.parametrize("preset", sorted(R50_UINT8))
def test_aipp_layout_is_byte_identical_to_modelzoo(varied_images, preset):
    resize, crop = R50_UINT8[preset]
    spec = get_preset(preset)
    for path in varied_images:
        ours = sample_bytes(load_rgb(path), spec, "aipp")
        assert len(ours) == crop * crop * 3  # 196,608 bytes for resnet, 268,203 for the inception presets
        assert ours == modelzoo_uint8(path, resize, crop), path.name


def test_aipp_layout_of_a_crop_that_does_not_compose_is_the_float_layouts_crop(varied_images):
    spec = get_preset("efficientnetB3")  # 342 -> 300: square + AIPP crop would shift some images by a pixel
    for path in varied_images:
        assert sample_bytes(load_rgb(path), spec, "aipp") == modelzoo_uint8(path, 342, 300), path.name


@pytest.mark.parametrize("preset", ["resnet", "efficientnetB3", "inceptionv4", "dpn131"])
def test_float_layout_is_byte_identical_to_modelzoo_float_recipe(varied_images, preset):
    spec = get_preset(preset)
    for path in varied_images:
        ours = sample_bytes(load_rgb(path), spec, "float")
        assert len(ours) == spec.sample_nbytes("float")
        assert ours == modelzoo_float(path, spec), path.name


def test_bgr_planes_are_the_rgb_planes_reversed(photos):
    rgb, bgr = get_preset("resnet").with_overrides(resize=342, crop=300), get_preset("efficientnetB3")
    image = photos["chelsea"]
    a, b = float_tensor(image, rgb), float_tensor(image, bgr)
    np.testing.assert_array_equal(a[::-1], b)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("preset", ["resnet", "efficientnetB3"])
def test_float_layout_matches_torchvision(photos, preset):
    import torch
    from torchvision import transforms

    spec = get_preset(preset)
    pipeline = transforms.Compose([
        transforms.Resize(spec.resize), transforms.CenterCrop(spec.crop), transforms.ToTensor(),
        transforms.Normalize(spec.mean, spec.std),
    ])
    for name, image in photos.items():
        expected = pipeline(image)
        if spec.channel_order == "BGR":
            expected = torch.flip(expected, dims=[0])
        ours = float_tensor(image, spec)
        assert ours.shape == tuple(expected.shape)
        assert np.abs(ours - expected.numpy()).max() < 1e-5, name


def test_modes_are_converted_to_rgb_like_pil(varied_images):
    for path in varied_images:
        image = load_rgb(path)
        assert image.mode == "RGB"
        assert image.tobytes() == Image.open(path).convert("RGB").tobytes()


def test_other_interpolation_changes_the_bytes(photos):
    image = photos["coffee"]
    bilinear = sample_bytes(image, get_preset("resnet"), "aipp")
    bicubic = sample_bytes(image, get_preset("resnet").with_overrides(interpolation="bicubic"), "aipp")
    assert len(bilinear) == len(bicubic) and bilinear != bicubic


def test_bad_files_raise_bad_image_with_a_reason(tmp_path, photo_dir):
    data = (photo_dir / "chelsea.jpg").read_bytes()
    cases = {"empty.jpg": b"", "text.jpg": b"not an image at all\n", "truncated.jpg": data[: len(data) // 3]}
    reasons = {}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(BadImage) as info:
            load_rgb(tmp_path / name)
        reasons[name] = info.value.reason
    assert "empty" in reasons["empty.jpg"]
    assert "not an image" in reasons["text.jpg"]
    assert "truncated" in reasons["truncated.jpg"]


def test_png_and_jpeg_of_the_same_pixels_give_the_same_tensor(tmp_path, photos):
    image = photos["astronaut"]
    image.save(tmp_path / "a.png")
    buffer = io.BytesIO()
    image.save(buffer, "BMP")
    (tmp_path / "b.bmp").write_bytes(buffer.getvalue())
    spec = get_preset("resnet")
    assert sample_bytes(load_rgb(tmp_path / "a.png"), spec, "aipp") == sample_bytes(
        load_rgb(tmp_path / "b.bmp"), spec, "aipp"
    )
