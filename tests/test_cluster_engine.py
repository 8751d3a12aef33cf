"""--engine ray without a cluster: what is refused before any work, and how, in one line each."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from infer_kit.errors import InferKitError

NO_RAY = "import sys; sys.modules['ray'] = None\nfrom infer_kit.cli import main\nmain(sys.argv[1:])\n"


def _cli_without_ray(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_RAY, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [["run", "-m", "model.onnx", "-i", "prep"], ["preprocess", "src", "dst"],
                                     ["evaluate", "result", "--labels", "val_label.txt"]])
def test_without_ray_installed_the_engine_is_one_line_and_exit_2(command, tmp_path):
    out = _cli_without_ray(*command, "--engine", "ray")
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == ("infer-kit: error: --engine ray needs Ray, which is not installed here: "
                                  "pip install 'infer-kit[ray]'")


def test_without_ray_installed_a_ray_pipeline_is_exit_2(tmp_path):
    config = tmp_path / "p.toml"
    config.write_text('[model]\nonnx = "m.onnx"\n[data]\nimages = "imgs"\n[cluster]\nengine = "ray"\n')
    out = _cli_without_ray("pipeline", str(config))
    assert out.returncode == 2 and "pip install 'infer-kit[ray]'" in out.stderr, out.stderr


def test_address_needs_the_ray_engine(cli):
    result = cli("run", "-m", "model.onnx", "-i", "prep", "--address", "auto")
    assert result.exit_code == 1
    assert "--address auto needs --engine ray: add --engine ray, or drop --address" in result.stderr


def test_the_ray_engine_refuses_what_it_cannot_spread(tmp_path):
    pytest.importorskip("ray")
    from infer_kit.runtime import run

    with pytest.raises(InferKitError, match="pure-performance mode has none"):
        run(tmp_path / "model.onnx", engine="ray")
    with pytest.raises(InferKitError, match="with --engine ray every device of the cluster is used"):
        run(tmp_path / "model.onnx", tmp_path, devices=[0, 1], engine="ray")
    with pytest.raises(InferKitError, match="with --engine ray every device of the cluster is used"):
        run(tmp_path / "model.onnx", tmp_path, devices="3", engine="ray")  # not silently ignored
    for flag, kwargs in (("--pipeline", {"pipeline": True, "pipeline_threads": 2}), ("--profiler", {"profiler": True}),
                         ("--dump", {"dump": True})):
        with pytest.raises(InferKitError, match=f"{flag} runs on this machine only: --engine ray does not spread it"):
            run(tmp_path / "model.onnx", tmp_path, tmp_path / "out", engine="ray", **kwargs)


def test_addresses_are_checked_before_ray_starts_and_an_empty_port_fails_fast():
    pytest.importorskip("ray")
    from infer_kit.cluster import connect

    with pytest.raises(InferKitError, match="--address 'nohost' is not auto or HOST:PORT"):
        connect("nohost")
    with pytest.raises(InferKitError, match="Ray Client addresses are not supported"):
        connect("ray://10.0.0.1:10001")
    began = time.perf_counter()
    with pytest.raises(InferKitError, match=r"no Ray cluster at 127\.0\.0\.1:9 \(Connection refused\): start one"):
        connect("127.0.0.1:9")  # ray.init alone would retry for about 14 minutes
    assert time.perf_counter() - began < 10


def test_the_cluster_section_of_a_pipeline_config_is_checked(tmp_path):
    from infer_kit.pipeline import config_from_dict

    raw = {"model": {"onnx": "m.onnx"}, "data": {"images": "imgs"}}
    with pytest.raises(InferKitError, match=r"\[cluster\] engine must be one of local, ray, not 'spark'"):
        config_from_dict({**raw, "cluster": {"engine": "spark"}}, base=tmp_path, where="p.toml")
    with pytest.raises(InferKitError, match=r"\[cluster\] run_resources NPU must be a number of 0 or more"):
        config_from_dict({**raw, "cluster": {"run_resources": {"NPU": -1}}}, base=tmp_path, where="p.toml")
    with pytest.raises(InferKitError, match=r"\[cluster\] address without engine: the rows would run here"):
        config_from_dict({**raw, "cluster": {"address": "10.0.0.1:6379"}}, base=tmp_path, where="p.toml")
    assert config_from_dict({**raw, "cluster": {"engine": "local", "address": "10.0.0.1:6379"}}, base=tmp_path,
                            where="p.toml").cluster.engine == "local"
    config = config_from_dict({**raw, "cluster": {"engine": "ray", "address": "10.0.0.1:6379",
                                                 "run_resources": {"NPU": 1, "CPU": 0}}}, base=tmp_path, where="p")
    assert (config.cluster.engine, config.cluster.run_resources) == ("ray", {"NPU": 1, "CPU": 0})


def test_ray_task_options_from_a_resources_table():
    from infer_kit.pipeline.ray_stages import task_options

    assert task_options({"CPU": 2, "GPU": 1, "NPU": 1}) == {"num_cpus": 2, "num_gpus": 1, "resources": {"NPU": 1}}


def test_importing_the_stages_does_not_import_ray():
    code = ("import sys, infer_kit.cluster, infer_kit.runtime, infer_kit.preprocess, infer_kit.postprocess\n"
            "import infer_kit.pipeline.ray_stages, infer_kit.cli\nprint('ray' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]
