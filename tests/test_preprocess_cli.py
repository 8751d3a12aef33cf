"""``infer-kit preprocess`` on the command line, including a worker killed mid-run and --resume."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from infer_kit.artifacts import read_folder_manifest


@pytest.fixture
def val(photo_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "val"
    folder.mkdir()
    for path in sorted(photo_dir.glob("*.jpg")):
        shutil.copyfile(path, folder / f"{path.stem}.JPEG")
    return folder


def test_summary_names_layout_spec_and_speed(cli, val, tmp_path):
    r = cli("preprocess", "--preset", "resnet", val, tmp_path / "prep")
    assert r.exit_code == 0, r.stderr
    assert "preprocessed 7 images" in r.stdout and "0 skipped" in r.stdout
    assert "layout aipp: uint8 256x256x3, 196,608 bytes per file" in r.stdout
    assert "spec: resize 256 -> crop 224, bilinear, RGB" in r.stdout and "from preset 'resnet'" in r.stdout
    assert "images/s" in r.stdout
    assert len(list((tmp_path / "prep").glob("*.bin"))) == 7


def test_help_says_default_layout_and_ways_to_pick_the_spec(cli):
    r = cli("preprocess", "--help")
    assert r.exit_code == 0
    text = " ".join(r.stdout.split())
    assert "defaults to aipp" in text and "--for" in text and "--arch" in text and "--preset" in text
    assert "--resume" in text and "--on-error" in text


def test_spec_overrides_and_float_layout(cli, val, tmp_path):
    r = cli("preprocess", "--preset", "resnet", "--resize", "128", "--crop", "112", "--layout", "float",
            val, tmp_path / "prep")
    assert r.exit_code == 0, r.stderr
    manifest = read_folder_manifest(tmp_path / "prep")
    assert (manifest.spec.resize, manifest.spec.crop, manifest.layout) == (128, 112, "float")
    assert manifest.bytes_per_file == 3 * 112 * 112 * 4
    assert all(p.stat().st_size == manifest.bytes_per_file for p in (tmp_path / "prep").glob("*.bin"))


def test_errors_are_one_line_with_exit_code_1(cli, val, tmp_path):
    r = cli("preprocess", "--preset", "resnet", tmp_path / "missing", tmp_path / "prep")
    assert r.exit_code == 1
    assert r.stderr.strip().startswith("infer-kit: error: source folder not found") and "Traceback" not in r.stderr
    r = cli("preprocess", val, tmp_path / "prep")
    assert r.exit_code == 1 and "--for MODEL_FILE" in r.stderr
    r = cli("preprocess", "--preset", "resnet", "--model", "resnet50", val, tmp_path / "prep")
    assert r.exit_code == 1 and "give only one of" in r.stderr


def test_skip_lists_bad_files_in_the_summary(cli, val, tmp_path):
    (val / "zero.JPEG").write_bytes(b"")
    r = cli("preprocess", "--preset", "resnet", val, tmp_path / "stop")
    assert r.exit_code == 1 and "zero.JPEG" in r.stderr and "empty file" in r.stderr
    r = cli("preprocess", "--preset", "resnet", "--on-error", "skip", val, tmp_path / "skip")
    assert r.exit_code == 0
    assert "1 skipped" in r.stdout and "skipped zero.JPEG: empty file (0 bytes)" in r.stdout


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(text.split()[0]))
    return children


def _grandchildren(pid: int) -> list[int]:
    children = _children()
    return [g for c in children.get(pid, []) for g in children.get(c, [])]


@pytest.mark.skipif(not Path("/proc/self/stat").exists() or "forkserver" not in multiprocessing.get_all_start_methods(),
                    reason="needs /proc and the forkserver start method")
def test_killed_worker_then_resume_gives_identical_files(cli, photo_dir, tmp_path):
    src = tmp_path / "many"
    src.mkdir()
    photos = [Image.open(p).convert("RGB") for p in sorted(photo_dir.glob("*.jpg"))]
    distinct = []
    for index in range(10):
        distinct.append(src / f"im{index:04d}.jpg")
        photos[index % len(photos)].resize((480 - index, 360 + index)).save(distinct[-1])
    count = 200
    for index in range(10, count):
        shutil.copyfile(distinct[index % 10], src / f"im{index:04d}.jpg")
    args = ["preprocess", "--preset", "resnet", "--resize", "320", "--workers", "2"]
    reference = tmp_path / "reference"
    assert cli(*args, src, reference).exit_code == 0

    dst = tmp_path / "killed"
    exe = Path(sys.executable).with_name("infer-kit")
    proc = subprocess.Popen([str(exe), *args, str(src), str(dst)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    killed = None
    try:
        deadline = time.monotonic() + 60
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            workers = _grandchildren(proc.pid)
            if workers and dst.is_dir() and len(list(dst.glob("*.bin"))) >= 3:
                killed = workers[0]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.001)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert killed is not None, "the run ended before a worker could be killed"
    assert proc.returncode == 1, err
    assert "worker process died" in err and "--resume" in err and "Traceback" not in err
    done = len(list(dst.glob("*.bin")))
    assert 3 <= done < count
    assert read_folder_manifest(dst).raw["complete"] is False
    time.sleep(0.2)
    assert not _grandchildren(proc.pid) and not _children().get(proc.pid)

    r = cli(*args, "--resume", src, dst)
    assert r.exit_code == 0, r.stderr
    assert f"{done} kept from an earlier run" in r.stdout
    assert not list(dst.glob(".*.partial"))
    names = sorted(p.name for p in reference.glob("*.bin"))
    assert sorted(p.name for p in dst.glob("*.bin")) == names and len(names) == count
    assert all((dst / n).read_bytes() == (reference / n).read_bytes() for n in names)
    assert read_folder_manifest(dst).raw["complete"] is True
