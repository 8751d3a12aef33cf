"""Connecting: --address auto with no cluster, auto finding the cluster `ray start` left, HOST:PORT in use."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def _py(code: str, *, env: dict | None = None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_auto_with_no_cluster_is_one_line_at_once(tmp_path):
    # A fresh pid namespace: Ray's auto also looks for any gcs_server process on the host (this session's
    # cluster is one); a fresh RAY_TMPDIR: no address file either.
    code = ("import time\nfrom infer_kit.cluster import connect\nfrom infer_kit.errors import InferKitError\n"
            "t = time.perf_counter()\ntry:\n    connect('auto')\n"
            "except InferKitError as e:\n    print(round(time.perf_counter() - t, 2), e.one_line())\n")
    out = _py(code, env={"RAY_TMPDIR": str(tmp_path)}, prefix=("unshare", "-p", "-f", "--mount-proc"))
    seconds, text = out.stdout.strip().split(" ", 1)
    assert text.startswith("--address auto found no running Ray cluster on this machine: start one with "
                           "'ray start --head'"), out.stderr[-2000:]
    assert float(seconds) < 10


def test_auto_finds_the_cluster_ray_start_left_on_this_machine(cluster):
    code = ("from infer_kit.cluster import cluster_nodes, connect\n"
            "print(connect('auto').gcs_address, len(cluster_nodes()))\n")
    out = _py(code)  # RAY_TMPDIR is the cluster's: its address file is there
    assert out.stdout.split() == [cluster.address, str(len(cluster.nodes))], out.stderr[-2000:]


def test_a_second_cluster_address_in_one_process_is_refused(cluster):
    import pytest

    from infer_kit.cluster import connect
    from infer_kit.errors import InferKitError

    assert connect(cluster.address).gcs_address == cluster.address  # the fixture's connection, reused
    began = time.perf_counter()
    with pytest.raises(InferKitError, match="already connected to the Ray cluster at"):
        connect("127.0.0.1:1")
    assert time.perf_counter() - began < 5
