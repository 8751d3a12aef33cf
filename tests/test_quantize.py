"""``infer-kit quantize`` and INT8 artifacts: calibration from preprocessed folders (either layout), one-line
refusals of too few or mismatched files, the spec carried along, AIPP in front of the quantized network."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from test_atc_support import TINY_SPEC, install_fake_atc, tiny_classifier

from infer_kit.aipp import emulate_aipp, generate_op
from infer_kit.artifacts import describe_model, write_folder_manifest
from infer_kit.converter import compile_om, quantize_onnx
from infer_kit.converter.quantize import QUANTIZATION_KEY
from infer_kit.errors import InferKitError
from infer_kit.metadata import read_model_info


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The same 12 random images as aipp sources (uint8 40x40x3) and as float tensors (AIPP's output)."""
    root = tmp_path_factory.mktemp("calib")
    rng = np.random.default_rng(0)
    sources = rng.integers(0, 256, (12, 40, 40, 3), dtype=np.uint8)
    floats = emulate_aipp(generate_op(TINY_SPEC), sources).astype(np.float32)
    out = {}
    for layout, arrays in (("aipp", sources), ("float", floats)):
        folder = root / layout
        folder.mkdir()
        for i, array in enumerate(arrays):
            array.tofile(folder / f"img{i}.bin")
        write_folder_manifest(folder, {"spec": TINY_SPEC.to_dict(), "layout": layout,
                                       "dtype": TINY_SPEC.sample_dtype(layout),
                                       "shape": list(TINY_SPEC.sample_shape(layout)),
                                       "bytes_per_file": TINY_SPEC.sample_nbytes(layout), "count": 12})
        out[layout] = folder
    out["floats"] = floats
    return out


def _scales(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.name.endswith("_scale")}


def test_quantize_carries_the_spec_and_calibrates_through_aipp(tmp_path, folders, cli):
    path, _ = tiny_classifier(tmp_path)
    result = cli("quantize", path, "--calibration", folders["float"], "-o", tmp_path / "f.int8.onnx")
    assert result.exit_code == 0, result.stderr
    assert "calibration  minmax on 12 image(s)" in result.stdout and "int8 symmetric weights per channel" in \
        result.stdout
    quantized = onnx.load(str(tmp_path / "f.int8.onnx"))
    info = read_model_info(quantized)
    assert info.spec == TINY_SPEC and info.arch == "tiny"
    record = json.loads({p.key: p.value for p in quantized.metadata_props}[QUANTIZATION_KEY])
    assert record["method"] == "minmax" and record["samples"]["count"] == 12
    assert len(record["source_onnx_sha256"]) == 64
    ops = {n.op_type for n in quantized.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    zero_points = [numpy_helper.to_array(i) for i in quantized.graph.initializer if i.name.endswith("_zero_point")]
    assert {np.dtype(np.uint8), np.dtype(np.int8)} <= {z.dtype for z in zero_points}  # u8 activations, s8 weights
    assert all(not z.any() for z in zero_points if z.dtype == np.int8)  # symmetric weights
    # the aipp sources, run through AIPP, calibrate exactly as AIPP's float output does
    through = quantize_onnx(path, folders["aipp"], output=tmp_path / "a.int8.onnx")
    assert through.samples["layout"] == "aipp"
    aipp_scales, float_scales = _scales(onnx.load(str(through.path))), _scales(quantized)
    assert aipp_scales.keys() == float_scales.keys()
    assert all(np.array_equal(aipp_scales[k], float_scales[k]) for k in aipp_scales)
    # top-1 of the INT8 network agrees with float32 on these images
    x = folders["floats"]
    fp32 = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"actual_input_1": x})[0]
    int8 = ort.InferenceSession(str(through.path), providers=["CPUExecutionProvider"]).run(
        None, {"actual_input_1": x})[0]
    assert np.abs(int8 - fp32).max() < 0.05 * np.abs(fp32).max()


@pytest.mark.parametrize(("setup", "fragment"), [
    ("few", "holds 12 tensor file(s), fewer than the 50 asked for: preprocess more images, or ask for --samples 12"),
    ("size", "1 of 12 calibration file(s)"),
    ("spec", "was preprocessed with another spec than the model's (folder vs model: crop 28 vs 32"),
    ("empty", "holds no .bin or .npy files"),
])
def test_too_few_or_mismatched_bins_are_one_line(tmp_path, folders, cli, setup, fragment):
    import shutil

    path, _ = tiny_classifier(tmp_path)
    folder = tmp_path / "calib"
    shutil.copytree(folders["float"], folder)
    args = []
    if setup == "few":
        args = ["--samples", "50"]
    elif setup == "size":
        (folder / "img3.bin").write_bytes(b"\0" * 100)
    elif setup == "spec":
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["spec"]["crop"] = 28
        (folder / "manifest.json").write_text(json.dumps(manifest))
    else:
        for item in folder.glob("*.bin"):
            item.unlink()
    result = cli("quantize", path, "--calibration", folder, *args)
    assert result.exit_code == 1 and fragment in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("infer-kit: error: ")
    assert not (tmp_path / "tiny.int8.onnx").exists()


def test_int8_artifacts_put_aipp_in_front_of_the_quantized_network(tmp_path, folders, monkeypatch):
    path, _ = tiny_classifier(tmp_path)
    [artifact] = compile_om(path, soc="Ascend910A", batch_sizes=[4], emulate=True, precision_mode="int8",
                            calibration=folders["aipp"])
    assert artifact.precision_mode == "int8" and artifact.layout == "aipp"
    assert artifact.emulation["int8"]["network"] == "int8_tiny.onnx" and artifact.range_check is None
    assert "--model=int8_tiny.onnx" in artifact.argv and not any("precision_mode" in a for a in artifact.argv)
    emulated = onnx.load(str(artifact.model_file))
    aipp_nodes = [n for n in emulated.graph.node if "_huawei_aipp" in n.name]
    assert aipp_nodes and not any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in aipp_nodes)
    network = tmp_path / "int8_tiny.onnx"
    sources = np.random.default_rng(3).integers(0, 256, (4, 40, 40, 3), dtype=np.uint8)
    got = ort.InferenceSession(str(artifact.model_file), providers=["CPUExecutionProvider"]).run(
        None, {"actual_input_1": sources})[0]
    features = emulate_aipp(generate_op(TINY_SPEC), sources).astype(np.float32)
    expected = ort.InferenceSession(str(network), providers=["CPUExecutionProvider"]).run(
        None, {"actual_input_1": features})[0]
    np.testing.assert_array_equal(got, expected)
    # a quantized input is compiled as INT8 as it is
    [again] = compile_om(network, soc="Ascend910A", batch_sizes=[2], emulate=True, output=tmp_path / "q")
    assert again.precision_mode == "int8" and again.emulation["int8"]["source"] == "quantized input"
    assert describe_model(again.model_file).spec == TINY_SPEC
    with pytest.raises(InferKitError, match="already quantized"):
        compile_om(network, soc="Ascend910A", batch_sizes=[2], emulate=True, precision_mode="allow_fp32_to_fp16")
    with pytest.raises(InferKitError, match="int8 needs calibration images"):
        compile_om(path, soc="Ascend910A", batch_sizes=[2], emulate=True, precision_mode="int8")
    install_fake_atc(tmp_path, monkeypatch)
    with pytest.raises(InferKitError, match="INT8 on Ascend is the job of AMCT"):
        compile_om(path, soc="Ascend910A", batch_sizes=[2], precision_mode="int8", calibration=folders["aipp"])


def test_quantize_never_overwrites_its_source_and_refuses_a_quantized_model_first(tmp_path, folders, cli):
    path, _ = tiny_classifier(tmp_path)
    before = path.read_bytes()
    over = cli("quantize", path, "--calibration", folders["float"], "-o", tmp_path / "." / path.name)
    assert over.exit_code == 1 and "would overwrite the float32 model" in over.stderr, over.stderr
    assert path.read_bytes() == before
    quantized = quantize_onnx(path, folders["float"], output=tmp_path / "q.onnx").path
    empty = tmp_path / "empty"
    empty.mkdir()
    again = cli("quantize", quantized, "--calibration", empty)
    assert again.exit_code == 1 and "q.onnx is already quantized: give the float32 model" in again.stderr, \
        again.stderr
    assert "calibrating" not in again.stderr


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_histogram_methods_calibrate_a_folder_of_any_size(tmp_path, folders, cli, method):
    path, _ = tiny_classifier(tmp_path)  # dynamic batch; 12 files are not a whole number of batches of 8
    result = cli("quantize", path, "--calibration", folders["float"], "--method", method, "-o", tmp_path / "q.onnx")
    assert result.exit_code == 0, result.stderr
    assert f"calibration  {method} on 12 image(s)" in result.stdout
    minmax = quantize_onnx(path, folders["float"], output=tmp_path / "m.onnx")
    scales, reference = _scales(onnx.load(str(tmp_path / "q.onnx"))), _scales(onnx.load(str(minmax.path)))
    assert scales.keys() == reference.keys()
    assert any(not np.array_equal(scales[k], reference[k]) for k in scales)  # another method, other ranges


def test_quantize_refuses_an_emulated_artifact_or_a_uint8_input(tmp_path, folders, cli):
    import shutil

    from onnx import TensorProto, helper

    path, _ = tiny_classifier(tmp_path)
    shutil.copyfile(path, tmp_path / "tiny_bs2.emu.onnx")
    emulated = cli("quantize", tmp_path / "tiny_bs2.emu.onnx", "--calibration", folders["float"])
    assert emulated.exit_code == 1 and "tiny_bs2.emu.onnx is an emulated artifact" in emulated.stderr
    graph = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)], "u8",
                              [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 40, 40, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 40, 40, 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "u8.onnx"))
    uint8 = cli("quantize", tmp_path / "u8.onnx", "--calibration", folders["aipp"])
    assert uint8.exit_code == 1 and "u8.onnx takes uint8 input" in uint8.stderr, uint8.stderr
    assert uint8.stderr.count("\n") == 1 and not list(tmp_path.glob("*.int8.onnx"))


def test_a_bad_calibration_file_past_the_range_checks_eight_stops_atc_before_any_artifact(tmp_path, folders):
    import shutil

    path, _ = tiny_classifier(tmp_path)
    folder = tmp_path / "calib"
    shutil.copytree(folders["aipp"], folder)
    (folder / "img11.bin").write_bytes(b"\0" * 10)  # the range check reads the first 8, INT8 all 12
    with pytest.raises(InferKitError, match="1 of 12 calibration file"):
        compile_om(path, soc="Ascend910A", batch_sizes=[2], emulate=True, precision_mode="force_fp16,int8",
                   calibration=folder, output=tmp_path / "out" / "tiny")
    written = {p.name for p in (tmp_path / "out").iterdir()} if (tmp_path / "out").exists() else set()
    assert not [name for name in written if name.startswith("tiny_")], written  # no artifact, no .atc.sh
