"""The AIPP emulation: numpy reference == ONNX subgraph bit for bit; the arithmetic is ATC's; the result
matches the float preprocessing it replaces within float16 precision on real photos."""

from __future__ import annotations

import itertools

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_atc_support import float_preprocess, source_images

from infer_kit.aipp.assumptions import CHOICES, DEFAULT_ASSUMPTIONS, Assumptions, parse_assumptions
from infer_kit.aipp.config import AippOp
from infer_kit.aipp.csc import rgb_to_nv12, rgb_to_yuv, yuv_to_rgb
from infer_kit.aipp.generate import generate_op
from infer_kit.aipp.geometry import resolve_geometry, source_shape
from infer_kit.aipp.onnx_graph import aipp_model
from infer_kit.aipp.params import dtc_constants
from infer_kit.aipp.reference import emulate_aipp
from infer_kit.errors import InferKitError
from infer_kit.registry import get_model

RESNET = get_model("resnet50").spec
ALL_ASSUMPTIONS = [Assumptions(**dict(zip(CHOICES, values, strict=True)))
                   for values in itertools.product(*CHOICES.values())]


def run_onnx(op: AippOp, images: np.ndarray, model_hw=None, assumptions=DEFAULT_ASSUMPTIONS, opset=11) -> np.ndarray:
    model = aipp_model(op, batch=images.shape[0], model_hw=model_hw, assumptions=assumptions, opset=opset)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": images})[0]


def random_sources(op: AippOp, n: int, seed: int, model_hw=None) -> np.ndarray:
    shape = source_shape(op, resolve_geometry(op, model_hw))
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def assert_bit_identical(op: AippOp, images: np.ndarray, model_hw=None, assumptions=DEFAULT_ASSUMPTIONS, opset=11):
    ref = emulate_aipp(op, images, model_hw=model_hw, assumptions=assumptions)
    out = run_onnx(op, images, model_hw, assumptions, opset)
    assert ref.dtype == out.dtype == np.float16
    assert ref.shape == out.shape
    assert np.array_equal(ref.view(np.uint16), out.view(np.uint16)), f"{op.input_format} {assumptions}"
    return ref


NORMALISE = dict(min_chn_0=123.675, min_chn_1=116.28, min_chn_2=103.53, var_reci_chn_0=0.0171247538316637,
                 var_reci_chn_1=0.0175070028011204, var_reci_chn_2=0.0174291938997821)
RGB_OP = AippOp.make(aipp_mode="static", input_format="RGB888_U8", src_image_size_w=40, src_image_size_h=36,
                     crop=True, load_start_pos_w=3, load_start_pos_h=5, crop_size_w=30, crop_size_h=28,
                     rbuv_swap_switch=True, padding=True, left_padding_size=2, right_padding_size=1,
                     top_padding_size=3, padding_value=-0.3, **NORMALISE)
YUV_OP = AippOp.make(aipp_mode="static", input_format="YUV420SP_U8", src_image_size_w=40, src_image_size_h=36,
                     crop=True, load_start_pos_w=4, load_start_pos_h=6, crop_size_w=30, crop_size_h=28,
                     csc_switch=True, rbuv_swap_switch=True, mean_chn_0=10, min_chn_1=116.28, var_reci_chn_2=0.017,
                     **yuv_to_rgb("bt601-narrow", "BGR").fields())


@pytest.mark.parametrize("op", [
    RGB_OP,
    RGB_OP.replace(csc_switch=True, **rgb_to_yuv("bt709-narrow").fields()),
    YUV_OP,
    YUV_OP.replace(csc_switch=False),
    RGB_OP.replace(input_format="XRGB8888_U8", ax_swap_switch=True),
], ids=["rgb888", "rgb888-csc", "yuv420sp", "yuv420sp-no-csc", "xrgb8888"])
def test_numpy_and_onnx_agree_bit_for_bit_under_every_assumption(op):
    images = random_sources(op, 3, seed=1, model_hw=(31, 33))
    for assumptions in ALL_ASSUMPTIONS:
        assert_bit_identical(op, images, (31, 33), assumptions)
    assert_bit_identical(op, images, (31, 33), opset=17)


@st.composite
def random_static_ops(draw: st.DrawFn) -> tuple[AippOp, tuple[int, int]]:
    fmt = draw(st.sampled_from(["RGB888_U8", "YUV420SP_U8"]))
    step = 2 if fmt == "YUV420SP_U8" else 1
    src_w, src_h = step * draw(st.integers(4, 16)), step * draw(st.integers(4, 16))
    crop_w, crop_h = step * draw(st.integers(2, src_w // step)), step * draw(st.integers(2, src_h // step))
    left = step * draw(st.integers(0, (src_w - crop_w) // step))
    top = step * draw(st.integers(0, (src_h - crop_h) // step))
    pads = [draw(st.integers(0, 3)) for _ in range(4)]
    values = dict(aipp_mode="static", input_format=fmt, src_image_size_w=src_w, src_image_size_h=src_h, crop=True,
                  load_start_pos_w=left, load_start_pos_h=top, crop_size_w=crop_w, crop_size_h=crop_h,
                  rbuv_swap_switch=draw(st.booleans()), csc_switch=draw(st.booleans()))
    if any(pads):
        values.update(padding=True, top_padding_size=pads[0], bottom_padding_size=pads[1],
                      left_padding_size=pads[2], right_padding_size=pads[3],
                      padding_value=draw(st.floats(-100, 100, width=16)))
    for i in range(3):
        values[f"mean_chn_{i}"] = draw(st.integers(0, 255))
        values[f"min_chn_{i}"] = draw(st.floats(0, 255))
        values[f"var_reci_chn_{i}"] = draw(st.floats(-2, 2))
        for c in range(3):
            values[f"matrix_r{i}c{c}"] = draw(st.integers(-32768, 32767))
        values[f"input_bias_{i}"] = draw(st.integers(0, 255))
        values[f"output_bias_{i}"] = draw(st.integers(0, 255))
    model_hw = (crop_h + pads[0] + pads[1], crop_w + pads[2] + pads[3])
    return AippOp(values), model_hw


@given(random_static_ops(), st.sampled_from(ALL_ASSUMPTIONS), st.integers(0, 2**31))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_configs_agree_bit_for_bit(case, assumptions, seed):
    op, model_hw = case
    assert_bit_identical(op, random_sources(op, 2, seed, model_hw), model_hw, assumptions)


def test_parameters_are_programmed_as_float16():
    constants = dtc_constants(generate_op(RESNET), 3)
    assert constants.minimum.tolist() == [123.6875, 116.25, 103.5]
    assert constants.var_reci.tolist() == [0.017120361328125, 0.0175018310546875, 0.017425537109375]
    white = np.full((1, 256, 256, 3), 255, np.uint8)
    out = emulate_aipp(generate_op(RESNET), white, assumptions=Assumptions(dtc_precision="float32"))
    assert out[0, 0, 0, 0] == np.float16(np.float32(255 - 123.6875) * np.float32(0.017120361328125))
    stepwise = emulate_aipp(generate_op(RESNET), white)  # default: each step rounded to float16
    assert stepwise[0, 0, 0, 0] == np.float16(np.float16(255 - 123.6875) * np.float16(0.017120361328125))


def one_yuv_pixel(y: int, u: int, v: int, assumptions: Assumptions) -> np.ndarray:
    op = AippOp.make(aipp_mode="static", input_format="YUV420SP_U8", src_image_size_w=2, src_image_size_h=2,
                     csc_switch=True, **yuv_to_rgb("jpeg").fields())
    nv12 = np.array([[y, y], [y, y], [u, v]], np.uint8)[None, ..., None]
    return emulate_aipp(op, nv12, model_hw=(2, 2), assumptions=assumptions)[0, :, 0, 0].astype(np.float32)


def test_csc_is_the_integer_matrix_with_an_8_bit_shift():
    # JPEG YUV->RGB: R = (256Y + 359(V-128)) >> 8, G = (256Y - 88(U-128) - 183(V-128)) >> 8,
    # B = (256Y + 454(U-128)) >> 8
    assert one_yuv_pixel(100, 90, 200, DEFAULT_ASSUMPTIONS).tolist() == [200, 61, 32]
    # B = 454 * (1 - 128) / 256 = -225.2: the rounding of the shift is an assumption, one switch each
    raw = dict(csc_saturate=False)
    assert one_yuv_pixel(0, 1, 128, Assumptions(csc_shift="floor", **raw))[2] == -226
    assert one_yuv_pixel(0, 1, 128, Assumptions(csc_shift="trunc", **raw))[2] == -225
    assert one_yuv_pixel(0, 1, 128, Assumptions(csc_shift="round", **raw))[2] == -225
    assert one_yuv_pixel(0, 1, 128, DEFAULT_ASSUMPTIONS)[2] == 0  # saturated


def test_rgb_to_yuv_adds_the_output_bias_after_the_shift():
    op = AippOp.make(aipp_mode="static", input_format="RGB888_U8", src_image_size_w=1, src_image_size_h=1,
                     csc_switch=True, **rgb_to_yuv("bt601-narrow").fields())
    out = emulate_aipp(op, np.array([[[200, 100, 50]]], np.uint8), model_hw=(1, 1))[0, :, 0, 0]
    y = (66 * 200 + 129 * 100 + 25 * 50) // 256 + 16
    u = (-38 * 200 - 74 * 100 + 112 * 50) // 256 + 128
    v = (112 * 200 - 94 * 100 - 18 * 50) // 256 + 128
    assert out.astype(np.float32).tolist() == [y, u, v]


def test_generated_resnet50_config_matches_float_preprocessing_on_real_photos(photos):
    sources = source_images(photos, RESNET.resize)
    emulated = emulate_aipp(generate_op(RESNET), sources).astype(np.float32)
    reference = float_preprocess(sources, RESNET)
    assert emulated.shape == reference.shape == (len(photos), 3, 224, 224)
    error = np.abs(emulated - reference)
    # float16 precision: parameter rounding (123.675 -> 123.6875, ...) and float16 steps, relative ~2^-10
    assert error.max() <= 2 ** -9 * np.abs(reference).max() + 2e-3, error.max()
    assert error.mean() < 1e-3
    onnx_out = run_onnx(generate_op(RESNET), sources)
    assert np.array_equal(onnx_out, emulated.astype(np.float16))


def test_bgr_config_gives_the_bgr_planes(photos):
    spec = RESNET.with_overrides(channel_order="BGR")
    sources = source_images(dict(list(photos.items())[:2]), spec.resize)
    error = np.abs(emulate_aipp(generate_op(spec), sources).astype(np.float32) - float_preprocess(sources, spec))
    assert error.max() < 0.01


def test_yuv420sp_jpeg_config_recovers_the_rgb_photo(photos):
    sources = source_images(dict(list(photos.items())[:3]), 64)
    op = AippOp.make(aipp_mode="static", input_format="YUV420SP_U8", src_image_size_w=64, src_image_size_h=64,
                     csc_switch=True, **yuv_to_rgb("jpeg").fields())
    nv12 = np.stack([rgb_to_nv12(image, "jpeg") for image in sources])[..., None]
    for upsampling in ("replicate", "bilinear"):
        rgb = emulate_aipp(op, nv12, assumptions=Assumptions(chroma_upsampling=upsampling)).astype(np.float32)
        error = np.abs(rgb.transpose(0, 2, 3, 1) - sources.astype(np.float32))
        assert error.mean() < 4, (upsampling, error.mean())  # chroma subsampling of real photos
        assert np.median(error) <= 2
    bt601 = np.stack([rgb_to_nv12(image, "bt601-narrow") for image in sources])[..., None]
    narrow = emulate_aipp(op.replace(**yuv_to_rgb("bt601-narrow").fields()), bt601).astype(np.float32)
    assert np.abs(narrow.transpose(0, 2, 3, 1) - sources).mean() < 4


def test_emulation_refuses_what_it_cannot_emulate():
    op = generate_op(RESNET)
    with pytest.raises(InferKitError, match="uint8 256x256x3 per image, got float32"):
        emulate_aipp(op, np.zeros((1, 256, 256, 3), np.float32))
    with pytest.raises(InferKitError, match="got uint8 224x224x3"):
        emulate_aipp(op, np.zeros((224, 224, 3), np.uint8))
    with pytest.raises(InferKitError, match="only static AIPP"):
        emulate_aipp(AippOp.make(aipp_mode="dynamic", max_src_image_size=100), np.zeros((1, 2, 2, 3), np.uint8))
    with pytest.raises(InferKitError, match="cannot emulate AIPP input_format YUYV_U8"):
        emulate_aipp(op.replace(input_format="YUYV_U8"), np.zeros((1, 256, 256, 3), np.uint8))
    with pytest.raises(InferKitError, match="no model size is known"):
        emulate_aipp(AippOp.make(aipp_mode="static", input_format="RGB888_U8"), np.zeros((1, 8, 8, 3), np.uint8))


def test_assumption_switches_are_validated():
    assert parse_assumptions(["csc_shift=trunc", "csc_saturate=False"]) == Assumptions(csc_shift="trunc",
                                                                                         csc_saturate=False)
    with pytest.raises(InferKitError, match="unknown AIPP assumption 'shift'"):
        parse_assumptions(["shift=floor"])
    with pytest.raises(InferKitError, match="expected KEY=VALUE"):
        parse_assumptions(["csc_shift"])
    with pytest.raises(InferKitError, match="is not known"):
        Assumptions(chroma_upsampling="lanczos")
