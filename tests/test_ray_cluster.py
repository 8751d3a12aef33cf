"""The Ray cluster tests (tests/cluster/) inside a private network namespace, or skipped with the reason.

Ray binds every node to the host's network interface unless there is none, and tests may send traffic
to loopback only, so the cluster suite runs as ``unshare -n`` (root) or ``unshare -rn`` (a user
namespace) with only ``lo`` up; where neither is allowed it is skipped, never run on the real interface.
It starts one 2-node cluster (plus short-lived extra nodes) and takes about 80 s here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ray_support import netns_prefix

SUITE = Path(__file__).resolve().parent / "cluster"
SUITE_TIMEOUT_S = 420


def test_the_cluster_suite_passes_in_a_private_network_namespace(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'infer-kit[ray]')")
    prefix, reason = netns_prefix()
    if prefix is None:
        pytest.skip(f"{reason}: the Ray cluster tests need a loopback-only network namespace")
    # Under `unshare -rn` the inner run is uid 0 and would pick /tmp/pytest-of-root, which it does not own.
    cmd = [*prefix, "sh", "-c", 'ip link set lo up && exec "$@"', "sh", sys.executable, "-m", "pytest", str(SUITE),
           "-q", "-p", "no:cacheprovider", "-rfEs", "--basetemp", str(tmp_path / "inner")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S,
                          env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    lines = [line for line in proc.stdout.splitlines() if "network_util.cc" not in line]
    print("\n".join(lines[-40:]))
    assert proc.returncode == 0, "\n".join(lines[-200:]) + proc.stderr[-3000:]
    last = lines[-1]
    assert " passed" in last and "skipped" not in last and "deselected" not in last, last
