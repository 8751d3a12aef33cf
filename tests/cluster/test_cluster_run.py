"""run --engine ray on a real multi-node cluster: the same bytes, a node lost mid-run, the shared-storage check,
--resume after the driver is killed, Ctrl-C, NPU actors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ray_support import CliNode, assert_same_tree, load_summary, partials, processes_titled

from infer_kit.errors import BackendUnavailable, InferKitError
from infer_kit.runtime import run


def _names(summary: dict) -> dict:
    return {int(k): ([Path(p).name for p in v["infiles"]], [Path(p).name for p in v["outfiles"]])
            for k, v in summary["filesinfo"].items()}


def _ray_run(cluster, data, out: Path, name: str, **kwargs):
    return run(data["model"], data["prep"], out, output_dirname=name, engine="ray", address=cluster.address, **kwargs)


def test_outputs_and_summary_equal_a_single_process_run(cluster, data, reference, tmp_path):
    result = _ray_run(cluster, data, tmp_path, "ray")
    assert_same_tree(reference["dir"], result.result_dir)
    summary = load_summary(tmp_path, "ray")
    assert list(summary) == list(reference["summary"])  # ais_bench's keys, in its order
    assert _names(summary) == _names(reference["summary"])  # the same sample ids name the same files
    info = summary["infer_kit"]
    assert (info["processed"], info["padded"], info["batches"], info["engine"]) == (203, 1, 51, "ray")
    assert info["outputs"] == reference["summary"]["infer_kit"]["outputs"]
    ray = info["ray"]
    assert len(ray["per_node"]) == 2 and sum(n["images"] for n in ray["per_node"]) == 203  # both nodes worked
    assert ray["requeued_tasks"] == 0 and ray["lost_actors"] == [] and not partials(result.result_dir)
    assert [a["threads"] for a in ray["actors"]] == [1, 1]  # a CPU actor computes with the CPUs Ray gave it
    assert not (tmp_path / ".ray.lock").exists() and (tmp_path / ".ray.run.json").is_file()


def test_the_auto_dynamic_shape_mode_runs_each_npy_at_its_shape_on_the_cluster(cluster, tmp_path):
    """A shape-range model has no one input shape: the actors' warm-up on zeros must not need one."""
    import numpy as np
    from test_atc_support import tiny_classifier

    from infer_kit.converter import DynamicRequest, compile_om

    model, _ = tiny_classifier(tmp_path)
    [ranged] = compile_om(model, soc="Ascend910A", batch_sizes=[], emulate=True, aipp="none", force=True,
                          dynamic=DynamicRequest(input_shape="actual_input_1:1~4,3,32~40,32~40"))
    files = tmp_path / "npy"
    files.mkdir()
    rng = np.random.default_rng(0)
    for i, (n, hw) in enumerate([(1, 32), (2, 36), (3, 40), (1, 40), (4, 33)]):
        np.save(files / f"x_{i}.npy", rng.standard_normal((n, 3, hw, hw)).astype(np.float32))
    local = run(ranged.paths.emulated, files, tmp_path, output_dirname="local", auto_set_dymshape_mode=True)
    spread = run(ranged.paths.emulated, files, tmp_path, output_dirname="ray", auto_set_dymshape_mode=True,
                 engine="ray", address=cluster.address)
    assert_same_tree(local.result_dir, spread.result_dir)
    assert spread.summary["infer_kit"]["processed"] == 5


def test_a_node_removed_mid_run_has_its_tasks_redone_elsewhere(cluster, extra_node, data, reference, tmp_path,
                                                               slow_loop):
    result_dir = tmp_path / "lost"
    removed = {}

    def remove_when_running() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if result_dir.is_dir() and len(list(result_dir.glob("*.bin"))) >= 16:  # 4 of 51 batches written
                removed["at"] = time.monotonic()
                cluster.remove_node(extra_node, graceful=False)  # SIGKILL of its raylet and workers: a crash
                return
            time.sleep(0.02)

    killer = threading.Thread(target=remove_when_running, daemon=True)
    killer.start()
    began = time.monotonic()
    from infer_kit.cluster import RayOptions

    result = _ray_run(cluster, data, tmp_path, "lost", loop=slow_loop, ray_options=RayOptions(files_per_task=8))
    killer.join(5)
    assert "at" in removed, "the node was not removed while the run was going"
    ray = result.summary["infer_kit"]["ray"]
    print(f"\nnode removed {removed['at'] - began:.1f} s into the run; {ray['requeued_tasks']} task(s) re-queued, "
          f"{ray['rewritten_files']} output(s) rewritten, run {time.monotonic() - began:.1f} s")
    assert len(ray["lost_actors"]) == 1 and ray["lost_actors"][0].endswith("@extra")
    assert ray["requeued_tasks"] >= 1 and ray["duplicate_results"] == 0
    assert_same_tree(reference["dir"], result.result_dir)  # every output there, every byte the same
    assert not partials(result.result_dir)  # nothing half-written left
    assert _names(load_summary(tmp_path, "lost")) == _names(reference["summary"])


def _without_share(cluster, name: str, **mounts) -> CliNode:
    return CliNode(cluster.address, node_name=name, **mounts)


def test_a_node_that_cannot_write_the_output_folder_is_named(cluster, data, tmp_path):
    node = _without_share(cluster, "nfs-ro", readonly=[str(tmp_path)])
    try:
        with pytest.raises(InferKitError) as err:
            run(data["model"], data["prep"], tmp_path / "out", output_dirname="x", engine="ray",
                address=cluster.address)
    finally:
        node.stop()
    text = err.value.one_line()
    print("\n" + text)
    assert f"node 127.0.0.1 (name nfs-ro; id {node.node_id[:12]}) cannot write the output folder" in text
    assert f"{tmp_path / 'out' / 'x'} (Read-only file system)" in text and "shared file system" in text
    assert not list((tmp_path / "out" / "x").iterdir())  # no output and no probe left: refused before any compute


def test_a_node_that_does_not_see_the_inputs_is_named(cluster, data, tmp_path):
    node = _without_share(cluster, "no-share", hidden=[str(data["root"])])
    try:
        with pytest.raises(InferKitError) as err:
            _ray_run(cluster, data, tmp_path, "x")
    finally:
        node.stop()
    text = err.value.one_line()
    print("\n" + text)
    assert f"(name no-share; id {node.node_id[:12]}) cannot read {data['model']} (No such file or directory)" in text
    assert not (tmp_path / "x").exists()  # checked before the result folder was made


def test_a_node_with_another_folder_at_the_output_path_is_named(cluster, data, tmp_path):
    """Its own disk where the share should be: it cannot see the folder the driver made."""
    node = _without_share(cluster, "local-disk", hidden=[str(tmp_path)])
    try:
        with pytest.raises(InferKitError) as err:
            _ray_run(cluster, data, tmp_path / "out", "x")
    finally:
        node.stop()
    text = err.value.one_line()
    print("\n" + text)
    assert f"(name local-disk; id {node.node_id[:12]}) cannot see the output folder {tmp_path / 'out' / 'x'}" in text


def _driver(cluster, data, out: Path, loop: int) -> subprocess.Popen:
    """``infer-kit run --engine ray`` in its own process (killed or interrupted by the test)."""
    argv = [sys.executable, "-m", "infer_kit", "run", "-m", str(data["model"]), "-i", str(data["prep"]), "-o",
            str(out), "--output-dirname", "r", "--engine", "ray", "--address", cluster.address, "--loop", str(loop)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_outputs(folder: Path, count: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if folder.is_dir() and len(list(folder.glob("*.bin"))) >= count:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the driver ended early ({proc.returncode}): {proc.communicate()}")
        time.sleep(0.02)
    raise AssertionError("the driver wrote nothing")


def _wait_actors_gone(timeout: float = 30) -> float:
    began = time.monotonic()
    while processes_titled(b"ray::RunActor") and time.monotonic() - began < timeout:
        time.sleep(0.05)
    return time.monotonic() - began


def test_resume_after_the_driver_is_killed_finishes_the_job(cluster, data, reference, tmp_path, slow_loop):
    proc = _driver(cluster, data, tmp_path, slow_loop)
    _wait_outputs(tmp_path / "r", 40, proc)
    proc.kill()  # SIGKILL: the driver cleans up nothing
    proc.wait(10)
    took = _wait_actors_gone()
    assert not processes_titled(b"ray::RunActor"), "the killed driver's actors still run"
    before = len(list((tmp_path / "r").glob("*.bin")))
    result = run(data["model"], data["prep"], tmp_path, output_dirname="r", resume=True, engine="ray",
                 address=cluster.address)
    info = result.summary["infer_kit"]
    print(f"\nactors gone {took:.2f} s after the kill; killed with {before} outputs, the resume skipped "
          f"{info['skipped']} and ran {info['processed']}")
    assert 0 < info["skipped"] <= before < 203 and info["skipped"] + info["processed"] == 203
    assert_same_tree(reference["dir"], result.result_dir)
    assert not partials(result.result_dir)


@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGINT, 130, "interrupted"),
                                                  (signal.SIGTERM, 143, "terminated")])
def test_ctrl_c_and_sigterm_cancel_the_cluster_work(cluster, data, tmp_path, slow_loop, sig, code, word):
    proc = _driver(cluster, data, tmp_path, slow_loop)
    _wait_outputs(tmp_path / "r", 16, proc)
    sent = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    print(f"\nexit {proc.returncode} {took:.2f} s after {sig.name}: {err.strip().splitlines()[-1]}")
    assert proc.returncode == code and word in err.strip().splitlines()[-1] and took < 15
    _wait_actors_gone()
    assert not processes_titled(b"ray::RunActor")
    done = len(list((tmp_path / "r").glob("*.bin")))
    time.sleep(1.0)
    assert len(list((tmp_path / "r").glob("*.bin"))) == done < 203  # nothing writes after the interrupt
    assert not (tmp_path / ".r.lock").exists() and not partials(tmp_path / "r")


def test_an_om_runs_on_one_actor_per_npu_with_its_device_visible_as_0(cluster, data, reference, tmp_path):
    """Ray knows NPU as an accelerator and sets ASCEND_RT_VISIBLE_DEVICES per actor. Here the NPUs are declared,
    not real, and the ais_bench test double runs the .om; this machine (the head) has no ais_bench at all."""
    from test_run_support import FAKE_AIS_BENCH, om_model

    (tmp_path / "model").mkdir()
    model = om_model(tmp_path / "model", with_manifest=True)
    bare = cluster.add_node(num_cpus=1, resources={"NPU": 1}, node_name="npu-bare")  # no ais_bench there
    try:
        with pytest.raises(BackendUnavailable) as err:
            run(model, data["prep"], tmp_path, output_dirname="bare", engine="ray", address=cluster.address)
    finally:
        cluster.remove_node(bare)
    assert f"Ray worker npu0@npu-bare on node 127.0.0.1 (name npu-bare; id {bare.node_id[:12]}" in str(err.value)
    assert "backend 'ascend' is not available here" in str(err.value) and err.value.exit_code == 2

    node = cluster.add_node(num_cpus=1, resources={"NPU": 2}, node_name="npu-node",
                            env_vars={"PYTHONPATH": str(FAKE_AIS_BENCH)})
    try:
        result = run(model, data["prep"], tmp_path, output_dirname="npu", engine="ray", address=cluster.address)
    finally:
        cluster.remove_node(node)
    info = result.summary["infer_kit"]
    assert info["backend"] == "ascend" and info["provider"] == "ais_bench"
    actors = info["ray"]["actors"]
    assert [a["actor"] for a in actors] == ["npu0@npu-node", "npu1@npu-node"]
    assert sorted(a["visible_devices"]["ASCEND_RT_VISIBLE_DEVICES"] for a in actors) == ["0", "1"]
    assert_same_tree(reference["dir"], result.result_dir)  # the .om holds the emulated artifact's graph


def test_the_driver_never_opens_the_model_itself(cluster, data, tmp_path, monkeypatch):
    """An .om does not open on a CPU-only head: with --engine ray the model is opened by the actors only."""
    import infer_kit.runtime.stage as stage

    def refuse(*args, **kwargs):
        raise AssertionError("the driver opened a runner")

    monkeypatch.setattr(stage, "open_runner", refuse)
    result = _ray_run(cluster, data, tmp_path, "noopen")
    assert result.summary["infer_kit"]["processed"] == 203


def test_no_ray_process_listens_beyond_loopback(cluster):
    from ray_support import non_loopback_listeners

    assert os.environ.get("RAY_TMPDIR") and non_loopback_listeners() == []
