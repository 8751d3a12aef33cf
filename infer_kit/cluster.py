"""Ray plumbing the distributed stages share: connect, nodes, the shared-storage check, actors, tasks.

``preprocess``, ``run``, ``evaluate`` and the pipeline take ``engine="ray"``; each keeps its own
checks, manifests and writers, and comes here for what a cluster adds:

* :func:`import_ray` / :func:`connect`: Ray is an optional extra (``infer-kit[ray]``); without it
  one line and exit 2. ``--address auto`` (the cluster ``ray start`` left on this machine) or
  ``HOST:PORT`` (probed first: Ray alone retries for about 14 minutes where nothing listens).
* :func:`cluster_nodes` and :func:`plan_actors`: one actor per device, ``NPU`` (Ascend, Ray's
  built-in accelerator resource), else ``GPU``, else one CPU actor per node using that node's CPUs.
* :func:`check_shared_storage` (:class:`StorageCheck`): every node reads the inputs, reads back a
  token the driver wrote into the output folder (the same folder, not merely the same path) and
  writes a probe the driver then sees; the first node that cannot is named in one line.
* :class:`ActorPool`: work items spread over live actors, a few in flight each; an actor or node
  that dies has its unfinished items re-queued on the others (Ray's own actor restart has nowhere
  to go with one actor per device); a task's own error stops everything; Ctrl-C cancels and kills.
* :func:`map_tasks`: plain tasks for idempotent work (preprocess, scoring), retried by Ray when a
  worker or node dies, yielded in submission or completion order.

Importing this module is cheap: ``ray`` itself (0.4 s, 700 modules) is imported inside the
functions only, so no command's ``--help`` pays for it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infer_kit.console import log
from infer_kit.errors import BackendUnavailable, InferKitError

ENGINES = ("local", "ray")
INSTALL_HINT = "pip install 'infer-kit[ray]'"
PROBE_TIMEOUT_S = 60.0
ACTOR_START_TIMEOUT_S = 180.0
POLL_S = 0.5  # how often a wait wakes up, so Ctrl-C is seen within this
SHARED_STORAGE_HINT = ("inputs and outputs must be on a folder every node mounts at the same path (a shared file "
                       "system); mount it there or take the node out of the cluster")
_STANDARD_RESOURCES = {"CPU", "GPU", "NPU", "memory", "object_store_memory"}


@dataclass(frozen=True)
class RayOptions:
    """How a stage uses the cluster (``engine="ray"``); the defaults suit most clusters.

    ``device``: the actors ``run`` starts: ``auto`` (NPU where the cluster has any, else GPU,
    else CPU), or one of ``NPU``, ``GPU``, ``CPU``. ``cpus_per_actor``: CPU actors take this
    many CPUs each (default: one actor per node with all its CPUs). ``files_per_task``: input
    files per unit of work (run: rounded to whole batches; preprocess: images per task).
    ``max_actors`` caps the actors ``run`` starts.
    """

    address: str = "auto"
    device: str = "auto"
    cpus_per_actor: int | None = None
    files_per_task: int | None = None
    max_actors: int | None = None

    def with_address(self, address: str | None) -> RayOptions:
        return self if address is None else replace(self, address=address)


def check_engine(engine: str, address: str | None = None) -> str:
    """``engine`` if it is one this version knows (and for ``ray``, installed); ``address`` only goes with ``ray``."""
    if engine not in ENGINES:
        raise InferKitError(f"unknown --engine {engine!r}", hint=f"use {' or '.join(ENGINES)}")
    if address is not None and engine != "ray":
        raise InferKitError(f"--address {address} needs --engine ray", hint="add --engine ray, or drop --address")
    if engine == "ray":
        import_ray()  # before any other work: without Ray this is one line and exit 2
    return engine


# --------------------------------------------------------------------------------------------------- connecting
def import_ray() -> Any:
    """``ray``, or :class:`BackendUnavailable` (exit 2) saying how to install it."""
    try:
        import ray
    except ImportError:
        raise BackendUnavailable("--engine ray needs Ray, which is not installed here", hint=INSTALL_HINT) from None
    return ray


@dataclass(frozen=True)
class Connection:
    address: str      # what the caller asked for ("auto" or "HOST:PORT")
    gcs_address: str  # where the cluster is


def connect(address: str | None = "auto") -> Connection:
    """Connect this process (the driver) to a running Ray cluster, once; later calls reuse it.

    ``auto``: the cluster ``ray start`` last started on this machine. ``HOST:PORT``: the head's
    ``ray start --port`` (6379 by default), probed with a 3 s TCP connect first.
    """
    ray = import_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = (address or "auto").strip()
    if address.startswith("ray://"):
        raise InferKitError(f"--address {address}: Ray Client addresses are not supported",
                            hint="run infer-kit on a node of the cluster with --address auto or --address HEAD:6379")
    target = None if address == "auto" else _host_port(address)
    if ray.is_initialized():
        current = ray.get_runtime_context().gcs_address
        if target is not None and not _same_endpoint(current, address):
            raise InferKitError(f"this process is already connected to the Ray cluster at {current}, not {address}",
                                hint="use one cluster per process")
        return Connection(address, current)
    if target is not None:
        why = _probe(*target)
        if why is not None:
            raise InferKitError(f"no Ray cluster at {address} ({why})",
                                hint="start one with 'ray start --head --port PORT', or fix --address")
    try:
        with _own_sigterm():
            ray.init(address=address, log_to_driver=False, logging_level="warning")
    except ConnectionError as exc:
        if address == "auto":
            raise InferKitError("--address auto found no running Ray cluster on this machine",
                                hint="start one with 'ray start --head' (and 'ray start --address HEAD:6379' on the "
                                     "other nodes), or pass --address HOST:PORT") from None
        raise InferKitError(f"cannot connect to the Ray cluster at {address}: {_first_line(exc)}") from None
    except RuntimeError as exc:  # e.g. this Ray or Python differs from the cluster's
        raise InferKitError(f"cannot join the Ray cluster at {address}: {_first_line(exc)}",
                            hint="every node needs the same Python, Ray and infer-kit versions as this one") from None
    return Connection(address, ray.get_runtime_context().gcs_address)


@contextlib.contextmanager
def _own_sigterm() -> Iterator[None]:
    """Keep this process's SIGTERM handling: ray.init replaces it with a bare exit, the CLI stops like Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InferKitError(f"--address {address!r} is not auto or HOST:PORT",
                            hint="e.g. --address auto, or --address 10.0.0.1:6379 (the head's ray start port)")
    return host.strip("[]"), int(port)


def _same_endpoint(current: str, wanted: str) -> bool:
    (host_a, port_a), (host_b, port_b) = _host_port(current), _host_port(wanted)
    if port_a != port_b:
        return False
    with contextlib.suppress(OSError):
        return socket.gethostbyname(host_a) == socket.gethostbyname(host_b)
    return host_a == host_b


def _probe(host: str, port: int, timeout: float = 3.0) -> str | None:
    """None when something accepts TCP connections at host:port, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return exc.strerror or str(exc)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# --------------------------------------------------------------------------------------------------- nodes
@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    ip: str
    name: str
    resources: dict[str, float]

    def describe(self) -> str:
        """How messages name a node: its IP, its name when it has one, a short id, its custom resources."""
        extra = [f"id {self.node_id[:12]}"]
        if self.name and self.name != self.ip:
            extra.insert(0, f"name {self.name}")
        custom = sorted(k for k in self.resources if k not in _STANDARD_RESOURCES
                        and not k.startswith(("node:", "accelerator_type:")))
        if custom:
            extra.append("resources " + ",".join(custom))
        return f"node {self.ip} ({'; '.join(extra)})"


def cluster_nodes() -> list[NodeInfo]:
    """The live nodes: the head first, then by IP and id (a stable order for planning)."""
    ray = import_ray()
    nodes = [NodeInfo(n["NodeID"], n.get("NodeManagerAddress", "?"), n.get("NodeName", ""),
                      dict(n.get("Resources", {})))
             for n in ray.nodes() if n.get("Alive")]
    head = [n for n in nodes if "node:__internal_head__" in n.resources]
    return head + sorted((n for n in nodes if n not in head), key=lambda n: (n.ip, n.node_id))


def total_cpus(nodes: Sequence[NodeInfo]) -> int:
    return int(sum(n.resources.get("CPU", 0) for n in nodes))


@dataclass(frozen=True)
class ActorSlot:
    """One actor to start: where, with which Ray options, and how many CPU threads it may use."""

    index: int
    node: NodeInfo
    kind: str  # "NPU", "GPU" or "CPU"
    options: dict[str, Any]
    threads: int | None  # CPU actors: the CPUs Ray gives them; accelerator actors: None

    @property
    def label(self) -> str:
        return f"{self.kind.lower()}{self.index}@{self.node.name or self.node.ip}"


def plan_actors(nodes: Sequence[NodeInfo], *, device: str = "auto", cpus_per_actor: int | None = None,
                max_actors: int | None = None) -> list[ActorSlot]:
    """One actor per device of the cluster (see :class:`RayOptions`).

    Accelerator actors ask for one ``NPU`` (or GPU) and no CPU; Ray then sets
    ``ASCEND_RT_VISIBLE_DEVICES`` (``CUDA_VISIBLE_DEVICES``) in each, so its runner opens
    device 0. CPU actors are pinned to their node and get its CPUs (or ``cpus_per_actor``).
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    totals = {k: sum(n.resources.get(k, 0) for n in nodes) for k in ("NPU", "GPU", "CPU")}
    kind = device.upper()
    if kind == "AUTO":
        kind = "NPU" if totals["NPU"] >= 1 else "GPU" if totals["GPU"] >= 1 else "CPU"
    if kind not in ("NPU", "GPU", "CPU"):
        raise InferKitError(f"unknown Ray device kind {device!r}", hint="use auto, NPU, GPU or CPU")
    if totals[kind] < 1:
        have = ", ".join(f"{int(v)} {k}" for k, v in totals.items())
        raise InferKitError(f"the Ray cluster has no {kind} resources ({have})",
                            hint="start the nodes with their devices visible to Ray, or use another device kind")
    if cpus_per_actor is not None and cpus_per_actor < 1:
        raise InferKitError(f"cpus_per_actor {cpus_per_actor} is invalid: give a positive integer")
    slots: list[ActorSlot] = []
    for node in nodes:
        have = int(node.resources.get(kind, 0))
        strategy = NodeAffinitySchedulingStrategy(node.node_id, soft=False)
        if kind == "CPU":
            per = cpus_per_actor or have
            for _ in range(have // per if per else 0):
                slots.append(ActorSlot(len(slots), node, kind, {"num_cpus": per, "scheduling_strategy": strategy},
                                       per))
        else:
            extra = {"num_gpus": 1} if kind == "GPU" else {"resources": {"NPU": 1}}
            for _ in range(have):
                slots.append(ActorSlot(len(slots), node, kind,
                                       {"num_cpus": 0, "scheduling_strategy": strategy, **extra}, None))
    if not slots:
        raise InferKitError(f"no node of the Ray cluster has {cpus_per_actor} CPUs for one actor",
                            hint="lower cpus_per_actor")
    return slots[:max_actors] if max_actors else slots


# --------------------------------------------------------------------------------------------------- shared storage
def probe_storage(read_paths: list[str], token_file: str | None, token: str, write_dir: str | None,
                  tag: str) -> dict[str, Any]:
    """Runs on a node (a task or an actor): can it read ``read_paths``, does it see the driver's token, can it
    write ``write_dir``? The arguments come from :meth:`StorageCheck.request`."""
    step = "read"
    try:
        for path in read_paths:
            with open(path, "rb") as handle:
                handle.read(1)
        if token_file is not None:
            step = "see"
            with open(token_file) as handle:
                if handle.read().strip() != token:
                    return {"ok": False, "step": step, "path": write_dir, "error": "another folder is at that path"}
        if write_dir is not None:
            step = "write"
            probe = os.path.join(write_dir, f".infer-kit-probe-{token}-{tag}")
            with open(probe, "w") as handle:
                handle.write(tag)
            return {"ok": True, "probe": probe}
    except OSError as exc:
        path = write_dir if step != "read" else exc.filename
        return {"ok": False, "step": step, "path": str(path or "?"), "error": exc.strerror or str(exc)}
    return {"ok": True}


_STEP_TEXT = {"read": "read", "see": "see the output folder", "write": "write the output folder"}


class StorageCheck:
    """This machine's side of the shared-storage check (a context manager).

    It writes a random token into ``write_dir`` (an existing folder); each node runs
    :func:`probe_storage` with :meth:`request`'s arguments, reading ``read_paths``, reading the
    token back (the same folder, not merely the same path) and writing a probe; :meth:`verify`
    then raises naming the node when it could not, or when this machine does not see its probe.
    Leaving the block removes the token and the probes.
    """

    def __init__(self, *, read_paths: Sequence[str | os.PathLike[str]] = (),
                 write_dir: str | os.PathLike[str] | None = None) -> None:
        self.read_paths = [os.fspath(p) for p in read_paths]
        self.write_dir = Path(write_dir) if write_dir is not None else None
        self.token = secrets.token_hex(8)
        self.token_file = self.write_dir / f".infer-kit-token-{self.token}" if self.write_dir is not None else None

    def __enter__(self) -> StorageCheck:
        if self.token_file is not None:
            self.token_file.write_text(self.token)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.write_dir is not None:
            for path in self.write_dir.glob(f".infer-kit-*-{self.token}*"):
                path.unlink(missing_ok=True)

    def request(self, node: NodeInfo, tag: str = "") -> tuple[Any, ...]:
        return (self.read_paths, str(self.token_file) if self.token_file else None, self.token,
                str(self.write_dir) if self.write_dir is not None else None, f"{node.node_id[:12]}{tag}")

    def verify(self, node: NodeInfo, answer: dict[str, Any]) -> None:
        if not answer["ok"]:
            raise InferKitError(f"{node.describe()} cannot {_STEP_TEXT[answer['step']]} {answer['path']} "
                                f"({answer['error']})", hint=SHARED_STORAGE_HINT)
        if "probe" in answer and not Path(answer["probe"]).is_file():
            raise InferKitError(f"{node.describe()} wrote {answer['probe']}, which this machine does not see",
                                hint=SHARED_STORAGE_HINT)


def check_shared_storage(nodes: Sequence[NodeInfo], *, read_paths: Sequence[str | os.PathLike[str]] = (),
                         write_dir: str | os.PathLike[str] | None = None,
                         timeout: float = PROBE_TIMEOUT_S) -> list[NodeInfo]:
    """The nodes that read ``read_paths`` and write ``write_dir``, each checked by a task pinned on it; one line
    naming the first node that cannot. A node that died since it was listed is dropped (Ray reports it alive for a
    few seconds)."""
    ray = import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=0)(probe_storage)
    passed: list[NodeInfo] = []
    with StorageCheck(read_paths=read_paths, write_dir=write_dir) as check:
        refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False))
                .remote(*check.request(node)) for node in nodes]
        for node, ref in zip(nodes, refs, strict=True):
            try:
                answer = wait_get(ref, timeout=timeout)
            except (ray.exceptions.TaskUnschedulableError, ray.exceptions.NodeDiedError):
                continue
            except ray.exceptions.GetTimeoutError:
                raise InferKitError(f"{node.describe()} did not answer the shared-storage check within {timeout:g} s",
                                    hint="check that the node is healthy ('ray status'), or take it out of the "
                                         "cluster") from None
            check.verify(node, answer)
            passed.append(node)
    if not passed:
        raise InferKitError("no node of the Ray cluster answered the shared-storage check",
                            hint="check the nodes with 'ray status'")
    return passed


# --------------------------------------------------------------------------------------------------- waiting
def ray_wait(refs: list[Any], **kwargs: Any) -> tuple[list[Any], list[Any]]:
    """``ray.wait``, except that an exception a signal handler raised while it waited (SIGTERM's, see the CLI) is
    raised as itself: Ray's compiled wait reports it as a SystemError."""
    ray = import_ray()
    try:
        return ray.wait(refs, **kwargs)
    except SystemError as exc:
        cause = exc.__cause__ or exc.__context__
        if cause is not None:
            raise cause from None
        raise


def wait_get(ref: Any, *, timeout: float | None = None) -> Any:
    """``ray.get(ref)`` that wakes up every :data:`POLL_S` (so Ctrl-C is seen) and raises a task's own error
    (an :class:`InferKitError` keeps its one line and exit code) instead of Ray's wrapper."""
    ray = import_ray()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
        ready, _ = ray_wait([ref], timeout=max(0.0, left))
        if ready:
            try:
                return ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:
                raise task_error(exc) from None
        if deadline is not None and time.monotonic() >= deadline:
            raise ray.exceptions.GetTimeoutError(f"not ready within {timeout} s")


def task_error(exc: BaseException) -> BaseException:
    """The exception a task raised itself, out of Ray's RayTaskError."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


# --------------------------------------------------------------------------------------------------- actors
@dataclass
class WorkItem:
    """One unit of work (a few batches, a chunk of files); ``payload`` goes to the actor as it is."""

    key: int
    payload: Any
    size: int  # files it covers (progress, figures)
    attempts: int = 0


@dataclass
class PoolReport:
    items: int = 0
    requeued: int = 0  # items run again after the actor holding them died
    lost_actors: list[str] = field(default_factory=list)
    duplicates: int = 0  # results that came back twice for one item (stays 0)
    wall_s: float = 0.0


class AllWorkersLost(InferKitError):
    pass


class ActorPool:
    """:class:`WorkItem` s over live actors, ``depth`` in flight each; actors that die have their items redone.

    ``submit(actor, item)`` starts one item and returns its ObjectRef; ``on_result(item, value,
    label)`` takes each result. A ``RayActorError`` (process killed, node gone, out of memory)
    drops that actor and puts every item it held back at the front of the queue; any other
    error from a task stops the pool (pending work cancelled, actors killed) and is raised as
    the task raised it. The caller owns the actors and kills them when done (:meth:`kill_all`).
    """

    def __init__(self, actors: dict[str, Any], submit: Callable[[Any, WorkItem], Any], *, depth: int = 2,
                 max_attempts: int = 3, on_actor_lost: Callable[[str, BaseException], None] | None = None,
                 on_requeue: Callable[[WorkItem], None] | None = None) -> None:
        self.actors = dict(actors)  # label -> handle, the live ones
        self.submit = submit
        self.depth = max(1, depth)
        self.max_attempts = max_attempts
        self.on_actor_lost = on_actor_lost
        self.on_requeue = on_requeue
        self.report = PoolReport()
        self._all = dict(actors)

    def run(self, items: Sequence[WorkItem], on_result: Callable[[WorkItem, Any, str], None]) -> PoolReport:
        ray = import_ray()
        began = time.perf_counter()
        queue: deque[WorkItem] = deque(items)
        self.report.items = len(items)
        finished: set[int] = set()
        inflight: dict[Any, tuple[WorkItem, str]] = {}  # ref -> (item, actor label)
        try:
            while queue or inflight:
                self._fill(queue, inflight)
                if not inflight:
                    raise AllWorkersLost(f"every Ray worker died; {len(queue)} unit(s) of work not done",
                                         hint="check the nodes ('ray status'), then rerun with --resume")
                ready, _ = ray_wait(list(inflight), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    item, label = inflight.pop(ref)
                    try:
                        value = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        raise task_error(exc) from None
                    except ray.exceptions.RayActorError as exc:
                        self._lose(label, exc, inflight, queue)
                        self._requeue(item, queue, exc)
                        continue
                    except ray.exceptions.RayError as exc:  # e.g. its result lost with a node: do it again
                        self._requeue(item, queue, exc)
                        continue
                    if item.key in finished:
                        self.report.duplicates += 1
                        continue
                    finished.add(item.key)
                    on_result(item, value, label)
        except BaseException:
            self._cancel(inflight)
            self.kill_all()
            raise
        self.report.wall_s = time.perf_counter() - began
        return self.report

    def _fill(self, queue: deque[WorkItem], inflight: dict[Any, tuple[WorkItem, str]]) -> None:
        load = dict.fromkeys(self.actors, 0)
        for _, label in inflight.values():
            if label in load:
                load[label] += 1
        while queue:
            free = [label for label in sorted(load, key=load.__getitem__) if load[label] < self.depth]
            if not free:
                return
            for label in free:
                if not queue:
                    return
                item = queue.popleft()
                item.attempts += 1
                inflight[self.submit(self.actors[label], item)] = (item, label)
                load[label] += 1

    def _lose(self, label: str, exc: BaseException, inflight: dict[Any, tuple[WorkItem, str]],
              queue: deque[WorkItem]) -> None:
        if label not in self.actors:
            return
        del self.actors[label]
        self.report.lost_actors.append(label)
        if self.on_actor_lost is not None:
            self.on_actor_lost(label, exc)
        for ref, (item, owner) in list(inflight.items()):  # everything else it held fails too: take it back now
            if owner == label:
                del inflight[ref]
                self._requeue(item, queue, exc)

    def _requeue(self, item: WorkItem, queue: deque[WorkItem], exc: BaseException) -> None:
        if item.attempts >= self.max_attempts:
            raise InferKitError(f"a unit of work failed on {item.attempts} Ray workers in a row "
                                f"(last: {type(exc).__name__})", hint="check the nodes, then rerun with --resume")
        self.report.requeued += 1
        if self.on_requeue is not None:
            self.on_requeue(item)
        queue.appendleft(item)

    def _cancel(self, inflight: dict[Any, tuple[WorkItem, str]]) -> None:
        ray = import_ray()
        for ref in inflight:
            with contextlib.suppress(Exception):  # already finished, or its actor is gone
                ray.cancel(ref)  # force=True is not allowed on actor tasks; kill_all ends them

    def kill_all(self) -> None:
        """Kill every actor this pool was given (idempotent)."""
        kill_actors(self._all.values())
        self.actors.clear()
        self._all.clear()


def kill_actors(handles: Any, *, timeout: float = 15.0) -> None:
    """Kill the actors and return once each is gone (``ray.kill`` only asks), so nothing they write outlives
    the caller's cleanup and lock; an actor still answering after ``timeout`` is a warning."""
    ray = import_ray()
    handles = list(handles)
    for handle in handles:
        with contextlib.suppress(Exception):
            ray.kill(handle, no_restart=True)
    deadline = time.monotonic() + timeout
    alive = handles
    while alive and time.monotonic() < deadline:
        probes = {handle.__ray_ready__.remote(): handle for handle in alive}
        ready, _ = ray_wait(list(probes), num_returns=len(probes), timeout=max(0.1, deadline - time.monotonic()))
        alive = []
        for ref in ready:
            try:
                ray.get(ref)
            except Exception:  # RayActorError: it is dead
                continue
            alive.append(probes[ref])  # it answered: the kill has not reached it yet
        alive += [probes[ref] for ref in probes if ref not in ready]
        if alive:
            time.sleep(0.05)
    if alive:
        log.warning(f"ray: {len(alive)} worker(s) still alive {timeout:g} s after they were killed")


def start_actors(actor_class: Any, slots: Sequence[ActorSlot], make_args: Callable[[ActorSlot], tuple],
                 *, timeout: float = ACTOR_START_TIMEOUT_S) -> tuple[dict[str, Any], dict[str, Any]]:
    """One actor per slot (``actor_class`` is a ``ray.remote`` class with a ``ready()`` method); waits until
    each answered and returns their handles and answers by label.

    A slot whose node vanished meanwhile is dropped with a warning. The actor's own set-up error
    (e.g. the model does not load there) is raised as it is: Ray keeps only the text of an error in
    ``__init__``, so actors should keep it and raise it from ``ready()``.
    """
    ray = import_ray()
    handles = {s.label: actor_class.options(max_restarts=0, max_task_retries=0, **s.options).remote(*make_args(s))
               for s in slots}
    answers: dict[str, Any] = {}
    try:
        refs = {label: handle.ready.remote() for label, handle in handles.items()}
        deadline = time.monotonic() + timeout
        for label, ref in refs.items():
            try:
                answers[label] = wait_get(ref, timeout=max(1.0, deadline - time.monotonic()))
            except InferKitError as exc:  # the actor's own set-up error: say where
                node = next(s.node for s in slots if s.label == label)
                raise type(exc)(f"Ray worker {label} on {node.describe()}: {exc.message}", hint=exc.hint) from None
            except ray.exceptions.GetTimeoutError:
                raise InferKitError(f"Ray worker {label} did not start within {timeout:g} s",
                                    hint="the cluster may lack what it asks for ('ray status')") from None
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnschedulableError) as exc:
                if getattr(exc, "_actor_init_failed", False):
                    raise InferKitError(f"Ray worker {label} failed to start: {_last_line(exc)}") from None
                log.warning(f"ray: worker {label} could not start ({type(exc).__name__}); going on without it")
                kill_actors([handles.pop(label)])
        if not handles:
            raise AllWorkersLost("no Ray worker could be started", hint="check the nodes with 'ray status'")
    except BaseException:
        kill_actors(handles.values())
        raise
    return handles, answers


def _last_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(getattr(exc, "error_msg", exc)).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


# --------------------------------------------------------------------------------------------------- plain tasks
def map_tasks(remote_fn: Any, payloads: Sequence[Any], *, ordered: bool, args: tuple[Any, ...] = (),
              window: int | None = None, options: dict[str, Any] | None = None) -> Iterator[tuple[int, Any]]:
    """``remote_fn.remote(*args, payload)`` for every payload, at most ``window`` in flight; yields (index, result).

    For idempotent work: a worker or node that dies is Ray's to retry (``max_retries``, system
    failures only, never the task's own errors). ``ordered`` yields in submission order (for an
    order-sensitive merge), else in completion order. A task's own error is raised as itself;
    closing the generator (or Ctrl-C) cancels what is still pending.
    """
    ray = import_ray()
    fn = remote_fn.options(**{"max_retries": 5, "retry_exceptions": False, "scheduling_strategy": "SPREAD",
                              **(options or {})})
    if window is None:
        window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    pending: dict[Any, int] = {}
    held: dict[int, Any] = {}
    next_submit = next_yield = 0
    try:
        while next_yield < len(payloads):
            while next_submit < len(payloads) and len(pending) + len(held) < window:
                pending[fn.remote(*args, payloads[next_submit])] = next_submit
                next_submit += 1
            if ordered and next_yield in held:
                yield next_yield, held.pop(next_yield)
                next_yield += 1
                continue
            ready, _ = ray_wait(list(pending), num_returns=1, timeout=POLL_S)
            for ref in ready:
                index = pending.pop(ref)
                try:
                    value = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    raise task_error(exc) from None
                except ray.exceptions.RayError as exc:  # its worker or node died, and so did every retry
                    raise InferKitError(f"a Ray task was lost ({type(exc).__name__}), its retries too",
                                        hint="check the nodes ('ray status'), then rerun with --resume") from None
                if ordered:
                    held[index] = value
                else:
                    next_yield += 1
                    yield index, value
    finally:
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)


# --------------------------------------------------------------------------------------------------- writers
_joined: set[str] = set()


def join_writers(lock_file: str | os.PathLike[str] | None) -> None:
    """In a Ray worker process: write for the holder of ``lock_file`` (see :mod:`infer_kit.locks`), once.

    Ray kills the workers of a driver that dies; until then a newcomer that takes the folder over
    waits for them. Best effort: a shared file system without ``flock`` only loses that wait.
    """
    if lock_file is None or os.fspath(lock_file) in _joined:
        return
    from infer_kit.locks import join_as_worker

    with contextlib.suppress(OSError):
        join_as_worker(lock_file)
        _joined.add(os.fspath(lock_file))
