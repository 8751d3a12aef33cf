"""``run --engine ray``: the same batches, written by the same writer, on one Ray actor per device.

:func:`~infer_kit.runtime.stage.run` keeps its order of work and every check; with the Ray
engine two of its steps change:

* instead of opening a runner on this machine (an ``.om`` does not open on a CPU-only head),
  :meth:`ClusterRun.open` checks that every node that will run an actor reads the model and the
  first input files, starts the actors (each opens its runner once) and hands back a
  :class:`ClusterRunner` with what the first actor's runner says (batch, inputs, outputs);
* instead of executing the batches here, :meth:`ClusterRun.execute` checks that those nodes write
  the result folder, warms the actors up, and spreads tasks of whole batches over them; each
  actor runs ``execute.execute`` on its batches (its own reader and writer threads: the outputs go
  to the shared folder atomically, under the same names, with the same bytes). Only the figures
  come back.

A node or actor lost mid-run has its unfinished tasks redone by the others (a retried task
renames the same bytes over any output its dead actor had finished). The actors join the result
folder's lock as writers, and Ray kills them when the driver dies, so a ``--resume`` after a
killed driver starts only once they are gone. This module does not import ``stage`` (which
dispatches here): the function that runs a job on an opened runner is handed in.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infer_kit.artifacts import TensorDesc
from infer_kit.cluster import (
    ActorPool,
    ActorSlot,
    Connection,
    NodeInfo,
    PoolReport,
    RayOptions,
    StorageCheck,
    WorkItem,
    cluster_nodes,
    connect,
    import_ray,
    join_writers,
    kill_actors,
    plan_actors,
    probe_storage,
    start_actors,
    wait_get,
)
from infer_kit.console import log, progress
from infer_kit.errors import InferKitError
from infer_kit.fsutil import remove_stale_partials
from infer_kit.result_files import output_filename
from infer_kit.runtime.base import open_runner
from infer_kit.runtime.inputs import list_input_files, pure_feeds, split_input_arg
from infer_kit.runtime.jobs import WorkerStats

FILES_PER_TASK = 64  # a task is the unit of retry; the driver spends ~2.5-3 ms per task here (see README)
MIN_TASKS_PER_ACTOR = 4  # small runs still spread evenly
TASKS_IN_FLIGHT = 2  # per actor: the next task is queued while one computes


class RunActor:
    """One device: its runner, opened once; ``run(key, batches)`` per task with the job's own ``execute``."""

    def __init__(self, backend: str, model: str, options: dict[str, Any], execute: Callable[..., Any],
                 storage: tuple[Any, ...]) -> None:
        # First the node's shared-storage check (``storage``: a StorageCheck request): a node that does not see
        # the model is named as such, not as a model that does not load. Ray keeps only the text of an error
        # raised here: keep it and raise it from ready(), so the driver gets the InferKitError itself.
        self.error: BaseException | None = None
        self.execute = execute
        self.job: Any = None
        self.storage = probe_storage(*storage)
        if not self.storage["ok"]:
            return
        try:
            self.runner = open_runner(backend, model, **options)
        except BaseException as exc:
            self.error = exc

    def ready(self) -> dict[str, Any]:
        if not self.storage["ok"]:
            return {"storage": self.storage}
        if self.error is not None:
            raise self.error
        import ray

        context = ray.get_runtime_context()
        runner = self.runner
        return {"storage": self.storage, "batch": runner.batch, "inputs": list(runner.inputs),
                "outputs": list(runner.outputs),
                "provider": runner.provider, "threads": runner.threads, "node_id": context.get_node_id(),
                "pid": os.getpid(), "accelerators": {k: v for k, v in context.get_accelerator_ids().items() if v},
                "visible_devices": {k: os.environ[k] for k in ("ASCEND_RT_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")
                                    if k in os.environ}}

    def prepare(self, job: Any, lock_file: str | None, storage: tuple[Any, ...] | None) -> tuple[dict, float]:
        """Check that this node sees and writes the result folder (``storage``: a StorageCheck request), take the
        job (without batches), join the result folder's writers and warm up (untimed, on zeros); returns the
        check's answer and the seconds the warm-up took."""
        answer = probe_storage(*storage) if storage is not None else {"ok": True}
        if not answer["ok"]:
            return answer, 0.0
        self.job = replace(job, batches=(), warmup_count=0)
        join_writers(lock_file)
        began = time.perf_counter()
        if all(desc.nbytes is not None for desc in self.runner.inputs):  # the auto dynamic-shape modes have no
            feeds = pure_feeds(self.runner.inputs, "zero")               # one shape: each file brings its own
            for _ in range(job.warmup_count):
                self.runner.infer(feeds)
        return answer, time.perf_counter() - began

    def run(self, key: int, batches: tuple[Any, ...]) -> tuple[int, Any, float]:
        began = time.perf_counter()
        stats = self.execute(self.runner, replace(self.job, batches=tuple(batches)))
        return key, stats, time.perf_counter() - began


@dataclass
class ClusterRunner:
    """What ``run`` needs to know of the model, as the first actor's runner opened it; closing it ends the actors."""

    cluster: ClusterRun
    batch: int
    inputs: list[TensorDesc]
    outputs: list[TensorDesc]
    provider: str
    threads: int | None

    def close(self) -> None:
        self.cluster.close()


@dataclass
class _Actor:
    label: str
    slot: ActorSlot
    answer: dict[str, Any]
    stats: Any = None
    tasks: int = 0
    busy_s: float = 0.0


@dataclass
class ClusterRun:
    """``run``'s compute on a Ray cluster: :meth:`open`, then :meth:`execute` once, then :meth:`close`."""

    options: RayOptions
    execute_job: Callable[..., WorkerStats]  # execute.execute: (runner, job) -> WorkerStats
    connection: Connection | None = None
    nodes: list[NodeInfo] = field(default_factory=list)
    actors: dict[str, _Actor] = field(default_factory=dict)
    handles: dict[str, Any] = field(default_factory=dict)
    report: PoolReport = field(default_factory=PoolReport)
    storage_check_s: float = 0.0
    warmup_s: float = 0.0
    rewritten: int = 0
    partials_removed: int = 0

    def open(self, backend: str, model: str, runner_options: dict[str, Any], inputs: Any) -> ClusterRunner:
        """Connect, start one actor per device (each first checks that its node reads the model and the first
        input files); the model as they opened it."""
        self.connection = connect(self.options.address)
        self.nodes = cluster_nodes()
        device = self.options.device
        if backend == "ascend" and device.lower() == "auto":
            device = "NPU"  # an .om runs on an NPU, wherever the cluster's CPUs are
        slots = plan_actors(self.nodes, device=device, cpus_per_actor=self.options.cpus_per_actor,
                            max_actors=self.options.max_actors)
        ray = import_ray()
        check = StorageCheck(read_paths=[model, *_first_inputs(inputs)])
        self.handles, answers = start_actors(
            ray.remote(RunActor), slots,
            lambda slot: (backend, model, _actor_options(backend, runner_options, slot), self.execute_job,
                          check.request(slot.node)))
        try:
            by_label = {slot.label: slot for slot in slots}
            for label, answer in answers.items():
                check.verify(by_label[label].node, answer["storage"])
            self.actors = {label: _Actor(label, by_label[label], answer) for label, answer in answers.items()}
            first = next(iter(answers.values()))
            for label, answer in answers.items():
                if (answer["batch"], answer["inputs"], answer["outputs"]) != (first["batch"], first["inputs"],
                                                                               first["outputs"]):
                    raise InferKitError(f"Ray worker {label} opened {Path(model).name} with other inputs or outputs "
                                        f"than {next(iter(answers))}",
                                        hint="every node needs the same infer-kit, runtime and model file")
        except BaseException:
            self.close()
            raise
        nodes = len({a.slot.node.node_id for a in self.actors.values()})
        log.info(f"ray: {len(self.actors)} worker(s) on {nodes} node(s) of the cluster at "
                 f"{self.connection.gcs_address}")
        return ClusterRunner(self, first["batch"], first["inputs"], first["outputs"], first["provider"],
                             first["threads"])

    def execute(self, job: Any, lock_file: Path | None) -> list[Any]:
        """Every batch of ``job`` on the actors; one merged figure set (``WorkerStats``) per actor that worked."""
        try:
            if not job.batches:
                return []
            self._prepare(job, lock_file)
            items = _work_items(job.batches, len(self.handles), self.options.files_per_task)
            log.info(f"ray: {len(items)} task(s) of up to {max(i.size for i in items)} file(s) on "
                     f"{len(self.handles)} worker(s)")
            pool = ActorPool(self.handles, lambda handle, item: handle.run.remote(item.key, item.payload),
                             depth=TASKS_IN_FLIGHT, on_actor_lost=self._lost,
                             on_requeue=lambda item: self._count_rewrites(job, item))
            with progress(total=sum(item.size for item in items), desc="run", unit="file") as bar:
                def take(item: WorkItem, value: Any, label: str) -> None:
                    self._add(label, value)
                    bar.update(item.size)

                self.report = pool.run(items, take)
        finally:
            self.close()
            # A killed actor can leave its writer's temporary files; every writer of this run is gone now.
            if job.result_dir is not None and Path(job.result_dir).is_dir():
                self.partials_removed = remove_stale_partials(job.result_dir)
        stats = []
        for actor in self.actors.values():
            if actor.stats is not None:
                actor.stats.device = len(stats)
                actor.stats.wall_time_s = self.report.wall_s  # side by side: the run's time is the pool's
                stats.append(actor.stats)
        return stats

    def _prepare(self, job: Any, lock_file: Path | None) -> None:
        """Each actor checks that its node sees and writes the result folder (the actors are on exactly the nodes
        that write), joins the folder's writers and warms up; an actor lost meanwhile is dropped."""
        ray = import_ray()
        template = replace(job, batches=())
        lock = str(lock_file) if lock_file else None
        began = time.perf_counter()
        with contextlib.ExitStack() as stack:
            check = stack.enter_context(StorageCheck(write_dir=job.result_dir)) if job.result_dir else None
            refs = {label: handle.prepare.remote(
                        template, lock, check.request(self.actors[label].slot.node, f"-{label}") if check else None)
                    for label, handle in self.handles.items()}
            lost, answers = [], {}
            for label, ref in refs.items():  # every answer first: no probe is written after the check's cleanup
                try:
                    answers[label] = wait_get(ref)
                except ray.exceptions.RayActorError as exc:
                    self._lost(label, exc)
                    lost.append(label)
            for label, (answer, warmup_s) in answers.items():
                if check is not None:
                    check.verify(self.actors[label].slot.node, answer)
                self.warmup_s = max(self.warmup_s, warmup_s)
        self.storage_check_s += max(0.0, time.perf_counter() - began - self.warmup_s)
        self._drop(lost)
        if not self.handles:
            raise InferKitError("every Ray worker died before the run started", hint="check the nodes ('ray status')")

    def _drop(self, labels: Sequence[str]) -> None:
        kill_actors([self.handles.pop(label) for label in labels if label in self.handles])

    def _add(self, label: str, value: tuple[int, Any, float]) -> None:
        _, stats, busy = value
        actor = self.actors[label]
        actor.tasks += 1
        actor.busy_s += busy
        actor.stats = stats if actor.stats is None else _merge(actor.stats, stats)

    def _count_rewrites(self, job: Any, item: WorkItem) -> None:
        """Outputs a re-queued task's dead actor had finished: the retry renames the same bytes over them."""
        if job.result_dir is None:
            return
        outputs = len(next(iter(self.actors.values())).answer["outputs"])
        for batch in item.payload:
            for key in batch.keys:
                self.rewritten += sum((Path(job.result_dir) / output_filename(key, i, job.outfmt)).exists()
                                      for i in range(outputs))

    def _lost(self, label: str, exc: BaseException) -> None:
        actor = self.actors.get(label)
        where = f" on {actor.slot.node.describe()}" if actor else ""
        log.warning(f"ray: worker {label}{where} died ({type(exc).__name__}); the others redo its unfinished tasks")

    def close(self) -> None:
        """End the actors (idempotent)."""
        kill_actors(self.handles.values())
        self.handles.clear()

    def info(self) -> dict[str, Any]:
        """The summary's ``infer_kit.ray`` object: the cluster, each node's and each actor's share, the faults."""
        wall = self.report.wall_s
        per_node: dict[str, dict[str, Any]] = {}
        actors = []
        for actor in self.actors.values():
            node = actor.slot.node
            images = actor.stats.images if actor.stats is not None else 0
            entry = per_node.setdefault(node.node_id, {"node": node.describe(), "node_id": node.node_id, "ip": node.ip,
                                                       "actors": 0, "images": 0, "batches": 0, "busy_s": 0.0})
            entry["actors"] += 1
            entry["images"] += images
            entry["batches"] += actor.stats.batches if actor.stats is not None else 0
            entry["busy_s"] = round(entry["busy_s"] + actor.busy_s, 4)
            actors.append({"actor": actor.label, "node_id": node.node_id, "pid": actor.answer["pid"],
                           "kind": actor.slot.kind, "threads": actor.answer["threads"],
                           "accelerators": actor.answer["accelerators"],
                           "visible_devices": actor.answer["visible_devices"], "tasks": actor.tasks,
                           "images": images, "busy_s": round(actor.busy_s, 4),
                           "lost": actor.label in self.report.lost_actors})
        for entry in per_node.values():
            entry["throughput"] = entry["images"] / wall if wall else 0.0
        return {
            "address": self.connection.address if self.connection else None,
            "gcs_address": self.connection.gcs_address if self.connection else None,
            "cluster_nodes": len(self.nodes), "tasks": self.report.items, "requeued_tasks": self.report.requeued,
            "lost_actors": list(self.report.lost_actors), "duplicate_results": self.report.duplicates,
            "rewritten_files": self.rewritten, "partials_removed": self.partials_removed,
            "storage_check_s": round(self.storage_check_s, 4), "warmup_s": round(self.warmup_s, 4),
            "dispatch_wall_s": round(wall, 4), "per_node": list(per_node.values()), "actors": actors,
        }


def _actor_options(backend: str, options: dict[str, Any], slot: ActorSlot) -> dict[str, Any]:
    """The runner options of one actor: device 0 (Ray shows each actor its own device as 0), and for a CPU
    actor as many threads as Ray gave it CPUs unless the user chose."""
    options = {**options, "device": 0}
    if slot.threads is not None and backend != "ascend":
        options.setdefault("threads", slot.threads)
    return options


def _first_inputs(inputs: Any) -> list[str]:
    """The first file of each input folder (or the first listed file): what every node must read."""
    paths = split_input_arg(inputs)
    if paths[0].is_dir():
        return [str(list_input_files(p)[0]) for p in paths if p.is_dir()]
    return [str(paths[0])]


def _work_items(batches: Sequence[Any], actors: int, files_per_task: int | None) -> list[WorkItem]:
    """Tasks of whole batches (the batches, and so the padding, are the one-machine run's)."""
    per_batch = batches[0].size
    if files_per_task:
        per_task = max(1, math.ceil(files_per_task / per_batch))
    else:
        per_task = max(1, min(math.ceil(FILES_PER_TASK / per_batch),
                              math.ceil(len(batches) / (actors * MIN_TASKS_PER_ACTOR))))
    return [WorkItem(n, tuple(batches[i:i + per_task]), sum(b.real for b in batches[i:i + per_task]))
            for n, i in enumerate(range(0, len(batches), per_task))]


def _merge(total: WorkerStats, more: WorkerStats) -> WorkerStats:
    """One actor's figures over its tasks."""
    total.compute_ms.extend(more.compute_ms)
    total.h2d_ms.extend(more.h2d_ms)
    total.d2h_ms.extend(more.d2h_ms)
    total.batch_sizes.extend(more.batch_sizes)
    total.intervals.extend(more.intervals)
    total.filesinfo.update(more.filesinfo)
    total.images += more.images
    total.padded += more.padded
    total.batches += more.batches
    total.start_time = min(total.start_time, more.start_time) if total.start_time else more.start_time
    total.end_time = max(total.end_time, more.end_time)
    for key, value in more.extra.items():
        total.extra.setdefault(key, value)
    return total
