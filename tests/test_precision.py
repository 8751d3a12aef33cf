"""The precision emulation: float16/bfloat16 "as the AI Core computes it", every ATC mode, keep_dtype, mixlist,
and the ONNX Runtime lowering that keeps the same values at NCHWc speed."""

from __future__ import annotations

import collections
import logging

import numpy as np
import pytest
from onnx import TensorProto, helper
from precision_support import fixed_point_input, residual_net, residual_reference, run, single_op

from infer_kit.converter.precision import (
    ALL_MODES,
    MODES,
    apply_precision_mode,
    keep_dtype_from,
    mixed_lists,
    mode_table_markdown,
    node_policies,
    precision_argv,
    resolve_precision_modes,
)
from infer_kit.converter.rounding import emulate_low_precision, fold_batchnorm, round_bf16, round_fp16
from infer_kit.errors import InferKitError
from infer_kit.runtime.lowering import lower_for_ort, rounding_pairs, session_source


def test_fp16_emulation_equals_the_numpy_reference_bit_for_bit():
    rng = np.random.default_rng(0)
    model, params = residual_net(rng)
    x = fixed_point_input(rng)
    expected = residual_reference(x, params)
    emulated, report = emulate_low_precision(model)
    assert report.bn_folded == 1 and report.deferred >= 2  # Conv->Relu->MaxPool rounded once, after the pool
    lowered, stats = lower_for_ort(emulated)
    assert stats.complete and stats.markers >= 2
    for graph, level in ((emulated, "all"), (emulated, "disable"), (lowered, "disable")):
        y, r2 = run(graph, {"x": x}, level)
        np.testing.assert_array_equal(y, expected["y"])
        np.testing.assert_array_equal(r2, expected["r2"])
    y32 = run(model, {"x": x})[0]
    assert np.mean(y32 != expected["y"]) > 0.5  # the roundings matter on this data


@pytest.mark.parametrize("op", ["Conv", "MatMul", "Gemm"])
def test_single_operators_are_fp16_operands_fp32_accumulation_fp16_result(op):
    model, x, expected = single_op(op, np.random.default_rng(1))
    emulated, _ = emulate_low_precision(model)
    np.testing.assert_array_equal(run(emulated, {"x": x})[0], expected)
    assert not np.array_equal(run(model, {"x": x})[0], expected)


def test_one_rounding_per_value_the_device_writes():
    model, _ = residual_net(np.random.default_rng(0))
    emulated, report = emulate_low_precision(model)
    casts = [n for n in emulated.graph.node if n.op_type == "Cast"]
    # input copy, conv1+relu+pool (once), conv2, add+relu, the Gemm's input is r2 (rounded), Gemm, GAP unused
    assert len(casts) == 2 * (len(report.rounded_outputs) + len(report.rounded_copies))
    assert report.rounded_copies == ["x"] and "p1" in report.rounded_outputs and "c2" in report.rounded_outputs
    names = {o for n in emulated.graph.node for o in n.output}
    assert {"p1", "p1__acc", "c2__acc", "x__rfp16"} <= names  # the original name holds the device's value


def test_bf16_rounding_equals_round_to_nearest_even():
    values = np.array([1.0, 1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-9, 1 + 2**-9 + 2**-20, -2.5e-39, 3.4e38, np.inf,
                       -0.0, 65504, 1e-45, np.nan, 3.3961776e38], np.float32)
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["h"], to=TensorProto.BFLOAT16),
         helper.make_node("Cast", ["h"], ["y"], to=TensorProto.FLOAT)], "bf16",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [len(values)])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [len(values)])])
    got = run(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), {"x": values})[0]
    np.testing.assert_array_equal(got.view(np.uint32), round_bf16(values).view(np.uint32))
    assert round_bf16(np.float32(1 + 2**-8)) == 1.0 and round_bf16(np.float32(1 + 3 * 2**-8)) == 1 + 2**-6


def test_bf16_mode_rounds_to_bfloat16_and_raises_the_opset():
    rng = np.random.default_rng(2)
    model, params = residual_net(rng, opset=11)
    x = fixed_point_input(rng)
    emulated, report = apply_precision_mode(model, "allow_mix_precision_bf16")
    assert report.opset == 13  # Cast to bfloat16 needs opset 13
    y = run(emulated, {"x": x})[0]
    # the mixed lists keep Conv/Gemm in bfloat16, MaxPool/Relu/Add (gray) follow them
    np.testing.assert_array_equal(y, residual_reference(x, params, fmt="bf16")["y"])


def test_every_mode_is_in_one_table_and_runs():
    rng = np.random.default_rng(3)
    model, _ = residual_net(rng)
    x = (rng.standard_normal((2, 3, 16, 16)) * 3).astype(np.float32)
    reference = run(model, {"x": x})[0]
    table = mode_table_markdown()
    for name in MODES:
        assert f"| `{name}` |" in table
    expected_output = {"force_fp16": "fp16", "allow_fp32_to_fp16": "fp16", "allow_fp32_to_bf16": "bf16",
                       "must_keep_origin_dtype": "fp32", "cube_fp16in_fp32out": "fp32",
                       "allow_mix_precision_fp16": "fp16", "allow_mix_precision_bf16": "bf16"}
    assert set(expected_output) == set(ALL_MODES)
    for mode, fmt in expected_output.items():
        emulated, _ = apply_precision_mode(model, mode)
        y = run(emulated, {"x": x})[0]
        held = ("bf16" if np.array_equal(y, round_bf16(y)) else  # (bfloat16 values are float16 values too)
                "fp16" if np.array_equal(y, round_fp16(y)) else "fp32")
        assert held == fmt, mode
        assert np.abs(y - reference).max() < 0.05 * np.abs(reference).max(), mode
    casts = collections.Counter(n.attribute[0].i for n in apply_precision_mode(model, "cube_fp16in_fp32out")[0]
                                .graph.node if n.op_type == "Cast")
    assert casts[TensorProto.FLOAT16] == 3  # the Cube ops' operands only: x, p1 and r2 -> float16 copies
    with pytest.raises(InferKitError, match="cannot emulate it"):
        apply_precision_mode(model, "mixed_hif8")


def test_mode_names_all_and_v2_spellings():
    assert resolve_precision_modes("all") == list(ALL_MODES)
    assert resolve_precision_modes("force_fp16, int8,force_fp16") == ["force_fp16", "int8"]
    assert resolve_precision_modes(["all", "int8"])[-1] == "int8"
    with pytest.raises(InferKitError, match="Value fp8 for parameter --precision_mode is invalid"):
        resolve_precision_modes("fp8")
    assert precision_argv("force_fp16") == [] and precision_argv("int8") == []
    assert precision_argv("allow_fp32_to_bf16") == ["--precision_mode=allow_fp32_to_bf16"]
    assert precision_argv("mixed_float16") == ["--precision_mode_v2=mixed_float16"]
    assert MODES["fp16"].canonical == "force_fp16" and MODES["force_fp32"].canonical == "cube_fp16in_fp32out"


def test_all_is_what_the_chip_computes_and_bfloat16_needs_an_a2_chip():
    """Before Atlas A2 there is no bfloat16: "all" leaves those modes out, naming one is refused."""
    bf16 = {"allow_fp32_to_bf16", "allow_mix_precision_bf16"}
    assert set(resolve_precision_modes("all", "Ascend910B3")) == set(ALL_MODES)
    assert set(resolve_precision_modes("all", "Ascend910_9392")) == set(ALL_MODES)
    for soc in ("Ascend910A", "Ascend910ProB", "Ascend310P3"):
        assert resolve_precision_modes("all,int8", soc) == [m for m in ALL_MODES if m not in bf16] + ["int8"]
        for mode in ("allow_fp32_to_bf16", "mixed_bfloat16"):
            with pytest.raises(InferKitError, match=f"{mode} needs bfloat16, which {soc} does not compute"):
                resolve_precision_modes(f"force_fp16,{mode}", soc)


def test_keep_dtype_names_and_types(tmp_path):
    model, _ = residual_net(np.random.default_rng(0))
    folded, _ = fold_batchnorm(model)
    keep_file = tmp_path / "keep.cfg"
    keep_file.write_text("# keep these\nconv2\nOpType::Relu\n")
    for keep in (keep_dtype_from(keep_file), keep_dtype_from("conv2,OpType::Relu")):
        policies = node_policies(folded, "force_fp16", keep_dtype=keep)
        kept = sorted(n.name for n, p in zip(folded.graph.node, policies, strict=True) if p.output == "fp32")
        assert kept == ["conv2", "relu1", "relu2"]
    ir_type = keep_dtype_from("OpType::Conv2D")  # Ascend IR name of Conv
    policies = node_policies(folded, "force_fp16", keep_dtype=ir_type)
    assert [n.name for n, p in zip(folded.graph.node, policies, strict=True) if p.is_float32] == ["conv1", "conv2"]
    assert node_policies(folded, "must_keep_origin_dtype", keep_dtype=ir_type)[0].is_float32


def test_a_kept_batchnorm_keeps_the_conv_it_is_folded_into():
    rng = np.random.default_rng(0)
    model, _ = residual_net(rng)
    x = fixed_point_input(rng)
    outputs, conv1_weights = {}, {}
    for keep in ("bn1", "conv1", None):
        emulated, report = apply_precision_mode(model, "force_fp16", keep_dtype=keep_dtype_from(keep))
        outputs[keep] = run(emulated, {"x": x})[0]
        assert report.float32_nodes == (0 if keep is None else 1)
        conv1_weights[keep] = next(n.input[1] for n in emulated.graph.node if n.name == "conv1")
    np.testing.assert_array_equal(outputs["bn1"], outputs["conv1"])
    assert conv1_weights["bn1"] == conv1_weights["conv1"] == "w1__bnfold"  # the folded weights, not rounded
    assert conv1_weights[None].endswith("__wfp16")


def test_mixlist_edits_move_types_between_lists():
    white, black = mixed_lists({"black-list": {"to-add": ["Conv2D"]}, "white-list": {"to-add": ["SoftmaxV2"]}})
    assert "Conv" in black and "Conv" not in white and "Softmax" in white and "Softmax" not in black
    model, _ = residual_net(np.random.default_rng(0))
    folded, _ = fold_batchnorm(model)
    policies = node_policies(folded, "allow_mix_precision", mixlist={"black-list": {"to-add": ["Gemm"]}})
    assert {n.name: p.output for n, p in zip(folded.graph.node, policies, strict=True)}["fc"] == "fp32"


def test_lowering_keeps_markers_or_falls_back(tmp_path, caplog, monkeypatch):
    import onnx

    from infer_kit.runtime import lowering

    model, _ = residual_net(np.random.default_rng(0), c=32)
    emulated, _ = emulate_low_precision(model)
    path = tmp_path / "m.onnx"
    onnx.save(emulated, str(path))
    assert rounding_pairs(emulated)
    source, lowered = session_source(path, 1)
    assert lowered and isinstance(source, bytes)
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    fast = run(onnx.load_from_string(source), {"x": x}, "disable")
    np.testing.assert_array_equal(fast[0], run(emulated, {"x": x})[0])
    # an ONNX Runtime that removes a one-input Concat would lose a rounding: caught, portable graph used
    original = lowering.restore_markers

    def lose_one(optimized):
        graph, count = original(optimized)
        return graph, count - 1

    monkeypatch.setattr(lowering, "restore_markers", lose_one)
    with caplog.at_level(logging.WARNING, logger="infer_kit"):
        source, lowered = session_source(path, 1)
    assert not lowered and source == str(path) and "removed 1 of" in caplog.text


def test_flags_that_would_change_nothing_are_refused(tmp_path):
    import onnx

    from infer_kit.converter import compile_om

    with pytest.raises(InferKitError, match="keep_dtype file not found: missing.cfg"):
        keep_dtype_from("missing.cfg")
    assert keep_dtype_from("conv1,cfg.txt").names == {"conv1", "cfg.txt"}  # a list stays names
    model, _ = residual_net(np.random.default_rng(0))
    onnx.save(model, str(tmp_path / "m.onnx"))
    mixlist = tmp_path / "mix.json"
    mixlist.write_text('{"black-list": {"to-add": ["Conv2D"]}}')
    with pytest.raises(InferKitError, match=r"no mode asked for \(force_fp16, allow_fp32_to_bf16\) uses them"):
        compile_om(tmp_path / "m.onnx", soc="Ascend910B3", batch_sizes=[2], aipp="none", emulate=True,
                   precision_mode="force_fp16,allow_fp32_to_bf16", modify_mixlist=mixlist, range_check=False)
    assert not list(tmp_path.glob("*.emu.onnx"))
    [artifact] = compile_om(tmp_path / "m.onnx", soc="Ascend910A", batch_sizes=[2], aipp="none", emulate=True,
                            precision_mode="allow_mix_precision", modify_mixlist=mixlist, range_check=False)
    assert any(a.startswith("--modify_mixlist=") for a in artifact.argv)
    [plain] = compile_om(tmp_path / "m.onnx", soc="Ascend910A", batch_sizes=[2], aipp="none", emulate=True,
                         range_check=False)
    with pytest.raises(InferKitError, match="m_bs2.emu.onnx is an emulated artifact"):  # rounded twice else
        compile_om(plain.model_file, soc="Ascend910A", batch_sizes=[2], aipp="none", emulate=True)
    with pytest.raises(InferKitError, match="the int8 artifact does not use it"):
        compile_om(tmp_path / "m.onnx", soc="Ascend910A", batch_sizes=[2], aipp="none", emulate=True,
                   precision_mode="int8", calibration=tmp_path, keep_dtype="conv1", range_check=False)
