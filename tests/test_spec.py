import pytest

from infer_kit.errors import InferKitError
from infer_kit.presets import PRESETS, get_preset
from infer_kit.spec import PreprocessSpec


def test_resnet_preset_geometry_and_layouts():
    spec = get_preset("resnet")
    assert (spec.resize, spec.crop, spec.crop_offset) == (256, 224, 16)
    assert spec.sample_shape("aipp") == (256, 256, 3) and spec.sample_nbytes("aipp") == 196_608
    assert spec.sample_shape("float") == (3, 224, 224) and spec.sample_nbytes("float") == 602_112


def test_efficientnet_preset_is_bgr_and_constants_follow_planes():
    spec = get_preset("efficientnetB3")
    assert spec.crop_offset == 21
    assert spec.planes(spec.mean) == (0.406, 0.456, 0.485)


@pytest.mark.parametrize("spec", list(PRESETS.values()))
def test_json_round_trip(spec):
    assert PreprocessSpec.from_json(spec.to_json()) == spec


def test_resized_size_truncates_long_side_like_modelzoo():
    spec = PreprocessSpec(resize=256, crop=224)
    assert spec.resized_size(500, 375) == (341, 256)  # 256 * 500 / 375 = 341.33
    assert spec.resized_size(375, 500) == (256, 341)
    assert spec.resized_size(256, 999) == (256, 999)  # short side already right: untouched


def test_crop_offset_rounds_half_to_even():
    assert PreprocessSpec(resize=261, crop=256).crop_offset == 2  # round(2.5) == 2
    assert PreprocessSpec(resize=263, crop=256).crop_offset == 4  # round(3.5) == 4


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"resize": 200, "crop": 224}, "larger than resize"),
        ({"resize": 256, "crop": 224, "interpolation": "cubic"}, "unknown interpolation"),
        ({"resize": 256, "crop": 224, "channel_order": "RBG"}, "unknown channel order"),
        ({"resize": 256, "crop": 224, "std": (0.2, 0, 0.2)}, "must be positive"),
        ({"resize": 256, "crop": 224, "mean": (0.1, 0.2)}, "three finite numbers"),
        ({"resize": 0, "crop": 224}, "positive integer"),
    ],
)
def test_invalid_specs_are_user_errors(kwargs, fragment):
    with pytest.raises(InferKitError, match=fragment):
        PreprocessSpec(**kwargs)


def test_from_dict_rejects_unknown_fields_with_location():
    with pytest.raises(InferKitError, match="model.onnx: unknown field"):
        PreprocessSpec.from_dict({"resize": 256, "crop": 224, "scale": 2}, where="model.onnx")


def test_differences_names_fields_and_respects_aipp_layout():
    a = get_preset("resnet")
    b = a.with_overrides(mean=(0.5, 0.5, 0.5), crop=200)
    diffs = a.differences(b)
    assert any(d.startswith("crop 224 vs 200") for d in diffs)
    assert any(d.startswith("mean") for d in diffs)
    assert a.differences(b, layout="aipp") == []  # crop and mean are applied on the device
    assert a.differences(a.with_overrides(resize=300), layout="aipp") == ["resize 256 vs 300"]
