"""The CLI shell: instant --help, one-line errors, doctor, models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import click
import pytest

from infer_kit import cli as cli_module
from infer_kit.cli import COMMANDS

PROBE = textwrap.dedent(
    """
    import sys
    from infer_kit.cli import COMMANDS, main
    names = [None] + list(COMMANDS)
    for name in names:
        try:
            main(["--help"] if name is None else [name, "--help"])
        except SystemExit:
            pass
    heavy = sorted(m for m in ("torch", "onnx", "onnxruntime", "timm", "torchvision", "onnxsim", "ray")
                   if m in sys.modules)
    print("HEAVY=" + ",".join(heavy))
    """
)


def test_help_of_every_command_imports_no_heavy_library():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "HEAVY="


def test_version_and_group_help(cli):
    from infer_kit import __version__

    result = cli("--version")
    assert result.exit_code == 0 and __version__ in result.stdout
    result = cli("--help")
    assert "Commands:" in result.stdout and "export" in result.stdout and "doctor" in result.stdout


def test_unknown_command_is_a_one_line_user_error(cli):
    result = cli("exprot")
    assert result.exit_code == 1 and "No such command 'exprot'" in result.stderr
    assert result.stderr.count("\n") == 1 and "Usage:" not in result.stderr


def test_internal_errors_are_reported_as_bugs_in_one_line(cli, monkeypatch):
    @click.command()
    def boom() -> None:
        raise ValueError("unexpected")

    original = cli_module.LazyGroup.get_command

    def get_command(self, ctx, name):
        return boom if name == "boom" else original(self, ctx, name)

    monkeypatch.setattr(cli_module.LazyGroup, "get_command", get_command)
    result = cli("boom")
    assert result.exit_code == 70
    assert "internal error: ValueError: unexpected" in result.stderr and "Traceback" not in result.stderr
    result = cli("-v", "boom")
    assert "Traceback" in result.stderr


def test_every_registered_command_module_exposes_a_click_command():
    import importlib
    import importlib.util

    for name, (module, help_text) in COMMANDS.items():
        if importlib.util.find_spec(module) is None:
            continue
        command = importlib.import_module(module).command
        assert isinstance(command, click.Command), name
        assert help_text.endswith(".")


def test_doctor_reports_each_component(cli, tmp_path, monkeypatch):
    result = cli("doctor")
    assert result.exit_code == 0, result.stderr
    names = [line.split()[1] for line in result.stdout.splitlines()]
    for name in ("python", "torch", "torchvision", "timm", "onnx", "onnxruntime", "onnxsim", "ais_bench", "torch_npu",
                 "ray"):
        assert name in names
    atc_line = next(line for line in result.stdout.splitlines() if "atc" in line.split()[1])
    assert atc_line.startswith("--") and "not on PATH" in atc_line
    assert "providers: " in next(line for line in result.stdout.splitlines() if " onnxruntime " in line)

    fake = tmp_path / "atc"
    fake.write_text("#!/bin/sh\necho 'ATC start working now'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    atc_line = next(line for line in cli("doctor").stdout.splitlines() if "atc" in line.split()[1])
    assert atc_line.startswith("ok") and str(fake) in atc_line


def test_models_lists_the_five_seeds_and_lite0(cli):
    result = cli("models", "--json")
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["resnet50", "resnext50_32x4d", "tresnet_m", "efficientnet_b3", "resnest50",
                                         "efficientnet_lite0"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["resnest50"]["arch"] == "resnest50d"
    assert (by_name["resnest50"]["spec"]["resize"], by_name["resnest50"]["spec"]["crop"]) == (320, 256)
    lite0 = by_name["efficientnet_lite0"]
    assert lite0["arch"] == "tf_efficientnet_lite0" and not lite0["seed"]
    assert lite0["spec"] == {"resize": 256, "crop": 224, "interpolation": "bicubic", "mean": [0.5, 0.5, 0.5],
                             "std": [0.5, 0.5, 0.5], "channel_order": "RGB", "long_side": "floor"}
    assert "efficientnet_lite0  timm:tf_efficientnet_lite0 resize 256 -> crop 224, bicubic" in cli("models").stdout
    assert by_name["efficientnet_b3"]["spec"]["channel_order"] == "BGR"
    assert by_name["resnet50"]["spec"]["resize"] == 256 and by_name["resnet50"]["spec"]["crop"] == 224


def test_models_resolves_any_timm_name_from_its_pretrained_cfg(cli):
    row = json.loads(cli("models", "vit_small_patch16_224", "--json").stdout)
    assert row["arch"] == "vit_small_patch16_224" and row["spec_source"] == "timm pretrained_cfg"
    assert row["spec"]["resize"] == 248 and row["spec"]["crop"] == 224  # floor(224 / 0.9)
    assert row["spec"]["mean"] == [0.5, 0.5, 0.5] and row["spec"]["interpolation"] == "bicubic"


def test_models_applies_overrides(cli):
    row = json.loads(cli("models", "efficientnet_b3", "--channel-order", "rgb", "--mean", "0.5", "--json").stdout)
    assert row["spec"]["channel_order"] == "RGB" and row["spec"]["mean"] == [0.5, 0.5, 0.5]


@pytest.mark.parametrize(
    "args, fragment",
    [(["models", "resnet5O"], "did you mean resnet50"), (["models", "resnet50", "--mean", "a,b,c"], "three")],
)
def test_models_errors(cli, args, fragment):
    result = cli(*args)
    assert result.exit_code != 0 and fragment in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_says_how_to_finish_the_job(cli, monkeypatch):
    @click.command()
    def slow() -> None:
        raise KeyboardInterrupt

    original = cli_module.LazyGroup.get_command
    monkeypatch.setattr(cli_module.LazyGroup, "get_command",
                        lambda self, ctx, name: slow if name == "slow" else original(self, ctx, name))
    result = cli("slow")
    assert result.exit_code == 130 and "rerun with --resume" in result.stderr
