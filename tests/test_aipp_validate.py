"""Every ATC rejection of an AIPP config, with ATC's wording and the config line."""

from __future__ import annotations

import pytest
from test_aipp_parse import RESNET50_AIPPCONFIG, YOLO_CFG

from infer_kit.aipp.atc_checks import validate_config
from infer_kit.aipp.issues import E_AIPP_COMPILE, E_AIPP_INVALID, errors, raise_for_errors
from infer_kit.aipp.parse import AippConfigError, parse_config

RESNET_INPUT = [(3, 224, 224)]
BASE = "aipp_op {\n  aipp_mode: static\n  input_format: RGB888_U8\n"


def problems(text: str, inputs=RESNET_INPUT, soc=None) -> list:
    return errors(validate_config(parse_config(text, path="a.cfg"), inputs=inputs, soc=soc))


def only(text: str, inputs=RESNET_INPUT, soc=None):
    found = problems(text, inputs, soc)
    assert len(found) == 1, [f.text() for f in found]
    return found[0]


def test_published_configs_pass_against_their_models():
    assert problems(RESNET50_AIPPCONFIG) == []
    assert problems(YOLO_CFG, inputs=[(3, 416, 416)]) == []
    # the recipe config against a 300x300 model: the crop no longer gives the model's H and W
    issue = only(RESNET50_AIPPCONFIG, inputs=[(3, 300, 300)])
    assert issue.code == E_AIPP_COMPILE and issue.line == 11
    assert issue.text() == ("E81012 Compile op[aipp] failed, cause: when crop is enable, resize is disable and padding "
                            "is disable, crop_size_w[224] should be equal to output W[300] and crop_size_h[224] should "
                            "be equal to output H[300]")


def test_missing_mode_and_format():
    issue = only("aipp_op {\n  input_format: RGB888_U8\n}")
    assert "aipp_mode must be configured as static or dynamic" in issue.text() and issue.line == 1
    issue = only("aipp_op {\n  aipp_mode: static\n}")
    assert issue.text() == "Input format of AIPP conf is undefined"
    issue = only("aipp_op {\n  aipp_mode: dynamic\n}")
    assert "max_src_image_size must greater than 0" in issue.text()
    assert problems("aipp_op { aipp_mode: dynamic max_src_image_size: 26000 }") == []


def test_two_blocks_for_the_same_input():
    text = BASE + "}\naipp_op {\n  aipp_mode: static\n  input_format: RGB888_U8\n  related_input_rank: 0\n}\n"
    issue = only(text)
    assert issue.code == E_AIPP_INVALID and issue.line == 5
    assert issue.text().startswith("E10052 AIPP configuration is invalid. Reason: Cannot insert aipp to the same "
                                   "position!")
    mixed = BASE + '  related_input_name: "x"\n}\n' + BASE + "  related_input_rank: 1\n}\n"
    assert any("Can not both set related_input_name" in p.text() for p in problems(mixed, inputs=[(3, 224, 224)] * 2))


def test_block_for_an_input_the_model_lacks():
    issue = only(BASE.replace("static\n", "static\n  related_input_rank: 1\n") + "}")
    assert "Can not find the data node by index 1" in issue.text() and issue.line == 3


@pytest.mark.parametrize("name", ["src_image_size_w", "load_start_pos_h", "crop_size_w", "left_padding_size",
                                  "bottom_padding_size"])
def test_negative_sizes(name):
    issue = only(BASE + f"  crop: true\n  padding: true\n  {name}: -2\n}}")
    assert issue.text() == f"{name} must not be configed smaller than 0" and issue.line == 6


def test_crop_and_padding_must_produce_the_model_input():
    crop = (BASE + "  src_image_size_w: 256\n  src_image_size_h: 256\n  crop: true\n  crop_size_w: 224\n"
            "  crop_size_h: 224\n")
    assert problems(crop + "}") == []
    padded = crop + "  padding: true\n  left_padding_size: 4\n  right_padding_size: 4\n  top_padding_size: 8\n}"
    issue = only(padded, inputs=[(3, 240, 232)])
    assert "crop_size_w[224] + left_padding_size[4] + right_padding_size[4] should be equal to output W[232] and " \
           "crop_size_h[224] + top_padding_size[8] + bottom_padding_size[0] should be equal to output H[240]" \
           in issue.text()
    assert problems(padded.replace("top_padding_size: 8", "top_padding_size: 16"), inputs=[(3, 240, 232)]) == []
    no_crop = BASE + "  src_image_size_w: 200\n  src_image_size_h: 224\n}"
    assert "input W[224] of network should be equal to src_image_size_w[200]" in only(no_crop).text()
    outside = crop.replace("crop_size_w: 224", "crop_size_w: 224\n  load_start_pos_w: 40") + "}"
    assert "load_start_pos_w[40] + crop_size_w[224] should be less than or equal to src_image_size_w[256]" in \
        only(outside).text()
    unsized = BASE + "  crop: true\n  crop_size_w: 224\n  crop_size_h: 224\n}"
    assert "src_image_size_w[0] and src_image_size_h[0] should be greater than 0" in only(unsized).text()


def test_yuv420sp_needs_even_geometry():
    yuv = ("aipp_op {\n  aipp_mode: static\n  input_format: YUV420SP_U8\n  src_image_size_w: 256\n"
           "  src_image_size_h: 256\n  crop: true\n  load_start_pos_w: 16\n  load_start_pos_h: 16\n"
           "  crop_size_w: 224\n  crop_size_h: 224\n}")
    assert problems(yuv) == []
    issue = only(yuv.replace("load_start_pos_w: 16", "load_start_pos_w: 15").replace("crop_size_w: 224",
                                                                                       "crop_size_w: 225"),
                 inputs=[(3, 224, 225)])
    assert "when input_format is YUV420SP_U8, load_start_pos_h[16], load_start_pos_w[15], crop_size_h[224] and " \
           "crop_size_w[225] must be even" in issue.text()
    issue = only(yuv.replace("src_image_size_h: 256", "src_image_size_h: 255"))
    assert "src_image_size_w[256] and src_image_size_h[255] should be even for YUV420SP_U8" in issue.text()
    whole = "aipp_op {\n aipp_mode: static\n input_format: YUV420SP_U8\n}"
    assert "should be even for YUV420SP_U8" in only(whole, inputs=[(3, 223, 224)]).text()


def test_padding_over_32():
    text = (BASE + "  src_image_size_w: 150\n  src_image_size_h: 224\n  padding: true\n  left_padding_size: 40\n"
            "  right_padding_size: 34\n}")
    issue = only(text)
    assert "The max padding size is 32, and left_padding_size is 40, right_padding_size is 34" in issue.text()
    assert issue.line == 7  # the largest padding


def test_padding_width_limit_depends_on_the_chip():
    text = BASE + "  src_image_size_w: 1090\n  src_image_size_h: 64\n  padding: true\n  left_padding_size: 2\n}"
    assert problems(text, inputs=[(3, 64, 1092)], soc="Ascend910B3") == []
    assert "aipp output W[1092] should be less than or eaqual to 1080" in \
        only(text, inputs=[(3, 64, 1092)], soc="Ascend310P3").text()


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("mean_chn_0", "256", "mean_chn_0[256] should be within[0, 255]"),
    ("min_chn_1", "300.5", "min_chn_1[300.5] should be within[0, 255]"),
    ("var_reci_chn_2", "70000", "var_reci_chn_2[70000] should be within[-65504, 65504]"),
    ("src_image_size_w", "1", "src_image_size_w[1] should be within[2, 4096] or 0"),
])
def test_value_ranges(field, value, fragment):
    issue = only(BASE + f"  {field}: {value}\n}}", inputs=None)
    assert fragment in issue.text() and issue.line == 4


def test_csc_ranges_only_with_csc_on():
    text = BASE + "  matrix_r0c0: 40000\n  input_bias_0: 300\n}"
    assert problems(text) == []
    found = problems(text.replace("input_format: RGB888_U8", "input_format: RGB888_U8\n  csc_switch: true"))
    assert {p.field for p in found} == {"matrix_r0c0", "input_bias_0"}


def test_format_and_feature_support():
    assert "only support" in only(BASE.replace("RGB888_U8", "YUYV_U8") + "}", soc="Ascend310").text()
    assert "Ascend310 only support" in only(BASE.replace("RGB888_U8", "RAW10") + "}", soc="Ascend310").text()
    yuv400 = "aipp_op {\n aipp_mode: static\n input_format: YUV400_U8\n csc_switch: true\n}"
    assert "doesn't make sense to convert to RGB" in only(yuv400, inputs=[(1, 224, 224)]).text()
    assert any("resize only support Hi3796CV300ES" in p.text() for p in problems(BASE + " resize: true\n}"))
    assert "gives 3 channel(s) but the model input has C=1" in only(BASE + "}", inputs=[(1, 224, 224)]).text()


def test_raise_for_errors_names_file_line_and_count():
    config = parse_config(BASE + "  mean_chn_0: 256\n  mean_chn_1: -1\n}", path="dir/x.cfg")
    with pytest.raises(AippConfigError) as info:
        raise_for_errors(validate_config(config, inputs=RESNET_INPUT), config.where)
    text = info.value.one_line()
    assert text.startswith("dir/x.cfg:4: E81012 Compile op[aipp] failed, cause: mean_chn_0[256]")
    assert "and 1 more problem(s)" in text
    raise_for_errors(validate_config(parse_config(RESNET50_AIPPCONFIG), inputs=RESNET_INPUT), "ok.cfg")
