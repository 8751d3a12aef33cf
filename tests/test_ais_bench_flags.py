"""Every flag of ais_bench's parser (and msit's spellings) is accepted by ``infer-kit run``, with ais_bench's meaning.

The flag lists are ais_bench's argparse parser (``ais_bench/infer/utils.py``, gitee tools @1ff4acca)
and ``msit benchmark``'s (``msit_benchmark/__main__.py``), written down here by name.
"""

from __future__ import annotations

import json
import os
import stat
import sys

import click
import pytest
from test_run_support import aipp_folder, emulated_artifact

from infer_kit.cli.ais_bench_flags import FLAGS, expand_prefixes
from infer_kit.cli.run import command as run_command

# (spelling, a value it takes; None = a bare switch)
AIS_BENCH = [
    ("--model", "m.onnx"), ("-m", "m.onnx"), ("--input", "prep"), ("-i", "prep"), ("--output", "out"), ("-o", "out"),
    ("--output_dirname", "r"), ("--outfmt", "TXT"), ("--loop", "2"), ("-l", "2"), ("--debug", "1"),
    ("--device", "0"), ("-d", "0,1"), ("--dymBatch", "2"), ("--dymHW", "224,224"), ("--dymDims", "x:1,3,224,224"),
    ("--dymShape", "x:1,3,224,224"), ("--outputSize", "4000,8000"), ("--auto_set_dymshape_mode", "1"),
    ("--auto_set_dymdims_mode", "0"), ("--batchsize", "4"), ("--pure_data_type", "random"), ("--profiler", "1"),
    ("--dump", "true"), ("--acl_json_path", "acl.json"), ("--output_batchsize_axis", "1"), ("--run_mode", "full"),
    ("--display_all_summary", "True"), ("--warmup_count", "0"), ("--dymShape_range", "x:1~4,3,224,224"),
    ("--aipp_config", "a.config"), ("--energy_consumption", "1"), ("--npu_id", "0"), ("--backend", "trtexec"),
    ("--perf", "0"), ("--pipeline", "1"), ("--profiler_rename", "0"), ("--dump_npy", "1"), ("--divide_input", "1"),
    ("--threads", "2"),
]
MSIT = [
    ("-om", "m.onnx"), ("--om-model", "m.onnx"), ("-od", "r"), ("--output-dirname", "r"), ("-db", "2"),
    ("--dym-batch", "2"), ("-dhw", "224,224"), ("--dym-hw", "224,224"), ("-dd", "x:1,3"), ("--dym-dims", "x:1,3"),
    ("-ds", "x:1,3"), ("--dym-shape", "x:1,3"), ("-outsize", "100"), ("--output-size", "100"), ("-asdsm", "1"),
    ("--auto-set-dymshape-mode", "1"), ("-asddm", "1"), ("--auto-set-dymdims-mode", "1"), ("--batch-size", "4"),
    ("-pdt", "zero"), ("--pure-data-type", "zero"), ("-pf", "1"), ("-acl", "a.json"), ("--acl-json-path", "a.json"),
    ("-oba", "1"), ("--output-batchsize-axis", "1"), ("-rm", "files"), ("--run-mode", "files"), ("-das", "1"),
    ("--display-all-summary", "1"), ("-wcount", "3"), ("--warmup-count", "3"), ("-dr", "x:1~2"),
    ("--dym-shape-range", "x:1~2"), ("-aipp", "a.config"), ("--aipp-config", "a.config"), ("-ec", "0"),
    ("--energy-consumption", "0"), ("--npu-id", "1"), ("--profiler-rename", "1"), ("--dump-npy", "0"),
    ("--divide-input", "0"), ("--loop", "3"),
]


def _parse(*args: str) -> dict:
    with run_command.make_context("run", list(args)) as ctx:
        return dict(ctx.params)


@pytest.mark.parametrize("flag, value", AIS_BENCH + MSIT, ids=[f for f, _ in AIS_BENCH + MSIT])
def test_every_ais_bench_and_msit_flag_is_accepted(flag, value):
    args = [flag, value] if flag in ("--model", "-m", "-om", "--om-model") else ["-m", "m.onnx", flag, value]
    params = _parse(*args)
    assert params["model"] == "m.onnx"


# one non-default value per flag: every spelling (and --flag=value) must land it in the same place, converted alike
NON_DEFAULT = {
    "model": "m.onnx", "inputs": "p", "output": "o", "output_dirname": "r", "outfmt": "txt", "loop": "3", "debug": "1",
    "device": "1,2", "dym_batch": "2", "dym_hw": "2,2", "dym_dims": "x:1", "dym_shape": "x:1", "output_size": "10",
    "auto_set_dymshape_mode": "y", "auto_set_dymdims_mode": "TRUE", "batchsize": "3", "pure_data_type": "random",
    "profiler": "1", "dump": "t", "acl_json_path": "a.json", "output_batchsize_axis": "1", "run_mode": "full",
    "display_all_summary": "yes", "warmup_count": "3", "dym_shape_range": "x:1~2", "aipp_config": "a.config",
    "energy_consumption": "1", "npu_id": "3", "backend": "torch", "perf": "1", "pipeline": "1",
    "profiler_rename": "0", "dump_npy": "1", "divide_input": "1", "threads": "3",
}


@pytest.mark.parametrize("flag", FLAGS, ids=[f.dest for f in FLAGS])
def test_every_spelling_of_a_flag_means_the_same(flag):
    value = NON_DEFAULT[flag.dest]
    default = _parse("-m", "m.onnx")[flag.dest] if flag.dest != "model" else None
    seen = {}
    for name in flag.spellings:
        forms = [[name, value]] + ([[f"{name}={value}"]] if name.startswith("--") else [])
        for form in forms:
            args = form if flag.dest == "model" else ["-m", "m.onnx", *form]
            seen[" ".join(form)] = _parse(*args)[flag.dest]
    assert len({repr(v) for v in seen.values()}) == 1, seen
    assert next(iter(seen.values())) != default  # the value was taken, not the default left


def test_the_flag_table_covers_ais_bench_and_msit_exactly():
    names = {name for flag in FLAGS for name in flag.spellings}
    assert {f for f, _ in AIS_BENCH + MSIT} <= names
    assert {f for flag in FLAGS for f in flag.ais_bench} == {f for f, _ in AIS_BENCH}


def test_switches_take_ais_benchs_values_and_mean_on_alone():
    assert _parse("-m", "x", "--debug")["debug"] is True
    for value, expected in (("1", True), ("yes", True), ("T", True), ("0", False), ("false", False), ("N", False)):
        assert _parse("-m", "x", "--profiler", value)["profiler"] is expected
    assert _parse("-m", "x", "--debug", "--dymBatch", "2")["dym_batch"] == 2
    assert _parse("-m", "x")["profiler_rename"] is True and _parse("-m", "x")["debug"] is False
    with pytest.raises(click.BadParameter, match="Boolean value expected true, 1, false, 0 with case insensitive"):
        _parse("-m", "x", "--debug", "maybe")


def test_argparse_prefixes_expand_like_ais_bench():
    known = {"--model"}
    assert expand_prefixes(["--output_dir", "r"], known) == ["--output_dirname", "r"]
    assert expand_prefixes(["--dymB=2"], known) == ["--dymBatch=2"]
    assert _parse("-m", "x", "--warm", "0")["warmup_count"] == 0  # --warmup_count and --warmup-count: one flag
    assert _parse("-m", "x", "--batch", "8")["batchsize"] == 8
    with pytest.raises(click.UsageError, match="ambiguous option: --dym could match"):
        expand_prefixes(["--dym", "2"], known)
    assert _parse("-m", "x", "--output_dir", "r")["output_dirname"] == "r"


def test_limits_are_ais_benchs():
    for args in (["--loop", "0"], ["--loop", "100001"], ["--threads", "65"], ["--batchsize", "4097"],
                 ["--dymBatch", "0"], ["--warmup_count", "10001"], ["--output_batchsize_axis", "9"]):
        with pytest.raises(click.BadParameter):
            _parse("-m", "x", *args)


@pytest.fixture
def setup(tmp_path):
    return emulated_artifact(tmp_path, batch=4), aipp_folder(tmp_path / "prep", 5)


def test_an_ais_bench_command_line_with_many_flags_runs_unchanged(cli, setup, tmp_path, monkeypatch):
    model, _ = setup
    monkeypatch.chdir(tmp_path)
    result = cli("run", "--model", model.name, "--input", "./prep/", "--output", "./", "--output_dirname", "result",
                 "--outfmt", "TXT", "--loop", "2", "--debug", "0", "--device", "0", "--batchsize", "8",
                 "--pure_data_type", "zero", "--output_batchsize_axis", "0", "--run_mode", "tensor",
                 "--display_all_summary", "1", "--warmup_count", "1", "--profiler_rename", "1", "--npu_id", "0",
                 "--threads", "1", "--pipeline", "0", "--divide_input", "0", "--dump_npy", "0", "--perf", "0",
                 "--energy_consumption", "0", "--auto_set_dymshape_mode", "0", "--auto_set_dymdims_mode", "0")
    assert result.exit_code == 0, result.stderr
    assert "[INFO] H2D_latency (ms): min = " in result.stdout and "[INFO] D2H_latency (ms): " in result.stdout
    summary = json.loads((tmp_path / "result_summary.json").read_text())
    assert summary["filesinfo"]["0"] == {"infiles": ["./prep/img_0.bin"], "outfiles": ["./result/img_0_0.txt"]}
    assert summary["NPU_compute_time"]["count"] == 4  # 2 batches x --loop 2: every execution is an entry
    mean = summary["NPU_compute_time"]["mean"]
    assert summary["throughput"] == pytest.approx(1000 * 8 / mean)  # --batchsize is the throughput's batch only
    assert summary["infer_kit"]["batchsize"] == 4 and summary["infer_kit"]["throughput_batchsize"] == 8


def test_the_derived_batch_is_the_models(cli, setup, tmp_path):
    model, prep = setup
    result = cli("run", "-m", model, "-i", prep, "-o", tmp_path / "o", "--output_dirname", "r")
    assert result.exit_code == 0, result.stderr
    summary = json.loads((tmp_path / "o" / "r_summary.json").read_text())
    assert summary["throughput"] == pytest.approx(1000 * 4 / summary["NPU_compute_time"]["mean"])
    assert "throughput 1000*batchsize.mean(4)/" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--energy_consumption", "1"], "--energy_consumption reads the NPU's power draw with npu-smi"),
    (["--acl_json_path", "acl.json"], "--acl_json_path acl.json configures the Ascend ACL runtime"),
    (["--perf", "1", "--backend", "trtexec"], "runs NVIDIA TensorRT's trtexec, which is not installed here"),
])
def test_device_only_flags_say_so_and_exit_2(cli, setup, args, message, monkeypatch):
    model, _ = setup
    monkeypatch.setenv("PATH", "/nonexistent")
    result = cli("run", "-m", model, *args)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_perf_runs_trtexec_with_ais_benchs_command_when_it_is_there(cli, setup, tmp_path, monkeypatch):
    model, _ = setup
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "trtexec.argv"
    script = bin_dir / "trtexec"
    script.write_text(f"#!{sys.executable}\nimport sys\nopen({str(log)!r}, 'w').write(' '.join(sys.argv[1:]))\n"
                      "print('[I] Throughput: 1234.5 qps')\n"
                      "print('[I] GPU Compute Time: min = 0.5 ms, max = 0.9 ms, mean = 0.6 ms, median = 0.6 ms, "
                      "percentile(99%) = 0.8 ms')\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    result = cli("run", "-m", model, "--perf", "1", "--backend", "trtexec", "--loop", "5", "--batchsize", "4")
    assert result.exit_code == 0, result.stderr
    assert log.read_text() == f"--onnx={model} --fp16 --device=0 --iterations=5 --batch=4"
    assert "[INFO] [I] Throughput: 1234.5 qps" in result.stdout and "throughput=1234.5" in result.stdout


def test_profiler_and_dump_rules_are_ais_benchs(cli, setup):
    model, prep = setup
    both = cli("run", "-m", model, "-i", prep, "-o", "o", "--profiler", "1", "--dump", "1")
    assert both.exit_code == 1 and "--profiler cannot be true at the same time as parameter --dump" in both.stderr
    alone = cli("run", "-m", model, "--dump", "1")
    assert alone.exit_code == 1 and "when dump or profiler, miss output path" in alone.stderr


def test_threads_without_pipeline_falls_back_to_one_as_ais_bench_does(cli, setup, tmp_path, caplog):
    model, prep = setup
    result = cli("run", "-m", model, "-i", prep, "-o", tmp_path, "--output_dirname", "r", "--threads", "3")
    assert result.exit_code == 0, result.stderr
    assert "need to set --pipeline when setting threads number to be more than one." in result.stderr
