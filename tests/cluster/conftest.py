"""Fixtures of the cluster tests: a real multi-node Ray cluster on this host (several raylets).

These tests run only inside a loopback-only network namespace (Ray would otherwise bind the
host's interface): ``tests/test_ray_cluster.py`` runs this folder as ``unshare -n pytest
tests/cluster`` (or ``unshare -rn`` for a user) and skips with the reason where neither is
allowed. Collected anywhere else, this folder holds no tests.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from ray_support import FAST_HEALTH_CHECK, LocalCluster, is_private_netns  # noqa: E402

collect_ignore_glob = [] if is_private_netns() else ["test_*.py"]


@pytest.fixture(scope="session")
def cluster():
    """The head (the driver's node, 1 CPU) and one more node (1 CPU); tests that remove a node add their own."""
    pytest.importorskip("ray")
    lc = LocalCluster([{"num_cpus": 1, "_system_config": FAST_HEALTH_CHECK}, {"num_cpus": 1, "node_name": "w1"}])
    lc.start()
    print(f"\ncluster of {len(lc.nodes)} nodes up in {lc.start_s:.2f} s")
    yield lc
    print(f"\ncluster down in {lc.shutdown():.2f} s")


@pytest.fixture
def extra_node(cluster):
    """A third node for this test only (removed at the end unless the test removed it)."""
    node = cluster.add_node(num_cpus=1, node_name="extra")
    yield node
    if node in cluster.nodes:
        cluster.remove_node(node)


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """A tiny emulated artifact (batch 4) and 203 input files (51 batches, the last one padded)."""
    from test_run_support import aipp_folder, emulated_artifact

    root = tmp_path_factory.mktemp("data")
    return {"root": root, "model": emulated_artifact(root, batch=4), "prep": aipp_folder(root / "prep", 203)}


@pytest.fixture(scope="session")
def reference(data, tmp_path_factory):
    """The single-process run every cluster run must equal, byte for byte."""
    from infer_kit.runtime import run

    result = run(data["model"], data["prep"], tmp_path_factory.mktemp("ref"), output_dirname="ref")
    return {"dir": result.result_dir, "summary": result.summary}


@pytest.fixture(scope="session")
def slow_loop(data):
    """A --loop that makes one batch take about 40 ms here, so a run lasts long enough to lose a node under it
    (the outputs stay the same: every repeat computes the same batch)."""
    import numpy as np

    from infer_kit.runtime import open_runner

    with open_runner("onnxruntime", str(data["model"]), threads=1) as runner:
        feeds = [np.zeros(runner.inputs[0].shape, np.uint8)]
        for _ in range(50):
            runner.infer(feeds)
        began = time.perf_counter()
        for _ in range(500):
            runner.infer(feeds)
        per_infer = (time.perf_counter() - began) / 500
    return max(50, int(0.040 / per_infer))
