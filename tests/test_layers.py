"""``compare --layers``: per-layer errors of two graphs, matched through the emulation, and the first layer
where the error jumps."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import numpy_helper
from precision_support import residual_net
from test_atc_support import TINY_SPEC, tiny_classifier

from infer_kit.converter import compare_layers, compile_om


def _float_folder(folder, arrays):
    folder.mkdir()
    for i, array in enumerate(arrays):
        array.astype(np.float32).tofile(folder / f"img{i}.bin")
    return folder


def test_a_planted_single_layer_error_is_the_first_divergence(tmp_path, cli):
    rng = np.random.default_rng(0)
    model, _ = residual_net(rng)
    onnx.save(model, str(tmp_path / "ref.onnx"))
    bad = onnx.ModelProto.FromString(model.SerializeToString())
    for init in bad.graph.initializer:
        if init.name == "w2":  # conv2's weights, one layer in the middle
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.5, "w2"))
    onnx.save(bad, str(tmp_path / "bad.onnx"))
    prep = _float_folder(tmp_path / "prep", rng.standard_normal((5, 3, 16, 16)))
    result = compare_layers(tmp_path / "ref.onnx", tmp_path / "bad.onnx", prep, samples=5)
    assert result.samples == 5 and result.first is not None
    assert (result.first.node, result.first.tensor) == ("conv2", "c2")
    before = [d for d in result.layers[:[d.tensor for d in result.layers].index("c2")]]
    assert [d.tensor for d in before] == ["x", "c1", "bn1", "r1", "p1"] and all(d.rel_l2 == 0 for d in before)
    assert result.first.rel_l2 > 0.1 and result.first.cosine < 1
    out = tmp_path / "layers.json"
    shown = cli("compare", "--layers", tmp_path / "ref.onnx", tmp_path / "bad.onnx", "--input", prep, "-o", out)
    assert shown.exit_code == 0, shown.stderr
    assert "first diverging layer: conv2 (Conv) -> c2" in shown.stdout and "<- first divergence" in shown.stdout
    data = json.loads(out.read_text())
    assert data["first_divergence"]["node"] == "conv2" and len(data["layers"]) == len(result.layers)
    same = compare_layers(tmp_path / "ref.onnx", tmp_path / "ref.onnx", prep, samples=2)
    assert same.first is None and all(d.rel_l2 == 0 and abs(d.cosine - 1) < 1e-12 for d in same.layers)


def test_layers_match_through_aipp_rounding_and_int8(tmp_path, cli):
    path, _ = tiny_classifier(tmp_path)
    rng = np.random.default_rng(1)
    aipp_prep = tmp_path / "prep_aipp"
    aipp_prep.mkdir()
    for i in range(6):
        rng.integers(0, 256, (40, 40, 3), dtype=np.uint8).tofile(aipp_prep / f"img{i}.bin")
    artifacts = compile_om(path, soc="Ascend910A", batch_sizes=[4], emulate=True,
                           precision_mode="force_fp16,int8", calibration=aipp_prep)
    fp16 = compare_layers(path, artifacts[0].paths.manifest, aipp_prep, samples=6)
    assert fp16.layers[0].tensor == "actual_input_1" and fp16.layers[0].target_tensor == "actual_input_1__aipp_out"
    assert fp16.layers[0].rel_l2 == 0  # the reference is fed the artifact's own AIPP output
    assert fp16.first is None and 0 < max(d.rel_l2 for d in fp16.layers) < 2e-3  # float16 rounding only
    assert fp16.samples == 6  # a static batch of 4: the second batch is padded, and only 2 of it count
    int8 = compare_layers(path, artifacts[1].model_file, aipp_prep)
    assert any(d.target_tensor.endswith("_DequantizeLinear_Output") for d in int8.layers)
    assert int8.first is not None and 1e-3 < int8.worst.rel_l2 < 0.1
    wrong = cli("compare", "--layers", path, artifacts[0].model_file, "--input", tmp_path / "nothing")
    assert wrong.exit_code == 1 and "sample folder not found" in wrong.stderr
    float_prep = _float_folder(tmp_path / "prep_float", rng.standard_normal((2, 3, 32, 32)))
    mismatch = cli("compare", "--layers", path, artifacts[0].model_file, "--input", float_prep)
    assert mismatch.exit_code == 1 and "holds float tensors but tiny_bs4_force_fp16.emu.onnx takes aipp" in \
        mismatch.stderr
    mixed = cli("compare", "--layers", path, artifacts[0].model_file, "--input", float_prep, "--labels", "x")
    assert mixed.exit_code == 1 and "--labels compare runs, not --layers" in mixed.stderr
    assert TINY_SPEC.crop == 32


def test_models_that_do_not_fit_together_are_one_line_and_dynamic_sizes_run(tmp_path, cli):
    import io

    import torch
    from onnx import TensorProto, helper
    from test_atc_support import export_model, tiny_torch_model

    from infer_kit.spec import PreprocessSpec

    path, _ = tiny_classifier(tmp_path)
    prep = _float_folder(tmp_path / "prep", np.random.default_rng(2).standard_normal((3, 3, 32, 32)))  # no manifest
    # a target whose H and W are dynamic: the files' size comes from the reference
    buffer = io.BytesIO()
    torch.onnx.export(tiny_torch_model(), torch.zeros(2, 3, 32, 32), buffer, dynamo=False, opset_version=11,
                      input_names=["actual_input_1"], output_names=["output1"],
                      dynamic_axes={"actual_input_1": {0: "n", 2: "h", 3: "w"}, "output1": {0: "n"}})
    (tmp_path / "dyn.onnx").write_bytes(buffer.getvalue())
    same = compare_layers(path, tmp_path / "dyn.onnx", prep)
    assert same.samples == 3 and same.first is None and all(d.rel_l2 < 1e-6 for d in same.layers)
    # another input size than the reference's
    export_model(tiny_torch_model(), tmp_path / "small.onnx", PreprocessSpec(resize=32, crop=28))
    small = cli("compare", "--layers", path, tmp_path / "small.onnx", "--input", prep)
    assert small.exit_code == 1 and "takes 3x32x32 images and small.onnx 3x28x28" in small.stderr, small.stderr
    # the artifact given first: a uint8 reference
    graph = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)], "u8",
                              [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 32, 32, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 32, 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "u8.onnx"))
    for args in ((tmp_path / "u8.onnx", path), (path, tmp_path / "u8.onnx")):
        swapped = cli("compare", "--layers", *args, "--input", prep)
        assert swapped.exit_code == 1 and "takes uint8 input" in swapped.stderr, swapped.stderr
        assert swapped.stderr.count("\n") == 1 and "internal error" not in swapped.stderr
