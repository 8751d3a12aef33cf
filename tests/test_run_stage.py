"""The run stage end to end on tiny models: outputs, summary, checks before compute, resume, shards, devices."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_run_support import (
    CLASSES,
    SPEC,
    aipp_folder,
    emulated_artifact,
    expected_logits_aipp,
    float_folder,
    float_model,
    weights,
)

from infer_kit.errors import InferKitError
from infer_kit.runtime import output_writer as outputs_module
from infer_kit.runtime.stage import run
from infer_kit.spec import PreprocessSpec


@pytest.fixture(scope="module")
def emu(tmp_path_factory) -> Path:
    return emulated_artifact(tmp_path_factory.mktemp("emu"), batch=4)


@pytest.fixture(scope="module")
def prep(tmp_path_factory) -> Path:
    return aipp_folder(tmp_path_factory.mktemp("prep") / "prep", 10)


def _image(folder: Path, name: str) -> np.ndarray:
    return np.fromfile(folder / f"{name}.bin", np.uint8).reshape(SPEC.resize, SPEC.resize, 3)


def test_emulated_artifact_outputs_match_numpy_and_padding_is_not_written(emu, prep, tmp_path):
    result = run(emu, prep, tmp_path, output_dirname="result", outfmt="BIN", warmup_count=0)
    assert result.result_dir == tmp_path / "result"
    names = sorted(p.name for p in result.result_dir.iterdir())
    assert names == sorted(f"img_{i}_0.bin" for i in range(10))
    for i in (0, 5, 9):
        got = np.fromfile(result.result_dir / f"img_{i}_0.bin", np.float32)
        np.testing.assert_allclose(got, expected_logits_aipp(_image(prep, f"img_{i}")), rtol=1e-4, atol=1e-4)
    info = result.summary["infer_kit"]
    assert (info["files"], info["processed"], info["padded"], info["batches"]) == (10, 10, 2, 3)
    assert info["outputs"] == [{"name": "output1", "dtype": "float32", "shape": [CLASSES],
                                "file_shape": [1, CLASSES]}]


def test_summary_sits_beside_the_result_folder_with_ais_bench_keys(emu, prep, tmp_path):
    result = run(emu, prep, tmp_path, output_dirname="result", loop=2, args=["infer-kit", "run"])
    assert result.summary_path == tmp_path / "result_summary.json"
    assert not list(result.result_dir.glob("*.json"))
    data = json.loads(result.summary_path.read_text())
    assert list(data)[:8] == ["filesinfo", "args", "NPU_compute_time", "H2D_latency", "D2H_latency",
                              "throughput", "npu_compute_time_list", "pid"]
    compute = data["NPU_compute_time"]
    assert set(compute) == {"min", "max", "mean", "median", "percentile(99%)", "count"}
    times = data["npu_compute_time_list"]
    assert compute["count"] == len(times) == 3 * 2
    assert compute["min"] <= compute["median"] <= compute["max"]
    assert compute["mean"] == pytest.approx(np.mean(times))
    assert data["throughput"] == pytest.approx(1000 * 4 / compute["mean"])
    assert data["filesinfo"]["9"] == {"infiles": [str(prep / "img_9.bin")],
                                      "outfiles": [str(tmp_path / "result" / "img_9_0.bin")]}
    assert data["args"] == ["infer-kit", "run"] and data["pid"] == os.getpid()
    info = data["infer_kit"]
    for key in ("backend", "provider", "threads", "model", "model_kind", "batchsize", "files", "padded",
                "wall_time_s", "throughput_e2e", "outfmt", "result_dir", "shard", "devices", "outputs"):
        assert key in info
    assert (info["backend"], info["model_kind"], info["batchsize"], info["outfmt"]) == (
        "onnxruntime", "emulated-om", 4, "BIN")
    assert info["throughput_e2e"] == pytest.approx(10 * 2 / info["wall_time_s"])


@pytest.mark.parametrize("outfmt", ["TXT", "NPY"])
def test_txt_and_npy_outputs_carry_the_same_logits(emu, prep, tmp_path, outfmt):
    result = run(emu, prep, tmp_path, output_dirname="r", outfmt=outfmt)
    path = result.result_dir / f"img_3_0.{outfmt.lower()}"
    expected = expected_logits_aipp(_image(prep, "img_3"))
    if outfmt == "TXT":
        text = path.read_text()
        assert text.endswith(" \n") and text.count("\n") == 1
        values = np.array(text.split(), dtype=np.float64)
        np.testing.assert_allclose(values, expected, atol=2e-6 + 1e-4)
    else:
        data = np.load(path)
        assert data.shape == (1, CLASSES)
        np.testing.assert_allclose(data[0], expected, rtol=1e-4, atol=1e-4)


def test_float_onnx_with_dynamic_batch_takes_batchsize(tmp_path):
    model = float_model(tmp_path / "m.onnx", batch=None)
    folder = float_folder(tmp_path / "fprep", 5)
    result = run(model, folder, tmp_path / "out", output_dirname="r", batchsize=2)
    info = result.summary["infer_kit"]
    assert (info["model_kind"], info["batchsize"], info["batches"], info["padded"]) == ("onnx", 2, 3, 1)
    sample = np.fromfile(folder / "img_4.bin", np.float32).reshape(3, SPEC.crop, SPEC.crop)
    w, b = weights()
    np.testing.assert_allclose(np.fromfile(result.result_dir / "img_4_0.bin", np.float32),
                               sample.mean(axis=(1, 2)) @ w + b, rtol=1e-4, atol=1e-5)


def test_float_tensors_for_an_aipp_model_are_refused_before_any_compute(emu, tmp_path):
    folder = float_folder(tmp_path / "fprep", 3)
    with pytest.raises(InferKitError, match=r"holds float tensors .* but model tiny_bs4\.emu\.onnx expects aipp"):
        run(emu, folder, tmp_path / "out", output_dirname="r")
    assert not (tmp_path / "out").exists()


def test_another_spec_is_refused_naming_both_sides(emu, tmp_path):
    other = PreprocessSpec(resize=10, crop=8, interpolation="bicubic")
    folder = aipp_folder(tmp_path / "p", 2, spec=other)
    with pytest.raises(InferKitError, match="preprocessed with another spec"):
        run(emu, folder, tmp_path / "out", output_dirname="r")


def test_files_that_do_not_fit_the_model_input_are_refused(emu, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    for i in range(3):
        (folder / f"x{i}.bin").write_bytes(b"\0" * 700)
    with pytest.raises(InferKitError, match="arg0 tensorsize: 1200 filesize: 700 not match"):
        run(emu, folder, tmp_path / "out", output_dirname="r")
    assert not (tmp_path / "out").exists()


def test_output_name_collisions_are_refused(emu, tmp_path):
    folder = aipp_folder(tmp_path / "p", 2, names=["a.x", "a.y"], manifest=False)
    with pytest.raises(InferKitError, match=r"a\.x\.bin and a\.y\.bin would write the same outputs"):
        run(emu, folder, tmp_path / "out", output_dirname="r")


def test_reusing_a_result_folder_needs_resume(emu, prep, tmp_path):
    run(emu, prep, tmp_path, output_dirname="r")
    with pytest.raises(InferKitError, match=r"already holds 10 file\(s\): pass --resume"):
        run(emu, prep, tmp_path, output_dirname="r")
    again = run(emu, prep, tmp_path, output_dirname="r", resume=True)
    assert again.summary["infer_kit"]["skipped"] == 10 and again.summary["infer_kit"]["processed"] == 0
    assert len(again.summary["filesinfo"]) == 10
    with pytest.raises(InferKitError, match="cannot resume into .* with --outfmt TXT: it holds other files"):
        run(emu, prep, tmp_path, output_dirname="r", resume=True, outfmt="TXT")


def test_resume_after_a_crash_mid_run_gives_identical_outputs(emu, tmp_path, monkeypatch):
    folder = aipp_folder(tmp_path / "p", 18, seed=4)
    clean = run(emu, folder, tmp_path, output_dirname="clean", outfmt="TXT")
    real_write = outputs_module.write_output
    calls = {"n": 0}

    def crash_after_seven(path, array, outfmt):
        calls["n"] += 1
        if calls["n"] > 7:
            raise KeyboardInterrupt
        return real_write(path, array, outfmt)

    monkeypatch.setattr(outputs_module, "write_output", crash_after_seven)
    with pytest.raises(KeyboardInterrupt):
        run(emu, folder, tmp_path, output_dirname="resumed", outfmt="TXT")
    monkeypatch.setattr(outputs_module, "write_output", real_write)
    assert len(list((tmp_path / "resumed").glob("*.txt"))) == 7
    resumed = run(emu, folder, tmp_path, output_dirname="resumed", outfmt="TXT", resume=True)
    assert resumed.summary["infer_kit"]["skipped"] == 4  # the one complete batch
    _assert_same_files(clean.result_dir, resumed.result_dir)


def _assert_same_files(a: Path, b: Path) -> None:
    names_a = sorted(p.name for p in a.iterdir())
    assert names_a == sorted(p.name for p in b.iterdir())
    for name in names_a:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_resume_after_killing_the_cli_gives_identical_outputs(tmp_path):
    model = emulated_artifact(tmp_path, batch=1)
    folder = aipp_folder(tmp_path / "p", 300, seed=5, manifest=False)
    command = [sys.executable, "-m", "infer_kit", "run", "-m", str(model), "-i", str(folder), "-o", str(tmp_path),
               "--outfmt", "TXT", "--loop", "100", "--warmup-count", "0", "--threads", "1"]
    proc = subprocess.Popen([*command, "--output-dirname", "killed"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    killed = tmp_path / "killed"
    while time.monotonic() < deadline and proc.poll() is None:
        if killed.is_dir() and len(list(killed.glob("*.txt"))) >= 20:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(killed.glob("*.txt")))
    assert 0 < done_before < 300, "the run finished before it could be killed"
    finish = subprocess.run([*command, "--output-dirname", "killed", "--resume", "--loop", "1"],
                            capture_output=True, text=True)
    assert finish.returncode == 0, finish.stderr
    clean = subprocess.run([*command, "--output-dirname", "clean", "--loop", "1"], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr
    _assert_same_files(tmp_path / "clean", killed)
    summary = json.loads((tmp_path / "killed_summary.json").read_text())
    assert summary["infer_kit"]["skipped"] >= done_before


def test_shards_split_the_files_and_together_cover_them(emu, prep, tmp_path):
    names = set()
    for k in (1, 2, 3):
        result = run(emu, prep, tmp_path, output_dirname=f"s{k}", shard=f"{k}/3")
        shard_names = {p.name for p in result.result_dir.iterdir()}
        assert not names & shard_names
        names |= shard_names
        assert result.summary["infer_kit"]["shard"] == f"{k}/3"
    whole = run(emu, prep, tmp_path, output_dirname="all")
    assert names == {p.name for p in whole.result_dir.iterdir()}
    for k in (1, 2, 3):
        for path in (tmp_path / f"s{k}").iterdir():
            assert path.read_bytes() == (whole.result_dir / path.name).read_bytes()


def test_pure_performance_mode_names_outputs_pure_infer_data(emu, tmp_path):
    result = run(emu, None, tmp_path, output_dirname="pure", loop=3, warmup_count=2, pure_data_type="random")
    assert sorted(p.name for p in result.result_dir.iterdir()) == ["pure_infer_data_0.bin"]
    assert np.fromfile(result.result_dir / "pure_infer_data_0.bin", np.float32).shape == (4 * CLASSES,)
    assert result.summary["NPU_compute_time"]["count"] == 3
    assert result.summary["infer_kit"]["pure_data_type"] == "random"
    nothing = run(emu)
    assert nothing.result_dir is None and nothing.summary_path is None
    assert nothing.summary["throughput"] > 0


def test_split_devices_run_two_workers_and_merge_one_summary(emu, prep, tmp_path):
    result = run(emu, prep, tmp_path, output_dirname="multi", devices=(0, 1), warmup_count=0, split_devices=True)
    single = run(emu, prep, tmp_path, output_dirname="single", warmup_count=0)
    _assert_same_files(single.result_dir, result.result_dir)
    info = result.summary["infer_kit"]
    assert info["devices"] == [0, 1] and [d["device"] for d in info["per_device"]] == [0, 1]
    assert sum(d["images"] for d in info["per_device"]) == 10
    assert result.summary["NPU_compute_time"]["count"] == 3
    assert sorted(result.summary["filesinfo"]) == list(range(10))


@pytest.mark.parametrize("kwargs, message", [
    ({"output_dirname": "x"}, "need --output"),
    ({"resume": True, "output": "o"}, "--resume needs --output-dirname"),
    ({"outfmt": "CSV"}, "unknown --outfmt"),
    ({"devices": "0,0"}, "names a device twice"),
    ({"devices": "0,,1"}, "--device '0,,1' is not a list of integers"),
    ({"devices": "1,"}, "--device '1,' is not a list of integers"),
    ({"devices": " "}, "--device is empty"),
    ({"devices": "256"}, r"valid range is \[0, 255\]"),
    ({"loop": 0}, "--loop 0 is invalid"),
    ({"shard": "1/2"}, "--shard needs --input"),
    ({"backend": "tensorrt"}, "unknown backend"),
])
def test_bad_arguments_are_one_line_errors(emu, kwargs, message):
    with pytest.raises(InferKitError, match=message):
        run(emu, **kwargs)


def test_an_om_cannot_be_forced_onto_onnxruntime(tmp_path):
    from test_run_support import om_model

    model = om_model(tmp_path)
    with pytest.raises(InferKitError, match="only the ascend backend runs"):
        run(model, backend="onnxruntime")


def test_the_om_name_runs_its_emulated_artifact_where_no_om_was_built(emu, prep, tmp_path):
    om_name = emu.with_name(emu.name.replace(".emu.onnx", ".om"))
    assert not om_name.exists()
    result = run(om_name, prep, tmp_path, output_dirname="r")
    info = result.summary["infer_kit"]
    assert (info["backend"], info["model_kind"], info["model"]) == ("onnxruntime", "emulated-om", om_name.name)
    with pytest.raises(InferKitError, match="model not found"):
        run(tmp_path / "elsewhere.om")


def test_a_folder_with_fewer_files_than_its_manifest_records_warns(emu, tmp_path, caplog):
    folder = aipp_folder(tmp_path / "p", 3)
    (folder / "img_2.bin").unlink()
    with caplog.at_level("WARNING", logger="infer_kit"):
        run(emu, folder)
    assert "records 3 file(s) but the folder holds 2" in caplog.text
