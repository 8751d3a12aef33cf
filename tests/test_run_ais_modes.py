"""ais_bench's other run modes on the emulation: --run_mode, --output_batchsize_axis, --pipeline/--threads,
--dump/--dump_npy, --profiler, --debug, and the ascend runner's dynamic shapes against the ais_bench test double."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from test_run_support import FAKE_AIS_BENCH, aipp_folder, emulated_artifact, float_folder, float_model, om_model

from infer_kit.errors import InferKitError
from infer_kit.runtime import run
from infer_kit.runtime.pipeline_mode import encode_cpp_txt, pipeline_output_name


@pytest.fixture
def setup(tmp_path):
    return emulated_artifact(tmp_path, batch=4), aipp_folder(tmp_path / "prep", 5)


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("mode", ["tensor", "full", "files"])
def test_run_modes_write_the_same_files(setup, tmp_path, mode):
    model, prep = setup
    base = run(model, prep, tmp_path / "o", output_dirname="array", warmup_count=0)
    other = run(model, prep, tmp_path / "o", output_dirname=mode, run_mode=mode, warmup_count=0)
    assert _files(other.result_dir) == _files(base.result_dir)
    assert other.summary["infer_kit"]["run_mode"] == mode


def test_files_mode_refuses_npy_and_pure_inference(tmp_path):
    model = float_model(tmp_path / "m.onnx", batch=1)
    prep = tmp_path / "npy"
    prep.mkdir()
    np.save(prep / "a.npy", np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(InferKitError, match="not support npy file:.*a.npy"):
        run(model, prep, run_mode="files")
    with pytest.raises(InferKitError, match="not support pure infer"):
        run(model, run_mode="files")


def test_output_batchsize_axis_cuts_outputs_along_that_axis(tmp_path):
    model = float_model(tmp_path / "m.onnx", batch=2)
    prep = float_folder(tmp_path / "prep", 4)
    with pytest.raises(InferKitError, match=r"error i:0 ndata.shape:\(2, 10\) len:2 <= output_batchsize_axis:2 is "
                                            "invalid"):
        run(model, prep, tmp_path, output_dirname="a2", output_batchsize_axis=2)
    assert not (tmp_path / "a2").exists()  # refused before any work: no folder, no run record
    cut = run(model, prep, tmp_path, output_dirname="a1", output_batchsize_axis=1, outfmt="NPY", warmup_count=0)
    whole = run(model, prep, tmp_path, output_dirname="a0", outfmt="NPY", warmup_count=0)
    first = np.concatenate([np.load(whole.result_dir / "img_0_0.npy"), np.load(whole.result_dir / "img_1_0.npy")])
    assert np.load(cut.result_dir / "img_0_0.npy").shape == (2, 5)
    assert np.array_equal(np.load(cut.result_dir / "img_0_0.npy"), first[:, :5])


def test_a_file_that_holds_a_fraction_of_a_sample_is_refused_before_any_work(setup, tmp_path):
    """A truncated file (100 bytes of a 300-byte sample) divides the 4-sample model input 12 times: 12 "files" per
    batch, which the (4, 10) output cannot be cut into. Said before the result folder is made, not after compute."""
    model, prep = setup
    small = tmp_path / "cut"
    small.mkdir()
    (small / "img_0.bin").write_bytes((prep / "img_0.bin").read_bytes()[:100])
    with pytest.raises(InferKitError, match=r"array shape:\(4, 10\) of output 0 does not split into 12 input files"):
        run(model, small, tmp_path / "o", output_dirname="r")
    assert not (tmp_path / "o").exists()
    assert run(model, small).summary["infer_kit"]["padded"] == 11  # without --output nothing is cut, as in ais_bench


def test_pipeline_runs_one_file_per_inference_with_the_cpp_writers(tmp_path):
    model = float_model(tmp_path / "m.onnx", batch=1)
    prep = float_folder(tmp_path / "prep", 5)
    (prep / "img_0.bin").rename(prep / "a.b.bin")  # the C++ path removes only the last extension
    single = run(model, prep, tmp_path, output_dirname="single", outfmt="TXT", warmup_count=0)
    piped = run(model, prep, tmp_path, output_dirname="piped", outfmt="TXT", pipeline=True, pipeline_threads=2,
                warmup_count=0)
    names = sorted(p.name for p in piped.result_dir.iterdir())
    assert names == ["a.b_0.txt", "img_1_0.txt", "img_2_0.txt", "img_3_0.txt", "img_4_0.txt"]
    ours = np.loadtxt(piped.result_dir / "img_1_0.txt", dtype=np.float32)
    normal = np.loadtxt(single.result_dir / "img_1_0.txt", dtype=np.float32)
    assert np.allclose(ours, normal, rtol=1e-5, atol=1e-6)  # 6 significant digits against %f's 6 decimals
    summary = json.loads((tmp_path / "piped_summary.json").read_text())
    assert summary["filesinfo"] == {} and set(summary["NPU_compute_time"]) == {"mean", "count"}
    assert summary["NPU_compute_time"]["count"] == 5 and summary["infer_kit"]["pipeline_threads"] == 2
    two = run(model, float_folder(tmp_path / "two", 2), pipeline=True)
    assert set(two.summary["NPU_compute_time"]) >= {"min", "max", "mean"}  # one lane: the usual statistics
    with pytest.raises(InferKitError, match="tensor_num:0 tensorsize:1536 filesize:768 not match"):
        run(float_model(tmp_path / "m2.onnx", batch=2), prep, pipeline=True)


def test_cpp_txt_formatting_and_names():
    assert encode_cpp_txt(np.array([[0.1, 123456789.0, 1e-5]], np.float32)) == b"0.1 1.23457e+08 1e-05 \n"
    assert encode_cpp_txt(np.array([[1.0, -2.0]], np.float16)) == b"15360 49152 \n"  # aclFloat16: the raw bits
    assert encode_cpp_txt(np.array([[65, 66]], np.int8)) == b"A B \n"  # int8_t streams as a char
    assert encode_cpp_txt(np.arange(4, dtype=np.int64).reshape(2, 2)) == b"0 1 \n2 3 \n"
    assert pipeline_output_name("./prep/x.y.npy", 1, "TXT") == "x.y_1.txt"


def test_dump_writes_every_operators_tensors_in_ais_benchs_layout(setup, tmp_path):
    model, prep = setup
    result = run(model, prep, tmp_path, output_dirname="r", dump=True, warmup_count=1)
    acl = json.loads((tmp_path / "acl.json").read_text())
    assert acl == {"dump": {"dump_list": [{"model_name": "tiny_bs4"}], "dump_mode": "all",
                            "dump_path": str(tmp_path / "dump")}}
    [stamp] = list((tmp_path / "dump").iterdir())
    assert len(stamp.name) == 14 and stamp.name.isdigit()  # YYYYMMDDHHMMSS
    root = stamp / "0" / "tiny_bs4" / "1"
    assert sorted(p.name for p in root.iterdir()) == ["0", "1", "2"]  # the warm-up and two batches
    files = sorted(p.name for p in (root / "2").iterdir())
    add = [n for n in files if n.startswith("Add.") and ".output.0." in n]
    assert len(add) == 1 and add[0].endswith(".output.0.4x10.npy")
    logits = np.load(root / "2" / add[0])
    assert np.array_equal(logits[0], np.fromfile(result.result_dir / "img_4_0.bin", np.float32))
    assert any(n.startswith("MatMul.") and ".input.1.3x10." in n for n in files)  # weights are inputs too
    npy = run(model, prep, tmp_path / "n", output_dirname="r", dump=True, dump_npy=True, warmup_count=0)
    assert next((tmp_path / "n" / "dump").iterdir()).name.endswith("_npy")
    assert npy.summary["infer_kit"]["dump"]["path"].endswith("/0/tiny_bs4/1")


def test_profiler_writes_onnx_runtimes_profile_and_a_summary(cli, setup, tmp_path):
    model, prep = setup
    result = cli("run", "-m", model, "-i", prep, "-o", tmp_path, "--output_dirname", "r", "--profiler", "1")
    assert result.exit_code == 0, result.stderr
    assert "profiler mode with input change warmup_count to 0" in result.stderr
    assert "ONNX Runtime per-operator profile (CPU" in result.stdout and "ReduceMean" in result.stdout
    traces = list((tmp_path / "profiler").glob("ort_profile_tiny_bs4_device0_*.json"))
    assert len(traces) == 1
    summary_csv = traces[0].with_name(traces[0].stem + "_op_type_summary.csv").read_text().splitlines()
    assert summary_csv[0] == "name,op_type,calls,total_us,mean_us,max_us,share_percent"
    assert any(line.startswith("ReduceMean,ReduceMean,2,") for line in summary_csv)  # two batches, no warm-up
    info = json.loads((tmp_path / "r_summary.json").read_text())["infer_kit"]
    assert info["warmup_count"] == 0 and info["profile"]["traces"] == [str(traces[0])]


def test_the_ascend_runner_sets_gears_as_ais_bench_does(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(FAKE_AIS_BENCH))
    for name in [m for m in sys.modules if m == "ais_bench" or m.startswith("ais_bench.")]:
        monkeypatch.delitem(sys.modules, name)
    from ais_bench.infer import interface

    from infer_kit.runtime import DymRequest, open_runner

    interface.CALLS.clear()
    model = om_model(tmp_path, batch=4)
    with open_runner("ascend", model, dynamic=DymRequest(batch=4, output_size="160")) as runner:
        out = runner.infer([np.zeros((4, 10, 10, 3), np.uint8)])
    assert interface.CALLS == [("set_dynamic_batchsize", 4), ("set_custom_outsize", [160])]
    assert out[0].shape == (4, 10) and runner.inputs[0].shape == (4, 10, 10, 3)
    interface.CALLS.clear()
    with open_runner("ascend", model, dynamic=DymRequest(shape="images:4,10,10,3")) as runner:
        runner.infer([np.zeros((4, 10, 10, 3), np.uint8)])
    assert interface.CALLS == [("set_dynamic_shape", "images:4,10,10,3")]
