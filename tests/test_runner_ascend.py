"""The ascend runner's contract, proved against a test double of ais_bench's InferSession.

The double (tests/fake_ais_bench) keeps ais_bench's API and runs the ONNX bytes inside the
``.om`` with ONNX Runtime; the real device path runs only where CANN and ais_bench exist.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from test_run_support import (
    CLASSES,
    SPEC,
    aipp_folder,
    emulated_artifact,
    expected_logits_aipp,
    float_folder,
    om_model,
    use_fake_ais_bench,
)

from infer_kit.errors import BackendUnavailable, InferKitError
from infer_kit.runtime.ascend import AscendRunner, dtype_name
from infer_kit.runtime.base import open_runner, runner_status
from infer_kit.runtime.stage import run


@pytest.fixture
def fake(monkeypatch):
    interface = use_fake_ais_bench(monkeypatch)
    interface.OPENED.clear()
    return interface


def test_runner_describes_the_om_from_the_session(fake, tmp_path):
    runner = open_runner("ascend", om_model(tmp_path, batch=4), device=3)
    assert runner.batch == 4 and runner.provider == "ais_bench"
    assert [(d.name, d.shape, d.dtype, d.format) for d in runner.inputs] == [
        ("images", (4, SPEC.resize, SPEC.resize, 3), "uint8", "NHWC")]
    assert [(d.name, d.shape, d.dtype) for d in runner.outputs] == [("output1", (4, CLASSES), "float32")]
    feeds = [np.zeros((4, SPEC.resize, SPEC.resize, 3), np.uint8)]
    assert runner.infer(feeds)[0].shape == (4, CLASSES)
    timings = runner.timings()
    assert len(timings.device_compute_ms) == 1 and timings.device_compute_ms[0] > 0
    assert timings.compute_ms == timings.device_compute_ms  # the device's own time, not the host's
    runner.reset_timings()
    assert runner.timings().device_compute_ms is None and runner.timings().host_compute_ms == []
    runner.close()
    assert fake.OPENED[-1][0] == 3


def test_run_picks_ascend_for_an_om_and_writes_ais_bench_outputs(fake, tmp_path):
    model = om_model(tmp_path, batch=4, with_manifest=True)
    prep = aipp_folder(tmp_path / "prep", 6)
    result = run(model, prep, tmp_path / "out", output_dirname="result", outfmt="TXT", devices="2")
    info = result.summary["infer_kit"]
    assert (info["backend"], info["provider"], info["model_kind"], info["batchsize"]) == (
        "ascend", "ais_bench", "om", 4)
    assert fake.OPENED[-1][0] == 2
    text = (result.result_dir / "img_5_0.txt").read_text()
    image = np.fromfile(prep / "img_5.bin", np.uint8).reshape(SPEC.resize, SPEC.resize, 3)
    np.testing.assert_allclose(np.array(text.split(), float), expected_logits_aipp(image), atol=1e-4)
    summary = json.loads(result.summary_path.read_text())
    assert summary["NPU_compute_time"]["count"] == 2
    assert summary["H2D_latency"]["count"] == 2  # warm-up excluded, as ais_bench resets after it
    assert summary["infer_kit"]["padded"] == 2


def test_manifest_of_a_real_om_is_checked_too(fake, tmp_path):
    model = om_model(tmp_path, batch=4, with_manifest=True)
    folder = float_folder(tmp_path / "fprep", 2)
    with pytest.raises(InferKitError, match="holds float tensors"):
        run(model, folder, tmp_path / "out", output_dirname="r")


def test_om_without_manifest_still_runs_by_byte_size(fake, tmp_path):
    model = om_model(tmp_path, batch=2)
    prep = aipp_folder(tmp_path / "prep", 3, manifest=False)
    result = run(model, prep, tmp_path / "out", output_dirname="r")
    assert sorted(p.name for p in result.result_dir.iterdir()) == ["img_0_0.bin", "img_1_0.bin", "img_2_0.bin"]


def test_session_load_failure_is_one_line(fake, tmp_path):
    model = om_model(tmp_path)
    with pytest.raises(InferKitError, match="ais_bench cannot load tiny_bs4.om on device 9"):
        AscendRunner(model, device=9)


def test_missing_ais_bench_says_what_to_install(monkeypatch, tmp_path, cli):
    monkeypatch.setitem(sys.modules, "ais_bench", None)
    status = runner_status("ascend")
    assert not status.available and "install CANN and the aclruntime + ais_bench wheels" in status.reason
    model = om_model(tmp_path)
    with pytest.raises(BackendUnavailable):
        run(model)
    result = cli("run", "--model", model)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("infer-kit: error: backend 'ascend' is not available here")
    assert "Traceback" not in result.stderr


def test_emulated_artifact_is_refused_by_the_ascend_backend(fake, tmp_path):
    with pytest.raises(InferKitError, match="the ascend backend runs .om models"):
        run(emulated_artifact(tmp_path), backend="ascend")


@pytest.mark.parametrize("value, expected", [
    ("dtype.float32", "float32"), ("dtype.float16", "float16"), (4, "uint8"), (0, "float32"), ("ACL_INT8", "int8"),
    ("float", "float32"),
])
def test_aclruntime_dtypes_map_to_numpy_names(value, expected):
    assert dtype_name(value) == expected


def test_two_devices_open_one_session_each_in_worker_processes(fake, tmp_path):
    model = om_model(tmp_path, batch=2, with_manifest=True)
    prep = aipp_folder(tmp_path / "prep", 7)
    result = run(model, prep, tmp_path / "out", output_dirname="r", devices=(0, 1), warmup_count=0,
                 split_devices=True)
    info = result.summary["infer_kit"]
    assert info["backend"] == "ascend" and [d["device"] for d in info["per_device"]] == [0, 1]
    assert [d["batches"] for d in info["per_device"]] == [2, 2]
    assert len(list(result.result_dir.iterdir())) == 7
