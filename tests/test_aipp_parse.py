"""The AIPP config parser reads what ATC reads and rejects what ATC rejects, naming the file and line."""

from __future__ import annotations

import pytest

from infer_kit.aipp.config import AippOp
from infer_kit.aipp.parse import AippConfigError, parse_config, read_config
from infer_kit.aipp.write import render_config
from infer_kit.errors import InferKitError

# Reference 1.7 (a): the ModelZoo ResNet-50 recipe config, verbatim.
RESNET50_AIPPCONFIG = """aipp_op{
    aipp_mode:static
    input_format : RGB888_U8

    src_image_size_w : 256
    src_image_size_h : 256

    crop: true
    load_start_pos_h : 16
    load_start_pos_w : 16
    crop_size_w : 224
    crop_size_h: 224

    min_chn_0 : 123.675
    min_chn_1 : 116.28
    min_chn_2 : 103.53
    var_reci_chn_0: 0.0171247538316637
    var_reci_chn_1: 0.0175070028011204
    var_reci_chn_2: 0.0174291938997821
}
"""

# Reference 1.7 (e): Ascend/samples YOLOv4 insert_op.cfg (BT.601 narrow, /255 scaling), verbatim.
YOLO_CFG = """aipp_op {
related_input_rank : 0
src_image_size_w : 416
src_image_size_h : 416
crop : false
input_format : YUV420SP_U8
aipp_mode: static
csc_switch : true
rbuv_swap_switch : false
matrix_r0c0 : 298
matrix_r0c1 : 0
matrix_r0c2 : 409
matrix_r1c0 : 298
matrix_r1c1 : -100
matrix_r1c2 : -208
matrix_r2c0 : 298
matrix_r2c1 : 516
matrix_r2c2 : 0
input_bias_0 : 16
input_bias_1 : 128
input_bias_2 : 128
mean_chn_0 : 0
mean_chn_1 : 0
mean_chn_2 : 0
min_chn_0 : 0.0
min_chn_1 : 0.0
min_chn_2 : 0.0
var_reci_chn_0 : 0.003922
var_reci_chn_1 : 0.003922
var_reci_chn_2 : 0.003922
}
"""


def parse_one(text: str) -> AippOp:
    config = parse_config(text, path="test.cfg")
    assert len(config.ops) == 1
    return config.ops[0]


def test_reads_the_modelzoo_resnet50_config():
    op = parse_one(RESNET50_AIPPCONFIG)
    assert op.mode == "static" and op.input_format == "RGB888_U8"
    assert (op.get("src_image_size_w"), op.get("src_image_size_h")) == (256, 256)
    assert op.get("crop") is True
    assert (op.get("load_start_pos_h"), op.get("load_start_pos_w"), op.get("crop_size_w")) == (16, 16, 224)
    assert op.min_chn()[:3] == (123.675, 116.28, 103.53)
    assert op.var_reci()[:3] == (0.0171247538316637, 0.0175070028011204, 0.0174291938997821)
    assert op.line == 1 and op.line_of("crop_size_h") == 12 and op.line_of("min_chn_2") == 16
    # not given: ATC's defaults
    assert op.get("rbuv_swap_switch") is False and op.mean_chn() == (0, 0, 0, 0) and op.var_reci()[3] == 1.0


def test_reads_a_yuv_config_with_fields_in_any_order():
    op = parse_one(YOLO_CFG)
    assert op.input_format == "YUV420SP_U8" and op.get("csc_switch") is True
    assert op.csc_matrix() == ((298, 0, 409), (298, -100, -208), (298, 516, 0))
    assert op.input_bias() == (16, 128, 128)
    # crop is off, so GE zeroes the crop fields whatever the file says
    assert op.get("crop_size_w") == 0


@pytest.mark.parametrize("text", [
    "aipp_op { aipp_mode: static input_format: RGB888_U8 crop: true }",
    "aipp_op {\n aipp_mode : static\n input_format : RGB888_U8\n crop : true\n}",
    "aipp_op: { aipp_mode: static, input_format: RGB888_U8; crop: t }",
    "aipp_op < aipp_mode: 1 input_format: 3 crop: 1 >",
    "# a comment\naipp_op { # trailing comment\n  crop: True  # more\n  input_format: RGB888_U8 aipp_mode: static }",
])
def test_text_format_variants_mean_the_same(text):
    op = parse_one(text)
    assert (op.mode, op.input_format, op.get("crop")) == ("static", "RGB888_U8", True)


def test_numbers_follow_protobuf_rules():
    op = parse_one("aipp_op { mean_chn_0: 0x10 mean_chn_1: 010 min_chn_0: 5 min_chn_1: 1.5f var_reci_chn_0: -inf "
                   "matrix_r0c0: [ -256 ] related_input_name: \"data\" }")
    assert op.get("mean_chn_0") == 16 and op.get("mean_chn_1") == 8  # hex and (protobuf) octal
    assert op.get("min_chn_0") == 5.0 and isinstance(op.get("min_chn_0"), float)
    assert op.get("min_chn_1") == 1.5 and op.get("var_reci_chn_0") == float("-inf")
    assert op.get("matrix_r0c0") == -256 and op.get("related_input_name") == "data"


def test_several_blocks_are_selected_by_rank_or_name():
    config = parse_config("aipp_op { related_input_rank: 1 aipp_mode: static input_format: YUV400_U8 }\n"
                          "aipp_op { aipp_mode: static input_format: RGB888_U8 }\n")
    assert config.op_for_input(0).input_format == "RGB888_U8"
    assert config.op_for_input(1).input_format == "YUV400_U8"
    assert config.op_for_input(2) is None
    named = parse_config('aipp_op { related_input_name: "img" input_format: RGB888_U8 aipp_mode: static }')
    assert named.op_for_input(0, "img").input_format == "RGB888_U8"
    assert named.op_for_input(0, "other") is None


def assert_rejected(text: str, line: int, *fragments: str) -> AippConfigError:
    with pytest.raises(AippConfigError) as info:
        parse_config(text, path="conf/aipp.cfg")
    message = info.value.one_line()
    assert message.startswith(f"conf/aipp.cfg:{line}:"), message
    for fragment in fragments:
        assert fragment in message, message
    assert info.value.line == line
    return info.value


def test_decimal_in_an_integer_field_is_rejected_with_the_fix():
    assert_rejected("aipp_op {\n  aipp_mode: static\n  mean_chn_0: 123.675\n}", 3,
                    "Expected integer, got: 123.675", "min_chn_0")
    assert_rejected("aipp_op {\n  src_image_size_w : 2.5e2\n}", 2, "Expected integer")


def test_a_repeated_field_is_rejected_at_its_second_line():
    assert_rejected("aipp_op {\n var_reci_chn_0: 0.5\n\n var_reci_chn_0: 0.5\n}", 4,
                    "The parameter var_reci_chn_0 can not be configed repeatedly", "first given at line 2")
    assert_rejected("aipp_op {\n matrix_r0c0: [1, 2]\n}", 2, "matrix_r0c0 can not be configed repeatedly")
    assert_rejected("aipp_op {\n crop: true\n crop: false\n}", 3, 'Non-repeated field "crop" is specified multiple')


@pytest.mark.parametrize(("text", "line", "fragment"), [
    ("aipp_op {\n  cropp: true\n}", 2, 'has no field named "cropp": did you mean crop?'),
    ("aipp_op {\n  aipp_mode: Static\n}", 2, 'Unknown enumeration value of "Static"'),
    ("aipp_op {\n  input_format: RGB888\n}", 2, 'Unknown enumeration value of "RGB888" for field "input_format"'),
    ("aipp_op {\n  crop: yes\n}", 2, 'Invalid value for boolean field "crop"'),
    ("aipp_op {\n  related_input_rank: -1\n}", 2, "out of range"),
    ("aipp_op {\n  mean_chn_0: 4294967296\n}", 2, "out of range"),
    ("aipp_op {\n  crop true\n}", 2, 'Expected ":"'),
    ("aipp_op {\n  crop: true\n", 3, 'Expected "}" to close the aipp_op block opened at line 1'),
    ("aipp_mode: static\n", 1, "AIPP fields go inside an 'aipp_op { ... }' block"),
    ("\n\nmulti_shape_op { }", 3, "multi_shape_op blocks are not supported"),
    ("aipp_op {\n crop: true @\n}", 2, "Invalid character '@'"),
    ("aipp_op {\n  crop: [true]\n}", 2, "not repeated"),
])
def test_malformed_configs_name_file_and_line(text, line, fragment):
    assert_rejected(text, line, fragment)


def test_read_config_errors_are_one_line(tmp_path):
    with pytest.raises(InferKitError, match="AIPP config not found"):
        read_config(tmp_path / "missing.cfg")
    binary = tmp_path / "bin.cfg"
    binary.write_bytes(b"\xff\xfe\x00aipp")
    with pytest.raises(InferKitError, match="is not UTF-8 text"):
        read_config(binary)
    good = tmp_path / "good.any_suffix"
    good.write_text(RESNET50_AIPPCONFIG)
    assert read_config(good).where == str(good)


def test_writer_output_reads_back_and_keeps_modelzoo_digits():
    config = parse_config(RESNET50_AIPPCONFIG + "\n" + YOLO_CFG.replace("related_input_rank : 0",
                                                                         "related_input_rank : 1"))
    text = render_config(config, header=["two blocks"])
    assert text.startswith("# two blocks\naipp_op {")
    assert "var_reci_chn_0 : 0.0171247538316637" in text and "min_chn_0 : 123.675" in text
    assert "matrix_r1c1 : -100" in text and "crop : false" in text
    again = parse_config(text)
    assert again == config
    assert [op.values for op in again.ops] == [op.values for op in config.ops]
