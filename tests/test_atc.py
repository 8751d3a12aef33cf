"""``compile_om`` / ``infer-kit atc``: the recipe's argv, the emulated artifacts, the real-ATC path (fake atc)."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from test_aipp_parse import RESNET50_AIPPCONFIG
from test_atc_support import TINY_SPEC, atc_calls, install_fake_atc, tiny_classifier

from infer_kit.aipp.parse import AippConfigError
from infer_kit.aipp.reference import emulate_aipp
from infer_kit.artifacts import describe_model, read_artifact_manifest
from infer_kit.converter import compile_om
from infer_kit.converter.atc_command import atc_argv, check_soc, output_bases, render_command
from infer_kit.converter.atc_process import explain_atc_failure
from infer_kit.errors import BackendUnavailable, InferKitError
from infer_kit.registry import get_model

# Reference 2.1: the ModelZoo ResNet-50 recipe's command (line continuation removed).
RECIPE = ('atc --model=resnet50_official.onnx --framework=5 --output=resnet50_bs64 --input_format=NCHW '
          '--input_shape="actual_input_1:64,3,224,224" --enable_small_channel=1 --log=error '
          '--soc_version=Ascend${chip_name} --insert_op_conf=aipp_resnet50.aippconfig')


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _ = tiny_classifier(tmp_path_factory.mktemp("tiny"))
    return path


@pytest.fixture
def model(tmp_path: Path, tiny_model: Path) -> Path:
    target = tmp_path / "work" / "tiny.onnx"
    target.parent.mkdir()
    shutil.copyfile(tiny_model, target)
    return target


def test_argv_equals_the_recipe_token_for_token():
    expected = shlex.split(RECIPE.replace("${chip_name}", "310P3"))
    argv = atc_argv(model="resnet50_official.onnx", output="resnet50_bs64", input_name="actual_input_1", batch=64,
                    chw=(3, 224, 224), soc="Ascend310P3", aipp_config="aipp_resnet50.aippconfig")
    assert argv == expected
    assert render_command(argv) == RECIPE.replace("${chip_name}", "310P3")
    assert shlex.split(render_command(argv)) == argv


def test_compile_om_builds_the_recipe_argv(tmp_path):
    path, _ = tiny_classifier(tmp_path, spec=get_model("resnet50").spec, name="resnet50_official")
    (tmp_path / "aipp_resnet50.aippconfig").write_text(RESNET50_AIPPCONFIG)
    [artifact] = compile_om(path, soc="Ascend310P3", batch_sizes=[64], aipp=str(tmp_path / "aipp_resnet50.aippconfig"),
                            output=tmp_path / "resnet50_bs64", emulate=True)
    assert artifact.argv == shlex.split(RECIPE.replace("${chip_name}", "310P3"))
    assert artifact.inputs[0].shape == (64, 256, 256, 3) and artifact.inputs[0].dtype == "uint8"
    script = artifact.paths.atc_script.read_text()
    assert RECIPE.replace("${chip_name}", "310P3") in script and 'cd "$(dirname "$0")"' in script
    assert artifact.paths.atc_script.stat().st_mode & 0o111


def test_argv_variants():
    argv = atc_argv(model="m.onnx", output="m_bs1", input_name="x", batch=1, chw=(3, 32, 32), soc="Ascend910A",
                    precision_mode="allow_mix_precision")
    assert "--enable_small_channel=1" not in argv and not any(a.startswith("--insert_op_conf") for a in argv)
    assert argv[-1] == "--precision_mode=allow_mix_precision" and argv[-2] == "--soc_version=Ascend910A"
    spaced = render_command(atc_argv(model="my models/m.onnx", output="o", input_name="x", batch=2,
                                     chw=(3, 8, 8), soc="Ascend910A"))
    assert "'--model=my models/m.onnx'" in spaced and shlex.split(spaced)[1] == "--model=my models/m.onnx"


def test_soc_and_batch_checks():
    assert check_soc("Ascend910B3") == "Ascend910B3"
    with pytest.raises(InferKitError, match=r"Value Ascend91OA for parameter --soc_version is invalid: did you mean "
                                            r"Ascend910A"):
        check_soc("Ascend91OA")
    with pytest.raises(InferKitError, match="npu-smi"):
        check_soc("gpu")


def test_output_names(tmp_path):
    model = tmp_path / "d" / "resnet50.onnx"
    assert output_bases(model, None, [1, 64]) == [tmp_path / "d" / "resnet50_bs1", tmp_path / "d" / "resnet50_bs64"]
    assert output_bases(model, tmp_path / "out" / "r50", [64]) == [tmp_path / "out" / "r50"]
    assert output_bases(model, tmp_path / "r50.om", [8]) == [tmp_path / "r50"]
    assert output_bases(model, tmp_path / "r", [1, 8])[1] == tmp_path / "r_bs8"
    assert output_bases(model, tmp_path / "r{batch}x", [1, 8])[1] == tmp_path / "r8x"


def test_emulated_artifacts_are_static_batch_aipp_models_that_onnxruntime_runs(model):
    artifacts = compile_om(model, soc="Ascend910A", batch_sizes=[1, 4], emulate=True,
                           precision_mode="must_keep_origin_dtype")
    assert [a.batch for a in artifacts] == [1, 4]
    for artifact in artifacts:
        assert artifact.kind == "emulated-om" and artifact.model_file == artifact.paths.emulated
        assert artifact.model_file.name == f"tiny_bs{artifact.batch}.emu.onnx"
        assert not artifact.paths.om.exists()
        described = describe_model(artifact.model_file)
        assert (described.kind, described.layout, described.batch, described.spec) == (
            "emulated-om", "aipp", artifact.batch, TINY_SPEC)
        assert described.inputs[0].to_dict() == {"name": "actual_input_1", "shape": [artifact.batch, 40, 40, 3],
                                                  "dtype": "uint8", "format": "NHWC"}
        assert described.outputs[0].shape == (artifact.batch, 10) and described.outputs[0].dtype == "float32"
        assert described.expected_sample() == ("uint8", (40, 40, 3), 4800)
        proto = onnx.load(str(artifact.model_file))
        dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
        assert dims == [artifact.batch, 40, 40, 3]  # static, although the source batch is dynamic
    manifest = read_artifact_manifest(artifacts[1].paths.manifest)
    assert manifest["model_file"] == "tiny_bs4.emu.onnx" and manifest["soc"] == "Ascend910A"
    assert manifest["source_onnx"] == "tiny.onnx" and len(manifest["source_onnx_sha256"]) == 64
    assert manifest["aipp_config"].startswith("# AIPP config generated by infer-kit")
    config_file = model.parent / manifest["aipp_config_file"]
    assert config_file.read_text() == manifest["aipp_config"]
    assert f"--insert_op_conf={config_file.name}" in manifest["atc_argv"]
    assert manifest["atc_argv"][5] == "--input_shape=actual_input_1:4,3,32,32"
    # what the artifact computes: AIPP (float16) then the float32 model
    images = np.random.default_rng(0).integers(0, 256, (4, 40, 40, 3), dtype=np.uint8)
    session = ort.InferenceSession(str(artifacts[1].model_file), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"actual_input_1": images})[0]
    from infer_kit.aipp.generate import generate_op

    features = emulate_aipp(generate_op(TINY_SPEC), images).astype(np.float32)
    plain = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    expected = plain.run(None, {"actual_input_1": features})[0]
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_precision_modes_are_emulated(model):
    from onnx import numpy_helper

    from infer_kit.converter.rounding import round_bf16, round_fp16

    images = np.random.default_rng(1).integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    modes = ["force_fp16", "allow_fp32_to_fp16", "allow_fp32_to_bf16", "must_keep_origin_dtype"]
    artifacts = compile_om(model, soc="Ascend910B3", batch_sizes=[2], emulate=True, precision_mode=modes,
                           output=model.parent / "p")
    assert [a.model_file.name for a in artifacts] == [f"p_{mode}.emu.onnx" for mode in modes]  # no collision
    outputs = {}
    for mode, artifact in zip(modes, artifacts, strict=True):
        assert artifact.precision_mode == mode
        proto = onnx.load(str(artifact.model_file))
        weights = [numpy_helper.to_array(i) for i in proto.graph.initializer if i.dims and i.dims[0] > 4]
        rounder = {"force_fp16": round_fp16, "allow_fp32_to_fp16": round_fp16, "allow_fp32_to_bf16": round_bf16}
        if mode in rounder:  # weights rounded once, kept as float32 values for ONNX Runtime's float32 kernels
            assert all(np.array_equal(w, rounder[mode](w)) for w in weights)
            assert artifact.emulation["report"]["weights_rounded"] >= 3
            assert artifact.range_check["format"] == ("bf16" if "bf16" in mode else "fp16")
            assert "random image(s)" in artifact.range_check["summary"]  # no calibration folder: says so
        else:
            assert artifact.range_check is None and artifact.emulation["format"] is None
        manifest = read_artifact_manifest(artifact.paths.manifest)
        assert manifest["precision_emulation"] == artifact.emulation and manifest["precision_mode"] == mode
        session = ort.InferenceSession(str(artifact.model_file), providers=["CPUExecutionProvider"])
        outputs[mode] = session.run(None, {"actual_input_1": images})[0]
        assert outputs[mode].dtype == np.float32
    reference = outputs["must_keep_origin_dtype"]
    for mode in ("force_fp16", "allow_fp32_to_fp16", "allow_fp32_to_bf16"):
        assert not np.array_equal(outputs[mode], reference)  # the rounding really happens
        np.testing.assert_allclose(outputs[mode], reference, atol=0.03 * np.abs(reference).max())
    assert "--precision_mode=allow_fp32_to_bf16" in artifacts[2].argv
    with pytest.raises(InferKitError, match="cannot emulate it"):
        compile_om(model, soc="Ascend910A", batch_sizes=[1], emulate=True, precision_mode="cube_hif8")
    with pytest.raises(InferKitError, match="Value fp8 for parameter --precision_mode is invalid"):
        compile_om(model, soc="Ascend910A", batch_sizes=[1], emulate=True, precision_mode="fp8")


def test_without_aipp_the_artifact_takes_float_chw(model):
    [artifact] = compile_om(model, soc="Ascend910A", batch_sizes=[3], aipp="none", emulate=True)
    described = describe_model(artifact.paths.manifest)
    assert described.layout == "float" and described.manifest["aipp_config"] is None
    assert described.inputs[0].shape == (3, 3, 32, 32) and described.inputs[0].dtype == "float32"
    assert "--insert_op_conf" not in " ".join(artifact.argv)
    session = ort.InferenceSession(str(artifact.model_file), providers=["CPUExecutionProvider"])
    assert session.run(None, {"actual_input_1": np.zeros((3, 3, 32, 32), np.float32)})[0].shape == (3, 10)


def test_up_to_date_artifacts_are_reused_and_force_rebuilds(model):
    [first] = compile_om(model, soc="Ascend910A", batch_sizes=[2], emulate=True)
    stamp = first.model_file.stat().st_mtime_ns
    [again] = compile_om(model, soc="Ascend910A", batch_sizes=[2], emulate=True)
    assert again.reused and again.model_file.stat().st_mtime_ns == stamp
    [other_soc] = compile_om(model, soc="Ascend310P3", batch_sizes=[2], emulate=True)
    assert not other_soc.reused
    [forced] = compile_om(model, soc="Ascend310P3", batch_sizes=[2], emulate=True, force=True)
    assert not forced.reused
    first.model_file.unlink()
    [rebuilt] = compile_om(model, soc="Ascend310P3", batch_sizes=[2], emulate=True)
    assert not rebuilt.reused and rebuilt.model_file.is_file()


def test_bad_inputs_are_refused_before_anything_is_written(model, tmp_path):
    bad = tmp_path / "bad.cfg"
    bad.write_text("aipp_op {\n aipp_mode: static\n input_format: RGB888_U8\n src_image_size_w: 40\n"
                   " src_image_size_h: 40\n crop: true\n crop_size_w: 30\n crop_size_h: 30\n}\n")
    with pytest.raises(AippConfigError, match=r"bad.cfg:7: E81012 Compile op\[aipp\] failed, cause: when crop is "
                                              r"enable.*crop_size_w\[30\] should be equal to output W\[32\]"):
        compile_om(model, soc="Ascend910A", batch_sizes=[1], aipp=str(bad), emulate=True)
    assert not list(model.parent.glob("*.emu.onnx")) and not list(model.parent.glob("*.manifest.json"))
    old = onnx.load(str(model))
    old.opset_import[0].version = 10
    onnx.save(old, str(tmp_path / "old.onnx"))
    with pytest.raises(InferKitError, match="uses ai.onnx opset 10; ATC supports opsets 11-18: re-export"):
        compile_om(tmp_path / "old.onnx", soc="Ascend910A", batch_sizes=[1], emulate=True)
    del old.metadata_props[:]
    old.opset_import[0].version = 11
    onnx.save(old, str(tmp_path / "foreign.onnx"))
    with pytest.raises(InferKitError, match="carries no preprocessing spec"):
        compile_om(tmp_path / "foreign.onnx", soc="Ascend910A", batch_sizes=[1], emulate=True)
    [artifact] = compile_om(tmp_path / "foreign.onnx", soc="Ascend910A", batch_sizes=[1], emulate=True,
                            spec=TINY_SPEC)
    assert describe_model(artifact.model_file).spec == TINY_SPEC
    with pytest.raises(InferKitError, match="batch size must be a positive integer"):
        compile_om(model, soc="Ascend910A", batch_sizes=[0], emulate=True)


def test_a_model_with_a_baked_batch_is_refused(tmp_path):
    path, _ = tiny_classifier(tmp_path, batch=2)
    [artifact] = compile_om(path, soc="Ascend910A", batch_sizes=[4], emulate=True)
    session = ort.InferenceSession(str(artifact.model_file), providers=["CPUExecutionProvider"])
    assert session.run(None, {"actual_input_1": np.zeros((4, 40, 40, 3), np.uint8)})[0].shape == (4, 10)
    baked = onnx.load(str(path))
    shape = onnx.helper.make_tensor("baked_shape", onnx.TensorProto.INT64, [2], [2, 16])
    baked.graph.initializer.append(shape)
    flatten = next(n for n in baked.graph.node if n.op_type == "Flatten")
    reshape = onnx.helper.make_node("Reshape", [flatten.input[0], "baked_shape"], list(flatten.output))
    index = list(baked.graph.node).index(flatten)
    baked.graph.node.remove(flatten)
    baked.graph.node.insert(index, reshape)
    onnx.save(baked, str(tmp_path / "baked.onnx"))
    with pytest.raises(InferKitError, match="cannot be compiled at batch 4.*re-export the model with a dynamic batch"):
        compile_om(tmp_path / "baked.onnx", soc="Ascend910A", batch_sizes=[4], emulate=True)


def test_real_atc_is_run_when_on_path(model, tmp_path, monkeypatch):
    calls = install_fake_atc(tmp_path, monkeypatch)
    artifacts = compile_om(model, soc="Ascend910B3", batch_sizes=[1, 8], precision_mode="allow_fp32_to_bf16")
    recorded = atc_calls(calls)
    assert [c["argv"][1:] for c in recorded] == [a.argv[1:] for a in artifacts]
    assert all(Path(c["cwd"]) == model.parent for c in recorded)
    assert recorded[1]["argv"][-1] == "--precision_mode=allow_fp32_to_bf16"  # passed through, never emulated
    for artifact in artifacts:
        assert artifact.kind == "om" and artifact.model_file == artifact.paths.om
        assert not artifact.paths.emulated.exists()
        described = describe_model(artifact.paths.om)
        assert described.kind == "om" and described.layout == "aipp" and described.batch == artifact.batch
        assert described.inputs[0].shape == (artifact.batch, 40, 40, 3)
    [emulated] = compile_om(model, soc="Ascend310P3", batch_sizes=[2], emulate=True)
    assert emulated.kind == "emulated-om" and len(atc_calls(calls)) == 2  # --emulate never calls atc


def test_real_atc_om_name_with_os_and_arch(model, tmp_path, monkeypatch):
    install_fake_atc(tmp_path, monkeypatch, "suffix")
    [artifact] = compile_om(model, soc="Ascend910B3", batch_sizes=[16])
    assert artifact.model_file.name == "tiny_bs16_linux_x86_64.om"
    assert describe_model(artifact.paths.manifest).path == artifact.model_file


@pytest.mark.parametrize(("mode", "fragment"), [
    ("fail", "ATC run failed for tiny_bs1 with E10052 (the AIPP configuration is invalid): AIPP configuration is "
             "invalid. Reason: crop_size_w[300] should be equal to output W[224]: run 'infer-kit aipp check"),
    ("fail-exit0", "with E10052"),
    ("crash", "ATC run failed for tiny_bs1 (exit status 139) without an error code"),
    ("no-om", "ATC reported success but wrote no tiny_bs1.om"),
])
def test_real_atc_failures_are_one_line(model, tmp_path, monkeypatch, mode, fragment):
    install_fake_atc(tmp_path, monkeypatch, mode)
    with pytest.raises(InferKitError) as info:
        compile_om(model, soc="Ascend910A", batch_sizes=[1])
    message = info.value.one_line()
    assert fragment in message and "\n" not in message
    assert not (model.parent / "tiny_bs1.manifest.json").exists()


def test_explain_atc_failure_knows_the_codes():
    text = ("ATC start working now, please wait for a moment.\nATC run failed, Please check the detail log, Try "
            "'atc --help' for more information\nE19010: No parser is registered for Op [/Foo, optype "
            "[ai.onnx::11::Foo]].\n")
    message = explain_atc_failure(text, 255, "m_bs1").one_line()
    assert message == ("ATC run failed for m_bs1 with E19010 (no parser is registered for an ONNX operator "
                       "(unsupported op or opset)): No parser is registered for Op [/Foo, optype [ai.onnx::11::Foo]]: "
                       "re-export with opset_version=11, or replace the operator")


def test_forcing_real_atc_without_cann(model, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BackendUnavailable, match="atc is not on PATH"):
        compile_om(model, soc="Ascend910A", batch_sizes=[1], emulate=False)


def test_cli(model, cli):
    result = cli("atc", "--model", model, "--soc", "Ascend910A", "--batch", "1,2", "--batch", "2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("emulated OM") == 2 and "run the .atc.sh script(s)" in result.stdout
    assert '--input_shape="actual_input_1:2,3,32,32"' in result.stdout
    result = cli("atc", "-m", model, "--soc", "Ascend910A", "-b", "2", "--json")
    [row] = json.loads(result.stdout)
    assert row["reused"] and row["inputs"][0]["shape"] == [2, 40, 40, 3]
    bad = cli("atc", "-m", model, "--soc", "Ascend999", "-b", "1")
    assert bad.exit_code == 1 and bad.stderr.startswith("infer-kit: error: Value Ascend999 for parameter --soc_version")
    zero = cli("atc", "-m", model, "--soc", "Ascend910A", "-b", "0")
    assert zero.exit_code == 1 and zero.stderr.startswith("infer-kit: error: infer-kit atc: Invalid value for")
    missing = cli("atc", "-m", model.parent / "nope.onnx", "--soc", "Ascend910A", "-b", "1")
    assert missing.exit_code == 1 and "ONNX model not found" in missing.stderr
    preset = cli("atc", "-m", model, "--soc", "Ascend910A", "-b", "1", "--resize", "36", "-o", model.parent / "r36")
    assert preset.exit_code == 0 and "uint8[1x36x36x3]" in preset.stdout


def test_manifest_spec_follows_the_configs_source_size(model, tmp_path):
    whole = tmp_path / "whole.cfg"
    whole.write_text("aipp_op {\n aipp_mode: static\n input_format: RGB888_U8\n src_image_size_w: 32\n"
                     " src_image_size_h: 32\n min_chn_0: 123.675\n}\n")
    [artifact] = compile_om(model, soc="Ascend910A", batch_sizes=[1], aipp=str(whole), emulate=True)
    described = describe_model(artifact.model_file)
    # a source of the crop's size without an AIPP crop reads the centre crop itself (the Inception configs' way):
    # preprocess --for writes the 32x32 crop of the 40-pixel resize, the float layout's very pixels
    assert described.spec == TINY_SPEC.with_overrides(aipp_geometry="crop")
    assert described.expected_sample() == ("uint8", (32, 32, 3), 3072) and described.inputs[0].shape == (1, 32, 32, 3)
    yuv = tmp_path / "yuv.cfg"
    yuv.write_text("aipp_op {\n aipp_mode: static\n input_format: YUV420SP_U8\n src_image_size_w: 40\n"
                   " src_image_size_h: 40\n crop: true\n load_start_pos_w: 4\n load_start_pos_h: 4\n"
                   " crop_size_w: 32\n crop_size_h: 32\n csc_switch: true\n matrix_r0c0: 256\n}\n")
    [artifact] = compile_om(model, soc="Ascend910A", batch_sizes=[1], aipp=str(yuv), emulate=True,
                            output=tmp_path / "yuv")
    described = describe_model(artifact.model_file)
    assert described.spec == TINY_SPEC and described.inputs[0].shape == (1, 60, 40, 1)


def test_a_spec_that_disagrees_with_the_model_input_is_refused(model):
    with pytest.raises(InferKitError, match=r"generated from tiny.onnx's spec \(resize 56 -> crop 48.*does not fit "
                                            r"its input 32x32: E81012 .*crop_size_w\[48\] should be equal to output "
                                            r"W\[32\].*: the spec must crop 32"):
        compile_om(model, soc="Ascend910A", batch_sizes=[1], emulate=True, spec=TINY_SPEC.with_overrides(resize=56,
                                                                                                       crop=48))
    assert not (model.parent / "aipp_tiny.aippconfig").exists()
