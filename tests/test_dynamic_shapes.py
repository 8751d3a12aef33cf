"""Dynamic shapes end to end: atc writes ATC's argv and an artifact that takes exactly the compiled gears.

Compile side: every gear option, ATC's error codes for what ATC refuses, the profile in the
manifest. Run side: ais_bench's --dymBatch/--dymHW/--dymDims/--dymShape, the auto modes and
--dymShape_range against those artifacts, a gear not compiled refused with ais_bench's words, and
outputs equal to a static artifact's at the same shape. Dynamic AIPP: fed per run, equal to static.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_atc_support import tiny_classifier

from infer_kit.aipp import read_ais_aipp_config
from infer_kit.artifacts import read_artifact_manifest
from infer_kit.converter import DynamicRequest, compile_om
from infer_kit.errors import InferKitError
from infer_kit.postprocess import evaluate
from infer_kit.preprocess import preprocess
from infer_kit.runtime import expand_shape_range, run

RUN_AIPP = """[aipp_op]
    input_format : RGB888_U8
    src_image_size_w : 40
    src_image_size_h : 40
    crop : 1
    load_start_pos_h : 4
    load_start_pos_w : 4
    crop_size_w : 32
    crop_size_h : 32
    min_chn_0 : 123.675
    min_chn_1 : 116.28
    min_chn_2 : 103.53
    var_reci_chn_0 : 0.0171247538316637
    var_reci_chn_1 : 0.0175070028011204
    var_reci_chn_2 : 0.0174291938997821
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """tiny.onnx (spec 40 -> 32), its static bs4 artifact and a folder of its inputs."""
    folder = tmp_path_factory.mktemp("dyn")
    model, _ = tiny_classifier(folder)
    [static] = compile_om(model, soc="Ascend910A", batch_sizes=[4], emulate=True)
    rng = np.random.default_rng(0)
    prep = folder / "prep"
    prep.mkdir()
    for i in range(6):
        rng.integers(0, 256, (40, 40, 3), dtype=np.uint8).tofile(prep / f"img_{i}.bin")
    return folder, model, static


def _compile(model, **dynamic):
    batches = dynamic.pop("batch_sizes", ())
    aipp = dynamic.pop("aipp", "auto")
    [artifact] = compile_om(model, soc="Ascend910A", batch_sizes=batches, emulate=True, aipp=aipp,
                            dynamic=DynamicRequest(**dynamic), force=True)
    return artifact


def test_dynamic_batch_writes_atcs_argv_and_the_gears(work):
    _, model, _ = work
    artifact = _compile(model, dynamic_batch_size="1,2,4,8")
    assert artifact.batch is None and artifact.paths.base.name == "tiny_dynbs"
    assert "--input_shape=actual_input_1:-1,3,32,32" in artifact.argv
    assert artifact.argv[artifact.argv.index("--input_shape=actual_input_1:-1,3,32,32") + 1] == \
        "--dynamic_batch_size=1,2,4,8"
    assert '--dynamic_batch_size="1,2,4,8"' in artifact.command
    manifest = read_artifact_manifest(artifact.paths.manifest)
    assert manifest["dynamic"] == {"kind": "batch", "input_shapes": {"actual_input_1": [-1, 40, 40, 3]},
                                   "gears": [[1], [2], [4], [8]]}
    assert manifest["inputs"][0]["shape"] == [None, 40, 40, 3]


def test_a_compiled_batch_gear_runs_like_the_static_model_and_others_are_refused(work, tmp_path):
    folder, model, static = work
    artifact = _compile(model, dynamic_batch_size="1,2,4,8")
    want = run(static.paths.emulated, folder / "prep", tmp_path, output_dirname="static", warmup_count=0)
    got = run(artifact.paths.emulated, folder / "prep", tmp_path, output_dirname="dyn", dym_batch=4, warmup_count=0)
    assert {p.name: p.read_bytes() for p in got.result_dir.iterdir()} == \
        {p.name: p.read_bytes() for p in want.result_dir.iterdir()}
    assert got.summary["infer_kit"]["batches"] == 2 and got.summary["infer_kit"]["throughput_batchsize"] == 4
    labels = tmp_path / "val_label.txt"
    labels.write_text("".join(f"img_{i}.JPEG {i % 10}\n" for i in range(6)))
    scored = evaluate(got.result_dir, labels, output=tmp_path / "dyn.json")  # the BIN layout from the summary
    assert scored.images == 6 and scored.result_path.read_text() == \
        evaluate(want.result_dir, labels, output=tmp_path / "static.json").result_path.read_text()
    with pytest.raises(InferKitError, match=r"the dymBatch parameter is not correct: model has dynamic batch "
                                            r"size:\{\[1\]\[2\]\[4\]\[8\]\}, please set correct dynamic batch size"):
        run(artifact.paths.emulated, folder / "prep", dym_batch=3)
    with pytest.raises(InferKitError, match="dynamic batch om model detected, but dymbatch, dymdims or dymshape "
                                            "not set!"):
        run(artifact.paths.emulated, folder / "prep")
    with pytest.raises(InferKitError, match="the dynamic_batch_size parameter is not specified for model conversion"):
        run(static.paths.emulated, folder / "prep", dym_batch=2)


def test_dynamic_image_size_aipp_takes_each_gears_whole_image(work, tmp_path, photo_dir):
    folder, model, _ = work
    artifact = _compile(model, dynamic_image_size="32,32;40,40", batch_sizes=[2])
    assert artifact.paths.base.name == "tiny_bs2_dynhw"
    assert "--input_shape=actual_input_1:2,3,-1,-1" in artifact.argv
    config = Path(artifact.aipp_config).read_text()
    assert "src_image_size_w : 0" in config and "crop" not in config.split("aipp_op")[1]
    manifest = read_artifact_manifest(artifact.paths.manifest)
    assert manifest["spec"]["aipp_geometry"] == "crop" and manifest["inputs"][0]["shape"] == [2, None, None, 3]
    prep = preprocess(photo_dir, tmp_path / "prep32", target=artifact.paths.manifest).dst
    assert json.loads((prep / "manifest.json").read_text())["shape"] == [32, 32, 3]  # the crop itself
    result = run(artifact.paths.emulated, prep, tmp_path, output_dirname="g32", dym_hw="32,32", warmup_count=0)
    # the same pixels through a static artifact whose AIPP reads the 32x32 crop (same normalisation)
    static = compile_om(model, soc="Ascend910A", batch_sizes=[2], emulate=True, output=tmp_path / "crop_bs2",
                        spec=_spec(model).with_overrides(aipp_geometry="crop"))[0]
    want = run(static.paths.emulated, prep, tmp_path, output_dirname="s32", warmup_count=0)
    assert {p.name: p.read_bytes() for p in result.result_dir.iterdir()} == \
        {p.name: p.read_bytes() for p in want.result_dir.iterdir()}
    with pytest.raises(InferKitError, match="holds aipp tensors .* expects aipp tensors .*40x40x3"):
        run(artifact.paths.emulated, prep, dym_hw="40,40")
    with pytest.raises(InferKitError, match=r"the dymHW parameter is not correct: model has dynamic image size "
                                            r"\[32,32\]\[40,40\]"):
        run(artifact.paths.emulated, prep, dym_hw="36,36")
    largest = run(artifact.paths.emulated, None, dym_hw=None)
    assert largest.summary["infer_kit"]["dynamic"] == "largest gear 40,40 (no --dymHW)"


def _spec(model):
    from infer_kit.metadata import read_model_info

    return read_model_info(model).spec


def test_dynamic_dims_and_shape_ranges(work):
    _, model, _ = work
    dims = _compile(model, aipp="none", input_shape="actual_input_1:-1,3,-1,-1", dynamic_dims="1,32,32;2,40,40")
    assert "--input_format=ND" in dims.argv and "--dynamic_dims=1,32,32;2,40,40" in dims.argv
    ok = run(dims.paths.emulated, None, dym_dims="actual_input_1:2,3,40,40")
    assert ok.summary["infer_kit"]["throughput_batchsize"] == 2
    with pytest.raises(InferKitError, match=r"model has 2 gear of dims dims\[0\]:\[1\]\[3\]\[32\]\[32\] "
                                            r"dims\[1\]:\[2\]\[3\]\[40\]\[40\]"):
        run(dims.paths.emulated, None, dym_dims="actual_input_1:2,3,32,40")
    ranged = _compile(model, aipp="none", input_shape="actual_input_1:1~4,3,32~40,32~40")
    assert ranged.paths.base.name == "tiny_dynshape"
    assert "--input_shape=actual_input_1:1~4,3,32~40,32~40" in ranged.argv
    assert run(ranged.paths.emulated, None, dym_shape="actual_input_1:3,3,33,35").summary["throughput"] > 0
    with pytest.raises(InferKitError, match="is outside the compiled range actual_input_1:\\[1~4,3,32~40,32~40\\]"):
        run(ranged.paths.emulated, None, dym_shape="actual_input_1:5,3,33,35")
    with pytest.raises(InferKitError, match="om model has 1 input, but dymShape parametet give 2"):
        run(ranged.paths.emulated, None, dym_shape="actual_input_1:1,3,32,32;x:1")
    legacy = _compile(model, aipp="none", input_shape_range="actual_input_1:[1~4,3,32,32]")
    assert "--input_shape_range=actual_input_1:[1~4,3,32,32]" in legacy.argv


@pytest.mark.parametrize("request_, code", [
    ({"dynamic_batch_size": "1,2", "dynamic_image_size": "32,32;40,40"}, "E10009"),
    ({"dynamic_batch_size": "4"}, "E10035"),
    ({"dynamic_batch_size": "1,2,2"}, "E10039"),
    ({"dynamic_batch_size": "0,2"}, "E10038"),
    ({"dynamic_batch_size": "1;2"}, "E10003"),
    ({"dynamic_batch_size": ",".join(str(i) for i in range(1, 102))}, "E10036"),
    ({"dynamic_batch_size": "1,2", "input_shape": "actual_input_1:1,3,32,32"}, "E10031"),
    ({"dynamic_batch_size": "1,2", "input_shape": "actual_input_1:-1,3,-1,32"}, "E10018"),
    ({"dynamic_batch_size": "1,2", "input_shape": "actual_input_1:1~2,3,32,32"}, "E10040"),
    ({"dynamic_image_size": "32,32;40", "batch_sizes": [1]}, "E10020"),
    ({"dynamic_image_size": "32,32;40,40", "input_shape": "actual_input_1:-1,3,-1,-1"}, "E10019"),
    ({"dynamic_dims": "1,2;3,4", "aipp": "none"}, "E10004"),
    ({"dynamic_dims": "1,2;3,4", "input_shape": "actual_input_1:-1,3,-1,-1", "aipp": "none"}, "E10003"),
    ({"dynamic_dims": "1,32,32;2,40,40", "input_shape": "actual_input_1:-1,3,-1,-1"}, "E10001"),
])
def test_atcs_refusals_are_named_with_its_code(work, request_, code):
    _, model, _ = work
    with pytest.raises(InferKitError, match=f"ATC would refuse this with {code}: "):
        _compile(model, **dict(request_))


def test_static_aipp_with_crop_on_a_dynamic_image_size_is_e10052(work, tmp_path):
    _, model, _ = work
    config = tmp_path / "crop.cfg"
    config.write_text("aipp_op {\n aipp_mode: static\n input_format: RGB888_U8\n src_image_size_w: 40\n"
                      " src_image_size_h: 40\n crop: true\n load_start_pos_w: 4\n load_start_pos_h: 4\n"
                      " crop_size_w: 32\n crop_size_h: 32\n}\n")
    with pytest.raises(InferKitError, match="E10052: AIPP configuration is invalid. Reason: When "
                                            "--dynamic_image_size is set, crop and padding cannot be set"):
        _compile(model, dynamic_image_size="32,32;40,40", batch_sizes=[1], aipp=str(config))


def test_auto_modes_run_each_npy_at_its_shape(work, tmp_path):
    _, model, _ = work
    ranged = _compile(model, aipp="none", input_shape="actual_input_1:1~4,3,32~40,32~40")
    dims = _compile(model, aipp="none", input_shape="actual_input_1:-1,3,-1,-1", dynamic_dims="1,32,32;2,40,40")
    rng = np.random.default_rng(1)
    files = tmp_path / "npy"
    files.mkdir()
    for i, (n, side) in enumerate([(1, 32), (2, 40), (3, 36)]):
        np.save(files / f"s{i}.npy", rng.standard_normal((n, 3, side, side)).astype(np.float32))
    result = run(ranged.paths.emulated, files, tmp_path, output_dirname="auto", outfmt="NPY",
                 auto_set_dymshape_mode=True, warmup_count=0)
    shapes = [np.load(tmp_path / "auto" / f"s{i}_0.npy").shape for i in range(3)]
    assert shapes == [(1, 10), (2, 10), (3, 10)]
    assert result.summary["infer_kit"]["throughput_batchsize"] == 2.0  # the mean of the files' dim 0
    with pytest.raises(InferKitError, match="s2.npy has shape actual_input_1:3,3,36,36, which is not one of the "
                                            "model's 2 gears"):
        run(dims.paths.emulated, files, auto_set_dymdims_mode=True)
    (files / "raw.bin").write_bytes(b"0" * 12)
    with pytest.raises(InferKitError, match="raw.bin is not a .npy file"):
        run(ranged.paths.emulated, files, auto_set_dymshape_mode=True)


def test_shape_range_expansion_is_ais_benchs():
    assert expand_shape_range("x:1,3,224,224~226") == ["x:1,3,224,224", "x:1,3,224,225", "x:1,3,224,226"]
    both = expand_shape_range("a:1~4,3,224,224;b:1,300-600")
    assert len(both) == 8 and both[0] == "a:1,3,224,224;b:1,300" and both[-1] == "a:4,3,224,224;b:1,600"
    assert expand_shape_range("x:1~9~4") == ["x:1", "x:5", "x:9"]
    with pytest.raises(InferKitError, match="dym range string is not a legal format string"):
        expand_shape_range("x:0~4")


def test_a_shape_range_file_that_is_not_text_is_one_line(tmp_path):
    info = tmp_path / "ranges.info"
    info.write_bytes(b"\xff\xfex:1~2")
    with pytest.raises(InferKitError, match="--dymShape_range file .*ranges.info is not UTF-8 text"):
        expand_shape_range(str(info))
    info.write_bytes(b"\xef\xbb\xbfx:1~2\n")  # a byte-order mark, as Windows editors write
    assert expand_shape_range(str(info)) == ["x:1", "x:2"]


@pytest.mark.parametrize("flag, message", [
    ("dym_hw", 'int count not match, legal format of dymHW string is "int,int"'),
    ("dym_dims", "--dymDims: dymshape range string's format is illegal"),
])
def test_an_empty_gear_flag_is_refused_not_taken_for_none(work, flag, message):
    """ais_bench acts on --dymHW/--dymDims/--dymShape when given at all: --dymHW "" (an unset shell variable)
    is refused, not run at the largest gear as if no flag were there."""
    _, model, _ = work
    artifact = _compile(model, dynamic_image_size="32,32;40,40", batch_sizes=[1])
    with pytest.raises(InferKitError, match=message):
        run(artifact.paths.emulated, None, **{flag: ""})


def test_a_shape_range_sweep_ranks_the_shapes(cli, work, tmp_path):
    _, model, _ = work
    ranged = _compile(model, aipp="none", input_shape="actual_input_1:1~4,3,32~40,32~40")
    result = cli("run", "-m", ranged.paths.emulated, "-o", tmp_path, "--output_dirname", "r", "--dymShape_range",
                 "actual_input_1:1~2,3,32-41,32")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "[INFO] -----------------dyshape_range Performance Summary------------------" in lines
    assert any(line.startswith("[INFO] run_count:4 success_count:2 avg_throughput:") for line in lines)
    assert sum("result:Failed throughput:0" in line for line in lines) == 2
    assert [p.name for p in (tmp_path / "r").iterdir()] == ["pure_infer_data_0.bin"]
    before = (tmp_path / "r" / "pure_infer_data_0.bin").read_bytes()
    again = cli("run", "-m", ranged.paths.emulated, "-o", tmp_path, "--output_dirname", "r", "--dymShape_range",
                "actual_input_1:1~2,3,32,32")  # into a used folder: refused, not its first shape only
    assert again.exit_code == 1 and "r already holds 1 file(s), and a --dymShape_range sweep" in again.stderr
    assert (tmp_path / "r" / "pure_infer_data_0.bin").read_bytes() == before


def test_dynamic_aipp_takes_its_parameters_per_run(work, tmp_path):
    folder, model, _ = work
    config = tmp_path / "dyn.cfg"
    config.write_text("aipp_op {\n  aipp_mode: dynamic\n  related_input_rank: 0\n  max_src_image_size: 19200\n}\n")
    artifact = compile_om(model, soc="Ascend910A", batch_sizes=[4], emulate=True, aipp=str(config),
                          output=tmp_path / "dynaipp")[0]
    manifest = read_artifact_manifest(artifact.paths.manifest)
    assert manifest["dynamic_aipp"]["max_src_image_size"] == 19200 and manifest["inputs"][0]["shape"] == [4, None,
                                                                                                          None, None]
    ini = tmp_path / "run.config"
    ini.write_text(RUN_AIPP)
    got = run(artifact.paths.emulated, folder / "prep", tmp_path, output_dirname="dyn", aipp_config=ini,
              warmup_count=0)
    static = compile_om(model, soc="Ascend910A", batch_sizes=[4], emulate=True, output=tmp_path / "static")[0]
    want = run(static.paths.emulated, folder / "prep", tmp_path, output_dirname="st", warmup_count=0)
    assert {p.name: p.read_bytes() for p in got.result_dir.iterdir()} == \
        {p.name: p.read_bytes() for p in want.result_dir.iterdir()}
    with pytest.raises(InferKitError, match="aipp model without aipp config!"):
        run(artifact.paths.emulated, folder / "prep")
    small = tmp_path / "small.config"
    small.write_text(RUN_AIPP.replace("crop_size_w : 32", "crop_size_w : 30"))
    with pytest.raises(InferKitError, match="its AIPP output is 32x30 but the model input is 32x32"):
        run(artifact.paths.emulated, folder / "prep", aipp_config=small)
    huge = tmp_path / "huge.config"
    huge.write_text(RUN_AIPP.replace("src_image_size_w : 40", "src_image_size_w : 80"))
    with pytest.raises(InferKitError, match="above the compiled max_src_image_size 19200"):
        run(artifact.paths.emulated, folder / "prep", aipp_config=huge)
    for model_file in (artifact.paths.emulated, static.paths.emulated):  # a typo is never ignored
        with pytest.raises(InferKitError, match="--aipp_config .*missing.config: no such file"):
            run(model_file, folder / "prep", tmp_path, output_dirname="typo", aipp_config=tmp_path / "missing.config")
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("text, message", [
    ("[aipp_op]\nsrc_image_size_w : 4\nsrc_image_size_h : 4\n", "can not find input_format in config file"),
    ("[aipp_op]\ninput_format : RGB888_U8\n", "can not find src_image_size in config file"),
    ("[aipp_op]\ninput_format : BGR\nsrc_image_size_w : 4\nsrc_image_size_h : 4\n", "input_format in config file "
                                                                                     "is illegal"),
    ("[aipp_op]\ninput_format : RGB888_U8\nsrc_image_size_w : 1\nsrc_image_size_h : 4\n", "src_image_size_w in "
                                                                                           "config file out of range"),
    ("[aipp_op]\ninput_format : RGB888_U8\nsrc_image_size_w : 4\nsrc_image_size_h : 4\ncrop : true\n",
     "get int type value from aipp config file failed, head name:aipp_op, key name:crop"),
    ("[aipp_op]\ninput_format : RGB888_U8\nsrc_image_size_w : 4\nsrc_image_size_h : 4\ncsc_switch : 1\n"
     "csc_switch : 0\n", "option 'csc_switch' given twice"),
    ("[aipp_op]\ninput_format : RGB888_U8\nsrc_image_size_w : 4\nsrc_image_size_h : 4\npadding : 1\n"
     "top_padding_size : 33\n", "padding_params in config file out of range"),
    ("[other]\ninput_format : RGB888_U8\n", "nums of section aipp_op in .config file is not supported"),
])
def test_ais_benchs_aipp_config_checks(tmp_path, text, message):
    path = tmp_path / "a.config"
    path.write_text(text)
    with pytest.raises(InferKitError, match=message):
        read_ais_aipp_config(path)


@pytest.mark.parametrize("data, message", [
    (b"[aipp_op]\ninput_format : RGB888_U8\xff\n", "--aipp_config .*a.config is not UTF-8 text"),
    (b"[aipp_op]\ninput_format : RGB888_U8\nsrc_image_size_w : 4\nsrc_image_size_h : 4\nmin_chn_0 : 10%\n",
     "get float type value from aipp config file failed, head name:aipp_op, key name:min_chn_0"),
])
def test_a_binary_or_percent_ais_aipp_config_is_one_line(tmp_path, data, message):
    path = tmp_path / "a.config"
    path.write_bytes(data)  # was a UnicodeDecodeError / configparser's InterpolationSyntaxError: "internal error"
    with pytest.raises(InferKitError, match=message):
        read_ais_aipp_config(path)


def test_ais_benchs_aipp_config_defaults_differ_from_atcs(tmp_path):
    path = tmp_path / "a.config"
    path.write_text("[aipp_op]\nINPUT_FORMAT = RGB888_U8\nsrc_image_size_w : 8\nsrc_image_size_h : 6\n"
                    "# a comment\nmin_chn_0 : 10.5\n")
    op = read_ais_aipp_config(path)
    assert op.var_reci() == (0.0, 0.0, 0.0, 0.0)  # a missing var_reci is 0, not ATC's 1.0
    assert op.min_chn()[0] == 10.5 and not op.get("crop") and op.get("src_image_size_h") == 6
    shutil.copy(path, tmp_path / "a.cfg")
    with pytest.raises(InferKitError, match="aipp config path:.*a.cfg is illegal"):
        read_ais_aipp_config(tmp_path / "a.cfg")


def test_debug_lists_the_gears(cli, work, tmp_path):
    _, model, _ = work
    artifact = _compile(model, dynamic_batch_size="1,2,4")
    result = cli("run", "-m", artifact.paths.emulated, "--dymBatch", "2", "--debug", "1")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[lines.index("[DEBUG] DynamicBatch:") + 1] == "1 2 4 "
    assert lines[lines.index("[DEBUG] the dims of 0 input:") + 1] == "-1 40 40 3 "
    assert "  #0    actual_input_1  (-1, 40, 40, 3)  uint8  19200  9600" in lines
