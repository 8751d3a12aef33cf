"""Configs generated from a spec reproduce the published ones; the lints catch the silent mistakes."""

from __future__ import annotations

import pytest
from test_aipp_parse import RESNET50_AIPPCONFIG

from infer_kit.aipp.accuracy_lint import SPEC_TOLERANCE, lint_config, lint_op, spec_deviation
from infer_kit.aipp.config import AippConfig, AippOp
from infer_kit.aipp.csc import rgb_to_yuv, yuv_to_rgb
from infer_kit.aipp.generate import generate_op
from infer_kit.aipp.parse import parse_config
from infer_kit.aipp.write import render_config
from infer_kit.errors import InferKitError
from infer_kit.presets import get_preset
from infer_kit.registry import get_model
from infer_kit.spec import PreprocessSpec

RESNET = get_model("resnet50").spec
EFFNET = get_model("efficientnet_b3").spec  # BGR planes (pycls)


def test_resnet50_spec_reproduces_the_modelzoo_config():
    published = parse_config(RESNET50_AIPPCONFIG).ops[0]
    generated = generate_op(RESNET)
    assert generated == published  # same fields set, same values
    text = render_config(generated)
    for line in ("min_chn_0 : 123.675", "min_chn_1 : 116.28", "min_chn_2 : 103.53",
                 "var_reci_chn_0 : 0.0171247538316637", "var_reci_chn_1 : 0.0175070028011204",
                 "var_reci_chn_2 : 0.0174291938997821", "load_start_pos_h : 16", "crop_size_w : 224"):
        assert line in text


def test_constants_are_255_mean_and_reciprocal_255_std():
    spec = PreprocessSpec(resize=300, crop=256, mean=(0.5, 0.25, 0.125), std=(0.2, 0.4, 0.8))
    op = generate_op(spec)
    assert op.min_chn()[:3] == pytest.approx((127.5, 63.75, 31.875), rel=1e-14)
    assert op.var_reci()[:3] == pytest.approx((1 / 51, 1 / 102, 1 / 204), rel=1e-14)
    assert (op.get("load_start_pos_w"), op.get("crop_size_h"), op.get("src_image_size_w")) == (22, 256, 300)
    whole = generate_op(PreprocessSpec(resize=224, crop=224))
    assert not whole.is_set("crop") and whole.get("src_image_size_h") == 224


def test_bgr_model_swaps_and_reverses_constants_like_the_effnet_config():
    op = generate_op(EFFNET)
    assert op.get("rbuv_swap_switch") is True
    # the ModelZoo EfficientNet config lists its constants reversed: they follow the post-swap order (B, G, R)
    assert op.min_chn()[:3] == (103.53, 116.28, 123.675)
    assert op.var_reci()[:3] == (0.0174291938997821, 0.0175070028011204, 0.0171247538316637)
    # 342 -> 300 does not compose as square + crop (offset 21 and (342 - 300) % 4 != 0): the source is the crop itself
    assert (op.get("src_image_size_w"), op.is_set("crop")) == (300, False)
    assert lint_op(op, spec=EFFNET) == []
    assert spec_deviation(op, EFFNET) < SPEC_TOLERANCE


def test_yuv420sp_generation_uses_the_csc_presets():
    op = generate_op(RESNET, input_format="YUV420SP_U8", csc="bt601-narrow")
    assert op.get("csc_switch") is True and op.get("rbuv_swap_switch") is False
    assert op.csc_matrix() == ((298, 0, 409), (298, -100, -208), (298, 516, 0))
    assert op.input_bias() == (16, 128, 128)
    bgr = generate_op(RESNET.with_overrides(channel_order="BGR"), input_format="YUV420SP_U8", csc="jpeg", nv21=True)
    assert bgr.csc_matrix() == ((256, 454, 0), (256, -88, -183), (256, 0, 359))  # rows 0 and 2 exchanged
    assert bgr.get("rbuv_swap_switch") is True  # NV21: U/V order, not the colour order
    assert lint_op(op, spec=RESNET) == [] and lint_op(bgr, spec=RESNET.with_overrides(channel_order="BGR")) == []
    with pytest.raises(InferKitError, match="YUV420SP_U8 needs even sizes and offsets"):
        generate_op(PreprocessSpec(resize=342, crop=299), input_format="YUV420SP_U8")  # the 299 crop itself
    with pytest.raises(InferKitError, match="cannot generate"):
        generate_op(RESNET, input_format="XRGB8888_U8")


def test_csc_presets_follow_the_docs():
    assert yuv_to_rgb("jpeg").matrix == ((256, 0, 359), (256, -88, -183), (256, 454, 0))
    assert yuv_to_rgb("BT709_WIDE", "BGR").matrix[0] == (256, 475, 0)
    assert rgb_to_yuv("bt709-narrow").output_bias == (16, 128, 128)
    assert rgb_to_yuv("jpeg", "YVU").matrix == ((77, 150, 29), (128, -107, -21), (-43, -85, 128))
    with pytest.raises(InferKitError, match="unknown colour standard"):
        yuv_to_rgb("bt2020")


def messages(op: AippOp, spec=None) -> str:
    return "\n".join(issue.text() for issue in lint_op(op, spec=spec))


def test_lint_var_reci_that_is_std_or_reciprocal_std():
    good = generate_op(RESNET)
    as_std = good.replace(var_reci_chn_0=0.229, var_reci_chn_1=0.224, var_reci_chn_2=0.225)
    assert "looks like a std" in messages(as_std)
    assert "is the std itself" in messages(as_std, RESNET)
    as_inverse = good.replace(var_reci_chn_0=1 / 0.229, var_reci_chn_1=1 / 0.224, var_reci_chn_2=1 / 0.225)
    assert "looks like 1 / std" in messages(as_inverse)
    assert "is 1 / std" in messages(as_inverse, RESNET)
    assert messages(good) == "" and messages(good, RESNET) == ""


def test_lint_means_on_the_unit_scale_and_double_subtraction():
    unit = generate_op(RESNET).replace(min_chn_0=0.485, min_chn_1=0.456, min_chn_2=0.406)
    assert "look like means on the 0..1 scale" in messages(unit)
    both = generate_op(RESNET).replace(mean_chn_0=124)
    assert "subtracts both mean_chn_0 = 124 and min_chn_0 = 123.675" in messages(both)
    rounded = generate_op(RESNET).replace(min_chn_0=None, min_chn_1=None, min_chn_2=None, mean_chn_0=124,
                                          mean_chn_1=116, mean_chn_2=104)
    assert messages(rounded, RESNET) == ""  # integer means within half a level are fine


def test_lint_channel_order_against_the_spec():
    rgb_config = generate_op(RESNET)
    found = messages(rgb_config, EFFNET.with_overrides(resize=256, crop=224))
    assert "rbuv_swap_switch is false but the model wants BGR planes" in found
    assert "reversed channel order" in found
    assert "belongs to the other end of the channel order" in found
    yuv_bgr = generate_op(RESNET.with_overrides(channel_order="BGR"), input_format="YUV420SP_U8")
    assert "the CSC matrix is jpeg YUV->BGR but the model wants RGB planes" in messages(yuv_bgr, RESNET)


def test_lint_csc_switch_without_matrix_and_crop_geometry():
    yuv = AippOp.make(aipp_mode="static", input_format="YUV420SP_U8", csc_switch=True)
    assert "ATC fills BT.601-narrow YUV->BGR (298,516,0 / 298,-100,-208 / 298,0,409" in messages(yuv)
    rgb = AippOp.make(aipp_mode="static", input_format="RGB888_U8", csc_switch=True)
    assert "RGB->YUV" in messages(rgb)
    off_centre = generate_op(RESNET).replace(load_start_pos_w=0)
    assert "crop geometry differs from the spec's centre crop: source 256x256, crop 224x224 at (0,16)" in \
        messages(off_centre, RESNET)


def test_spec_deviation_measures_what_the_lints_explain():
    good = generate_op(RESNET)
    assert spec_deviation(good, RESNET) < SPEC_TOLERANCE
    assert spec_deviation(good.replace(rbuv_swap_switch=True), RESNET) > 0.5
    assert spec_deviation(good.replace(var_reci_chn_1=0.0175070028011204 * 1.2), RESNET) > 0.1
    config = AippConfig((good.replace(load_start_pos_h=18),))
    found = [issue.text() for issue in lint_config(config, spec=RESNET)]
    assert any("differs from the spec's float preprocessing" in text for text in found), found
    assert spec_deviation(generate_op(RESNET, input_format="YUV420SP_U8"), RESNET) is None  # not comparable


def test_presets_all_generate_valid_clean_configs():
    from infer_kit.aipp.atc_checks import validate_config
    from infer_kit.aipp.issues import errors

    for name in ("resnet", "inceptionv3", "inceptionv4", "efficientnetB3", "efficientnetB5", "dpn131"):
        spec = get_preset(name)
        config = AippConfig((generate_op(spec),))
        assert errors(validate_config(config, inputs=[(3, spec.crop, spec.crop)], soc="Ascend310P3")) == [], name
        assert lint_config(config, spec=spec) == [], name
