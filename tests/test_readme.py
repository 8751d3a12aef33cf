"""The README's examples are checked: every `infer-kit` command line names a real command and real
flags, and the Python example runs (on a tiny model and real images instead of ResNet-50 and ImageNet)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import torch

from infer_kit.cli import cli as group

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(*languages: str) -> list[str]:
    """Fenced code blocks whose info string is one of ``languages`` ('' for none)."""
    blocks, current, language = [], None, ""
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            if current is None:
                current, language = [], line[3:].strip()
            else:
                if language in languages:
                    blocks.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def _command_lines() -> list[str]:
    lines = []
    for block in _blocks("bash", ""):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip().removeprefix("$ ").split("  #")[0].split(" # ")[0].strip()
            if line.startswith("infer-kit "):
                lines.append(line)
    return lines


def _resolve(args: list[str]) -> tuple[click.Command, list[str]]:
    ctx = click.Context(group)
    command: click.Command = group
    rest = [a for a in args if a not in ("-q", "-v")]
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"README names an unknown command: {' '.join(args)}"
        command, rest = sub, rest[1:]
    return command, rest


def test_readme_command_lines_use_real_commands_and_flags():
    lines = _command_lines()
    assert len(lines) >= 35  # the parser found the examples
    for line in lines:
        args = shlex.split(line)[1:]
        command, rest = _resolve(args)
        known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        for arg in rest:
            if arg.startswith("--"):
                flag = arg.split("=")[0]
                assert flag in known, f"README line uses {flag}, which '{command.name}' does not take: {line}"


def test_readme_python_example_runs(tmp_path, monkeypatch):
    from infer_kit.registry import create_model
    from infer_kit.trainer.datasets import write_digits

    example = next(block for block in _blocks("python") if "compile_om" in block)
    data = write_digits(tmp_path / "digits", size=24, limit_train=20, limit_val=12).root
    torch.save({"arch": "test_resnet", "preprocess_spec": {"resize": 24, "crop": 16},
                "state_dict": create_model("test_resnet", num_classes=10).state_dict()}, tmp_path / "resnet50.pth")
    code = (example.replace('"resnet50", "resnet50.pth"', '"test_resnet", "resnet50.pth"')
            .replace('"ImageNet/val"', f'"{data / "val_flat"}"')
            .replace('"val_label.txt"', f'"{data / "val_label.txt"}"'))
    monkeypatch.chdir(tmp_path)
    printed = []
    exec(compile(code, "README.md", "exec"), {"print": printed.append})
    assert len(printed) == 1 and 0.0 <= printed[0] <= 1.0
    assert len(list((tmp_path / "out" / "result").glob("*_0.bin"))) == 12


@pytest.mark.parametrize("section", ["make demo", "make test"])
def test_readme_shows_the_two_commands(section):
    assert section in README.read_text()


def test_readme_precision_mode_table_is_the_code_table():
    """The README shows the one table of ATC precision modes the code uses (converter/precision.py MODES)."""
    from infer_kit.converter import mode_table_markdown

    assert mode_table_markdown() in README.read_text()
