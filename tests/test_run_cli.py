"""`infer-kit run` on the command line: ais_bench's flags and spellings, the printed summary, errors."""

from __future__ import annotations

import json

import pytest
from test_run_support import aipp_folder, emulated_artifact


@pytest.fixture
def setup(tmp_path):
    return emulated_artifact(tmp_path, batch=4), aipp_folder(tmp_path / "prep", 5)


def test_the_modelzoo_ais_bench_command_line_works_unchanged(cli, setup, tmp_path):
    model, prep = setup
    result = cli("run", "--model", model, "--input", f"{prep}/", "--output", f"{tmp_path}/", "--output_dirname",
                 "result", "--outfmt", "TXT")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "result").iterdir()) == [f"img_{i}_0.txt" for i in range(5)]
    assert (tmp_path / "result_summary.json").is_file()
    assert "[INFO] NPU_compute_time (ms): min = " in result.stdout
    assert "[INFO] throughput 1000*batchsize.mean(4)/NPU_compute_time.mean(" in result.stdout
    assert "5 (3 padded slot(s))" in result.stdout


def test_short_flags_and_underscore_aliases(cli, setup, tmp_path):
    model, prep = setup
    result = cli("run", "-m", model, "-i", prep, "-o", tmp_path / "o", "--output-dirname", "x", "-l", "2",
                 "--warmup_count", "0", "-d", "0", "--outfmt", "npy", "--cpu-threads", "1")
    assert result.exit_code == 0, result.stderr
    summary = json.loads((tmp_path / "o" / "x_summary.json").read_text())
    assert summary["NPU_compute_time"]["count"] == 4 and summary["infer_kit"]["warmup_count"] == 0
    assert summary["infer_kit"]["outfmt"] == "NPY" and summary["infer_kit"]["threads"] == 1
    pure = cli("run", "-m", model, "--pure_data_type", "random", "-o", tmp_path / "o", "--output_dirname", "p")
    assert pure.exit_code == 0, pure.stderr
    assert json.loads((tmp_path / "o" / "p_summary.json").read_text())["infer_kit"]["pure_data_type"] == "random"


def test_help_shows_the_flags_and_hides_the_aliases(cli):
    result = cli("run", "--help")
    assert result.exit_code == 0
    for flag in ("--model", "--input", "--output", "--output-dirname", "--outfmt", "--batchsize", "--loop",
                 "--warmup-count", "--device", "--pure-data-type", "--resume", "--shard", "--backend", "--threads",
                 "--cpu-threads", "--split-devices", "--dym-batch", "--divide-input"):
        assert flag in result.stdout
    options = result.stdout.split("Options:", 1)[1]
    assert "--output_dirname" not in options and "--warmup_count" not in options


@pytest.mark.parametrize("args, message", [
    (["--model", "missing.onnx"], "model not found: missing.onnx"),
    (["--input", "nowhere"], "input not found: nowhere"),
    (["--output_dirname", "r"], "need --output"),
    (["--shard", "3/2", "--input", "PREP"], "K must be between 1 and N"),
])
def test_user_errors_are_one_line_with_exit_1(cli, setup, args, message):
    model, prep = setup
    args = [str(prep) if a == "PREP" else a for a in args]
    if "--model" not in args:
        args = ["--model", str(model), *args]
    result = cli("run", *args)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("infer-kit: error: ") and message in lines[-1]
    assert "Traceback" not in result.stderr


def test_reusing_an_output_folder_is_refused_on_the_command_line(cli, setup, tmp_path):
    model, prep = setup
    args = ("run", "-m", model, "-i", prep, "-o", tmp_path, "--output-dirname", "r")
    assert cli(*args).exit_code == 0
    refused = cli(*args)
    assert refused.exit_code == 1 and "pass --resume" in refused.stderr
    resumed = cli(*args, "--resume")
    assert resumed.exit_code == 0 and "5 already done (resume)" in resumed.stdout


def test_list_backends_says_which_runners_work_here(cli, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ais_bench", None)
    result = cli("run", "--list-backends")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["onnxruntime", "available"]
    ascend = next(i for i, line in enumerate(lines) if line.startswith("ascend"))
    assert lines[ascend].split()[1] == "unavailable" and "ais_bench is not installed" in lines[ascend + 1]
