"""Faults across processes: kill -9 and SIGTERM of a command with workers, two writers, orphans, a plain install.

Each test starts the real ``infer-kit`` command in a subprocess and is bounded in time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from proc_support import descendants

from infer_kit.errors import InferKitError

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "infer_kit"]


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture(scope="module")
def many_images(tmp_path_factory) -> Path:
    """Enough large-ish JPEGs that two workers need several seconds."""
    folder = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)
    for i in range(500):
        Image.fromarray(np.roll(base, i, axis=1)).save(folder / f"img_{i:04d}.jpg", quality=90)
    return folder


def _start(*args: str | Path, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd)


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_killing_preprocess_stops_its_workers_and_the_writes(many_images, tmp_path, how):
    dst = tmp_path / "prep"
    process = _start("preprocess", "--preset", "resnet", "--workers", "2", many_images, dst)
    try:
        assert _wait_for(lambda: dst.is_dir() and len(list(dst.glob("*.bin"))) >= 20, 60), process.stderr
        children = descendants(process.pid)
        assert children, "the command should have worker processes"
        process.send_signal(how)
        process.wait(timeout=30)
        assert _wait_for(lambda: not _alive(children), 5), f"still alive: {_alive(children)}"
        written = len(list(dst.glob("*.bin")))
        time.sleep(1.0)
        assert len(list(dst.glob("*.bin"))) == written < 500  # nothing writes after the command is gone
        if how == signal.SIGTERM:
            assert process.returncode == 143 and "terminated; completed files are kept" in process.stderr.read()
    finally:
        process.kill()
        process.wait(timeout=30)
    resumed = subprocess.run([*CLI, "preprocess", "--preset", "resnet", "--workers", "2", "--resume", many_images,
                              dst], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert len(list(dst.glob("*.bin"))) == 500 and not list(dst.glob(".*.partial"))


@pytest.mark.slow
def test_resume_right_after_a_kill_gives_the_bytes_of_an_uninterrupted_run(many_images, tmp_path):
    dst = tmp_path / "prep"
    process = _start("preprocess", "--preset", "resnet", "--workers", "2", many_images, dst)
    try:
        assert _wait_for(lambda: dst.is_dir() and len(list(dst.glob("*.bin"))) >= 20, 60)
        process.kill()  # and resume at once, while its workers may still be finishing a chunk
        resumed = subprocess.run([*CLI, "preprocess", "--preset", "resnet", "--workers", "2", "--resume",
                                  many_images, dst], capture_output=True, text=True, timeout=300)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert resumed.returncode == 0, resumed.stderr
    clean = subprocess.run([*CLI, "preprocess", "--preset", "resnet", "--workers", "2", many_images,
                            tmp_path / "clean"], capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr
    names = sorted(p.name for p in (tmp_path / "clean").glob("*.bin"))
    assert names == sorted(p.name for p in dst.glob("*.bin")) and len(names) == 500
    assert all((dst / n).read_bytes() == (tmp_path / "clean" / n).read_bytes() for n in names)


def _run_inputs(folder: Path, count: int) -> Path:
    from test_run_support import float_folder

    return float_folder(folder, count)


@pytest.mark.slow
def test_killing_a_multi_device_run_stops_its_workers(tmp_path):
    from test_run_support import float_model

    model = float_model(tmp_path / "m.onnx", batch=1)
    prep = _run_inputs(tmp_path / "prep", 3000)
    out = tmp_path / "out"
    process = _start("run", "-m", model, "-i", prep, "-o", out, "--output-dirname", "r", "--device", "0,1",
                     "--loop", "20")
    try:
        result = out / "r"  # ais_bench's layout: r/device0_0/ and r/device1_1/, each on every input

        def outputs() -> int:
            return sum(len(os.listdir(result / d)) for d in ("device0_0", "device1_1") if (result / d).is_dir())

        assert _wait_for(lambda: outputs() >= 20, 60), process.stderr
        children = descendants(process.pid)
        assert children
        process.kill()
        process.wait(timeout=30)
        assert _wait_for(lambda: not _alive(children), 5), f"still alive: {_alive(children)}"
        written = outputs()
        time.sleep(1.0)
        assert outputs() == written < 2 * 3000
    finally:
        process.kill()
        process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_a_multi_device_run_at_once(tmp_path, how):
    """A worker's task is a whole device's run: the command must stop it, not wait for it to finish."""
    from test_run_support import float_model

    model = float_model(tmp_path / "m.onnx", batch=1)
    prep = _run_inputs(tmp_path / "prep", 3000)
    out = tmp_path / "out"
    args = ("run", "-m", model, "-i", prep, "-o", out, "--output-dirname", "r", "--device", "0,1", "--loop", "20")
    result = out / "r"

    def outputs() -> int:
        return sum(len(os.listdir(result / d)) for d in ("device0_0", "device1_1") if (result / d).is_dir())

    process = subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # its own group, as a terminal's foreground job
    try:
        assert _wait_for(lambda: outputs() >= 20, 60), process.stderr
        children = descendants(process.pid)
        # Ctrl-C reaches the whole foreground group; SIGTERM (kill, a job scheduler) only the command
        os.killpg(process.pid, how) if how == signal.SIGINT else process.send_signal(how)
        started = time.monotonic()
        process.wait(timeout=60)
        stopped_after = time.monotonic() - started
        assert process.returncode == (130 if how == signal.SIGINT else 143), process.stderr.read()
        assert stopped_after < 10, f"took {stopped_after:.1f} s"
        assert _wait_for(lambda: not _alive(children), 5), f"still alive: {_alive(children)}"
        written = outputs()
        time.sleep(1.0)
        assert outputs() == written < 2 * 3000  # stopped, not finished, and nothing writes on
        assert not list(result.rglob(".*.partial"))  # each worker finished the file it was writing and stopped
    finally:
        process.kill()
        process.wait(timeout=30)
    resumed = subprocess.run([*CLI, *map(str, args), "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert outputs() == 2 * 3000


@pytest.mark.slow
def test_a_second_writer_is_refused_naming_the_first(many_images, tmp_path):
    dst = tmp_path / "prep"
    first = _start("preprocess", "--preset", "resnet", "--workers", "2", many_images, dst)
    try:
        assert _wait_for(lambda: dst.is_dir() and any(dst.glob("*.bin")), 60)
        second = subprocess.run([*CLI, "preprocess", "--preset", "resnet", "--resume", many_images, dst],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 1
        assert f"destination {dst} is in use by pid {first.pid}" in second.stderr
        assert second.stderr.count("\n") == 1
    finally:
        first.kill()
        first.wait(timeout=30)


def _pid(_: int) -> int:
    return os.getpid()


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_a_worker_stopped_by_someone_else_is_one_error():
    """SIGTERM ends a worker's task (so its writers finish their file); sent by anyone but the command, the command
    says so in one line instead of exiting silently."""
    from infer_kit.workers import process_pool

    with pytest.raises(InferKitError, match="a test worker process was stopped \\(SIGTERM\\): rerun"):
        with process_pool(1, what="test", hint="rerun") as pool:
            worker = pool.submit(_pid, 0).result()
            task = pool.submit(_sleep, 30)
            time.sleep(0.5)
            os.kill(worker, signal.SIGTERM)
            task.result(timeout=20)


def test_a_worker_that_cannot_start_says_why():
    from infer_kit.workers import process_pool

    with pytest.raises(InferKitError, match="a test worker process could not start: RuntimeError: no GPU here"):
        with process_pool(1, what="test", hint="-", initializer=_refuse_to_start) as pool:
            pool.submit(abs, -1).result()


def _refuse_to_start() -> None:
    raise RuntimeError("no GPU here")


@pytest.mark.slow
def test_a_plain_install_runs_workers_from_inside_the_source_checkout(tmp_path, photo_dir):
    """The forkserver's workers import the installed package, not the checkout's infer_kit/ in the cwd."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path,
                    ROOT], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("infer_kit-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    deps = subprocess.run([sys.executable, "-c", "import numpy, os; print(os.path.dirname(os.path.dirname("
                           "numpy.__file__)))"], capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps.pth").write_text(deps + "\n")  # the dependencies of this environment, not its infer_kit
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", wheel], check=True, timeout=300)
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(30):
        for photo in sorted(photo_dir.iterdir())[:1]:
            (images / f"p{i}.jpg").write_bytes(photo.read_bytes())
    result = subprocess.run([venv / "bin" / "infer-kit", "preprocess", "--preset", "resnet", "--layout", "aipp",
                             "--workers", "2", images, tmp_path / "out"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "with 2 workers" in result.stdout and len(list((tmp_path / "out").glob("*.bin"))) == 30
