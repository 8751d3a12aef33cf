"""Both a regular and an editable install expose every stage under the one `infer_kit` namespace."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import setuptools

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("trainer", "aipp", "converter", "preprocess", "runtime", "postprocess", "pipeline", "cli")
# Without dependencies (--no-deps) the stages are found, not imported: their public APIs import numpy, PIL, torch.
FIND_ALL = "; ".join(["import importlib.util, infer_kit",
                      *(f"assert importlib.util.find_spec('infer_kit.{s}'), '{s}'" for s in STAGES)])


def _run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    out = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    assert out.returncode == 0, f"{' '.join(args)}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return out.stdout


def _venv(path: Path) -> Path:
    _run(sys.executable, "-m", "venv", str(path))
    return path / "bin" / "python"


def _top_level(python: Path) -> set[str]:
    site = _run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    return {p.name for p in Path(site).iterdir()}


@pytest.mark.slow
def test_wheel_installs_everything_under_infer_kit(tmp_path):
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), ROOT)
    wheel = next(tmp_path.glob("infer_kit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"infer_kit", wheel.name.split("-py")[0] + ".dist-info"}
    for stage in STAGES:
        assert f"infer_kit/{stage}/__init__.py" in names

    python = _venv(tmp_path / "regular")
    _run(str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel))
    _run(str(python), "-c", FIND_ALL, cwd=tmp_path)
    assert not set(STAGES) & _top_level(python)


@pytest.mark.slow
def test_editable_install_maps_the_stage_folders(tmp_path):
    python = _venv(tmp_path / "editable")
    # Build with this interpreter's setuptools (the fresh venv's bundled one predates PEP 660), offline.
    build_env = {**os.environ, "PYTHONPATH": str(Path(setuptools.__file__).parents[1])}
    _run(str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(ROOT), env=build_env)
    where = _run(str(python), "-c", FIND_ALL + "; print(importlib.util.find_spec('infer_kit.converter').origin)",
                 cwd=tmp_path).strip()
    assert Path(where) == ROOT / "converter" / "__init__.py"
    assert not set(STAGES) & _top_level(python)
