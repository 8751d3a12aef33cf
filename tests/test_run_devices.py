"""``--device 0,1`` as ais_bench does it: every input on every device, device{id}_{i} folders and summaries."""

from __future__ import annotations

import json

import pytest
from test_run_support import aipp_folder, emulated_artifact

from infer_kit.errors import InferKitError
from infer_kit.runtime import run


@pytest.fixture
def setup(tmp_path):
    return emulated_artifact(tmp_path, batch=2), aipp_folder(tmp_path / "prep", 7)


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_every_device_runs_every_input_into_its_own_folder(setup, tmp_path):
    model, prep = setup
    single = run(model, prep, tmp_path / "out", output_dirname="single", warmup_count=0)
    multi = run(model, prep, tmp_path / "out", output_dirname="multi", devices="1,2", warmup_count=0)
    base = tmp_path / "out" / "multi"
    assert multi.result_dir == base
    assert sorted(p.name for p in base.iterdir() if not p.name.startswith(".")) == [
        "device1_0", "device1_0_summary.json", "device2_1", "device2_1_summary.json"]
    assert (base / ".device1_0.run.json").is_file() and (base / ".device2_1.run.json").is_file()  # for --resume
    for index, device in enumerate((1, 2)):
        assert _files(base / f"device{device}_{index}") == _files(single.result_dir)
        summary = json.loads((base / f"device{device}_{index}_summary.json").read_text())
        assert sorted(summary["filesinfo"], key=int) == [str(i) for i in range(7)]
        assert summary["filesinfo"]["0"]["outfiles"][0] == str(base / f"device{device}_{index}" / "img_0_0.bin")
        assert summary["infer_kit"]["devices"] == [device] and summary["NPU_compute_time"]["count"] == 4
    assert [r.summary_path.name for r in multi.per_device] == ["device1_0_summary.json", "device2_1_summary.json"]
    assert multi.summary["throughput"] == pytest.approx(sum(r.summary["throughput"] for r in multi.per_device))
    assert multi.lines[0] == "[INFO] multidevice run end qsize:4 result:0"
    assert multi.lines[1].startswith("[INFO] i:0 device_1 throughput:") and " " * 17 + "start_time:" in multi.lines[1]
    assert multi.lines[-1] == f"[INFO] summary throughput:{multi.summary['throughput']}"
    assert not list((tmp_path / "out").glob(".multi.lock*"))  # the lock is gone with the run


def test_the_cli_prints_each_devices_summary_then_ais_benchs_lines(cli, setup, tmp_path):
    model, prep = setup
    result = cli("run", "-m", model, "-i", prep, "-o", tmp_path, "--output_dirname", "r", "-d", "0,1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("-----------------Performance Summary------------------") == 2
    assert "[INFO] i:1 device_1 throughput:" in result.stdout
    assert "[INFO] summary throughput:" in result.stdout.splitlines()[-1]


def test_divide_input_shares_the_files_the_first_get_one_more(setup, tmp_path):
    model, prep = setup
    result = run(model, prep, tmp_path / "out", output_dirname="d", devices=(0, 1), divide_input=True,
                 warmup_count=0)
    first = sorted(p.name for p in (result.result_dir / "device0_0").iterdir())
    second = sorted(p.name for p in (result.result_dir / "device1_1").iterdir())
    assert first == [f"img_{i}_0.bin" for i in range(4)] and second == [f"img_{i}_0.bin" for i in range(4, 7)]
    with pytest.raises(InferKitError, match=r"--divide_input: 7 input file\(s\) cannot be shared among 8 devices"):
        run(model, prep, tmp_path / "out", output_dirname="e", devices=range(8), divide_input=True)


def test_split_devices_keeps_one_folder_with_the_batches_shared(setup, tmp_path):
    model, prep = setup
    result = run(model, prep, tmp_path / "out", output_dirname="s", devices=(0, 1), split_devices=True,
                 warmup_count=0)
    assert sorted(p.name for p in result.result_dir.iterdir()) == [f"img_{i}_0.bin" for i in range(7)]
    assert [d["batches"] for d in result.summary["infer_kit"]["per_device"]] == [2, 2]


def test_a_device_layout_run_resumes_and_refuses_reuse(setup, tmp_path):
    model, prep = setup
    run(model, prep, tmp_path / "out", output_dirname="r", devices=(0, 1), warmup_count=0)
    folder = tmp_path / "out" / "r" / "device1_1"
    complete = _files(folder)
    with pytest.raises(InferKitError, match="already holds 7 file"):
        run(model, prep, tmp_path / "out", output_dirname="r", devices=(0, 1))
    (folder / "img_5_0.bin").unlink()
    resumed = run(model, prep, tmp_path / "out", output_dirname="r", devices=(0, 1), resume=True, warmup_count=0)
    assert _files(folder) == complete
    assert resumed.per_device[0].summary["infer_kit"]["skipped"] == 7
    assert resumed.per_device[1].summary["infer_kit"]["skipped"] == 5  # the batch of img_4 and img_5 is redone
    (tmp_path / "other").mkdir()
    other = emulated_artifact(tmp_path / "other", batch=2, classes=5)
    with pytest.raises(InferKitError, match="cannot resume into .*device0_0: its outputs were written by a run with "
                                            "another model"):
        run(other, prep, tmp_path / "out", output_dirname="r", devices=(0, 1), resume=True)


def test_a_device_list_never_writes_into_another_runs_folder(setup, tmp_path):
    model, prep = setup
    single = run(model, prep, tmp_path / "out", output_dirname="r", warmup_count=0)
    before = _files(single.result_dir)
    for resume in (False, True):  # a single-device run's outputs would sit beside the device folders
        with pytest.raises(InferKitError, match=r"out/r already holds img_0_0.bin and 6 more, which --device 0,1 "
                                                r"does not write \(it writes device0_0/, device1_1/\)"):
            run(model, prep, tmp_path / "out", output_dirname="r", devices=(0, 1), resume=resume)
    assert _files(single.result_dir) == before
    run(model, prep, tmp_path / "out", output_dirname="m", devices=(0, 1), warmup_count=0)
    with pytest.raises(InferKitError, match="already holds device0_0 and 5 more, which --device 1,0 does not write"):
        run(model, prep, tmp_path / "out", output_dirname="m", devices=(1, 0), resume=True)
    assert sorted(p.name for p in (tmp_path / "out" / "m").iterdir() if p.is_dir()) == ["device0_0", "device1_1"]
    for kwargs in ({"resume": True}, {"devices": (0, 1), "split_devices": True, "resume": True}, {}):
        with pytest.raises(InferKitError, match=r"out/m holds the per-device folders of a --device list run "
                                                r"\(device0_0, device1_1\)"):
            run(model, prep, tmp_path / "out", output_dirname="m", **kwargs)


def test_a_device_summary_path_that_is_a_folder_is_refused_before_any_work(setup, tmp_path):
    model, prep = setup
    (tmp_path / "out" / "r" / "device1_1_summary.json").mkdir(parents=True)
    with pytest.raises(InferKitError, match="run summary .*device1_1_summary.json is a folder"):
        run(model, prep, tmp_path / "out", output_dirname="r", devices=(0, 1))
    assert not (tmp_path / "out" / "r" / "device0_0").exists()


def test_pure_inference_on_several_devices_writes_each_devices_outputs(setup, tmp_path):
    model, _ = setup
    result = run(model, None, tmp_path / "out", output_dirname="p", devices=(0, 1), warmup_count=0)
    for folder in ("device0_0", "device1_1"):
        assert [p.name for p in (result.result_dir / folder).iterdir()] == ["pure_infer_data_0.bin"]
