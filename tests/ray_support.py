"""A multi-node Ray cluster on this host for tests, confined to a loopback-only network namespace.

Ray binds every node to the host's network interface unless there is none, and tests here may
send traffic to loopback only, so the cluster tests (``tests/cluster/``) run inside a private
network namespace: ``tests/test_ray_cluster.py`` starts them as ``unshare -n`` (root) or
``unshare -rn`` (a user namespace) with only ``lo`` up, and skips with the reason where neither
is allowed. Every node is started with ``node_ip_address=127.0.0.1`` and its own short temp
folder, so a cluster never finds another one's address file (``address="auto"`` reads it).

    with LocalCluster([{"num_cpus": 1, "_system_config": FAST_HEALTH_CHECK}, {"num_cpus": 1}]) as lc:
        ...                                   # ray.init(address=lc.address) done
        lc.remove_node(lc.nodes[1], graceful=False)   # a crash: SIGKILL of the raylet and its workers

Never ``ray stop`` here: it kills every Ray process on the host by name, other sessions' included.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from proc_support import descendants

# The GCS declares a crashed node dead after ~1.5 s instead of ~15 s (period x failures).
FAST_HEALTH_CHECK = {"health_check_period_ms": 500, "health_check_failure_threshold": 3,
                     "health_check_timeout_ms": 500}
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0", "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
OBJECT_STORE_MB = 80  # Ray's minimum is 75 MiB; its default (30 % of RAM) is far more than tests need


# ------------------------------------------------------------------------------------------ the namespace
def interfaces() -> list[str]:
    """This process's network interfaces (/proc/net/dev is per namespace; /sys/class/net is the host's)."""
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return sorted(line.split(":", 1)[0].strip() for line in lines)


def is_private_netns() -> bool:
    return interfaces() == ["lo"]


def netns_prefix() -> tuple[list[str] | None, str]:
    """The ``unshare`` argv that gives a private network namespace here, or None and why not."""
    if shutil.which("unshare") is None:
        return None, "util-linux 'unshare' is not installed"
    if shutil.which("ip") is None:
        return None, "iproute2 'ip' is not installed (needed to bring loopback up)"
    candidates = ([["unshare", "-n"]] if os.geteuid() == 0 else []) + [["unshare", "-rn"]]
    errors = []
    for argv in candidates:
        probe = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=10)
        if probe.returncode == 0:
            return argv, ""
        errors.append(f"{' '.join(argv)}: {probe.stderr.strip() or probe.returncode}")
    return None, "cannot create a private network namespace (" + "; ".join(errors) + ")"


def listening_sockets() -> list[tuple[str, str, int]]:
    """(proto, address, port) of every listening TCP and bound UDP socket of this namespace."""
    found = []
    for proto, path, state in (("tcp", "/proc/net/tcp", "0A"), ("tcp6", "/proc/net/tcp6", "0A"),
                               ("udp", "/proc/net/udp", "07"), ("udp6", "/proc/net/udp6", "07")):
        try:
            lines = Path(path).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != state:
                continue
            address, port = fields[1].split(":")
            found.append((proto, _decode(address), int(port, 16)))
    return found


def _decode(hexaddr: str) -> str:
    raw = bytes.fromhex(hexaddr)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    return str(ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))))


def non_loopback_listeners() -> list[tuple[str, str, int]]:
    def loopback(text: str) -> bool:
        address = ipaddress.ip_address(text)
        return (getattr(address, "ipv4_mapped", None) or address).is_loopback  # raylets listen on ::ffff:127.0.0.1

    return [s for s in listening_sockets() if not loopback(s[1])]


# ------------------------------------------------------------------------------------------ clusters
class LocalCluster:
    """``ray.cluster_utils.Cluster`` with small, quiet, loopback-only nodes; the driver connects to the head.

    ``nodes[0]`` is the head (the driver's node: never remove it). Each spec takes RayParams keys:
    num_cpus, resources, node_name, _system_config...
    """

    def __init__(self, specs: list[dict[str, Any]] | None = None) -> None:
        self.specs = specs or [{"num_cpus": 1}, {"num_cpus": 1}]
        self.temp_dir = tempfile.mkdtemp(prefix="rk", dir="/tmp")  # short: socket paths stay under 107 bytes
        self.cluster: Any = None
        self.nodes: list[Any] = []
        self.start_s = 0.0

    def _args(self, spec: dict[str, Any]) -> dict[str, Any]:
        return {"num_cpus": 1, "object_store_memory": OBJECT_STORE_MB << 20, "node_ip_address": "127.0.0.1",
                "include_dashboard": False, "temp_dir": os.path.join(self.temp_dir, "ray"), "no_monitor": True,
                "include_log_monitor": False, **spec}

    def start(self) -> LocalCluster:
        os.environ.update(QUIET_ENV)
        os.environ["RAY_TMPDIR"] = self.temp_dir  # the address file address="auto" reads: this cluster's own
        os.makedirs(os.path.join(self.temp_dir, "ray"), exist_ok=True)
        import ray
        from ray.cluster_utils import Cluster

        began = time.perf_counter()
        self.cluster = Cluster(initialize_head=True, head_node_args=self._args(self.specs[0]))
        self.nodes = [self.cluster.head_node]
        for spec in self.specs[1:]:
            self.add_node(**spec)
        self.cluster.wait_for_nodes(timeout=60)
        ray.init(address=self.cluster.address, include_dashboard=False, log_to_driver=False,
                 logging_level="warning")
        self.start_s = time.perf_counter() - began
        return self

    def add_node(self, **spec: Any) -> Any:
        node = self.cluster.add_node(**self._args(spec))
        self.nodes.append(node)
        self.cluster.wait_for_nodes(timeout=60)
        return node

    def remove_node(self, node: Any, *, graceful: bool = True, wait_dead: float = 30.0) -> None:
        """End a (non-head) node; ``graceful=False`` is a crash. Returns once the GCS reports it dead."""
        import ray

        # Ray's crash kills the node's own processes but not the workers they started, which keep serving direct
        # actor calls for a while: a node that loses power loses them too, so they are killed with it.
        workers = set() if graceful else descendants(
            *(info.process.pid for info in node.all_processes.get("raylet", [])))
        self.cluster.remove_node(node, allow_graceful=graceful)
        for pid in workers:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.nodes.remove(node)
        deadline = time.monotonic() + wait_dead
        while time.monotonic() < deadline:
            if not any(n["NodeID"] == node.node_id and n.get("Alive") for n in ray.nodes()):
                return
            time.sleep(0.1)

    @property
    def address(self) -> str:
        return self.cluster.address

    def shutdown(self) -> float:
        import ray

        began = time.perf_counter()
        if ray.is_initialized():
            ray.shutdown()
        if self.cluster is not None:
            self.cluster.shutdown()
            self.cluster = None
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        return time.perf_counter() - began

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


class CliNode:
    """A node started with ``ray start --address ... --block``, optionally in its own mount namespace where
    folders are read-only (``readonly``) or an empty tmpfs (``hidden``): a node that mounted the shared
    folder read-only, or not at all. Same network namespace as the driver; stopped by its own pid."""

    def __init__(self, gcs_address: str, *, node_name: str, readonly: list[str] = (), hidden: list[str] = (),
                 num_cpus: int = 1) -> None:
        ray_bin = Path(sys.executable).with_name("ray")
        cmd = [str(ray_bin), "start", "--address", gcs_address, "--node-ip-address", "127.0.0.1", "--num-cpus",
               str(num_cpus), "--node-name", node_name, "--object-store-memory", str(OBJECT_STORE_MB << 20),
               "--disable-usage-stats", "--block"]
        mounts = [f"mount --bind {shlex.quote(p)} {shlex.quote(p)} && mount -o remount,bind,ro {shlex.quote(p)}"
                  for p in readonly] + [f"mount -t tmpfs tmpfs {shlex.quote(p)}" for p in hidden]
        script = " && ".join([*mounts, "exec " + shlex.join(cmd)])
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script] if mounts else cmd
        self.name = node_name
        self.log = tempfile.NamedTemporaryFile(prefix=f"rk-{node_name}-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, **QUIET_ENV})
        self.node_id = self._wait_registered()

    def _wait_registered(self, timeout: float = 60.0) -> str:
        import ray

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start for {self.name} exited {self.proc.returncode}: "
                                   + Path(self.log.name).read_text()[-2000:])
            for node in ray.nodes():
                if node.get("Alive") and node.get("NodeName") == self.name:
                    return node["NodeID"]
            time.sleep(0.2)
        raise TimeoutError(f"node {self.name} did not register within {timeout} s")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM ``ray start --block`` (it stops its raylet), then SIGKILL what is left of its process group;
        returns once the GCS no longer lists the node alive."""
        import ray

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(5)
        os.unlink(self.log.name)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not any(n["NodeID"] == self.node_id and n.get("Alive") for n in ray.nodes()):
                return
            time.sleep(0.1)


def processes_titled(prefix: bytes) -> list[int]:
    """Pids whose command line starts with ``prefix`` (Ray names its workers ``ray::<Class>.<method>``)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/cmdline").read_bytes().startswith(prefix):
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}


def assert_same_tree(a: Path, b: Path, *, skip: tuple[str, ...] = ()) -> None:
    """Same file names, same bytes (``skip``: names the caller compares itself, e.g. a manifest with timings)."""
    left, right = tree_bytes(a), tree_bytes(b)
    for name in skip:
        left.pop(name, None)
        right.pop(name, None)
    assert sorted(left) == sorted(right), sorted(set(left) ^ set(right))[:5]
    differ = [name for name in left if left[name] != right[name]]
    assert not differ, f"{len(differ)} file(s) differ, e.g. {differ[:3]}"


def partials(folder: Path) -> list[str]:
    return [p.name for p in Path(folder).iterdir() if p.name.endswith(".partial")]


def load_summary(out: Path, name: str) -> dict[str, Any]:
    return json.loads((out / f"{name}_summary.json").read_text())
