"""``[cluster] engine = "ray"``: the pipeline's per-row stages as Ray tasks with their dependencies.

The driver (this process) keeps deciding what must run: the stage cache, the work folder and
the report stay here. A stage that must run is submitted as a Ray task (a function of
:mod:`infer_kit.pipeline.tasks`) asking for the ``[cluster]`` resources (``run_resources`` for
the runs, e.g. ``{ NPU = 1 }``); a row's ``evaluate`` waits for its ``run``, a ``compare`` for
its row's run and the reference's, so rows proceed side by side across the cluster. Each
finished task is recorded in the cache as it finishes; the first failing stage stops the rest
(cancelled) and is named; Ctrl-C cancels everything, and a rerun resumes what was running.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infer_kit.cluster import check_shared_storage, cluster_nodes, connect, import_ray, ray_wait, task_error
from infer_kit.console import log
from infer_kit.errors import InferKitError

RETRIES = 3  # a task lost with its node runs again elsewhere (the stages resume or overwrite atomically)
DEFAULT_RESOURCES = {"CPU": 1}


def task_options(resources: dict[str, float]) -> dict[str, Any]:
    """A ``[cluster]`` resources table as Ray task options (CPU, GPU, and custom resources such as NPU)."""
    options: dict[str, Any] = {}
    for name, amount in resources.items():
        if name == "CPU":
            options["num_cpus"] = amount
        elif name == "GPU":
            options["num_gpus"] = amount
        else:
            options.setdefault("resources", {})[name] = amount
    return options


def _stage_task(func: Callable[..., dict[str, Any]], args: tuple[Any, ...], kwargs: dict[str, Any], resume: bool,
                *after: Any) -> tuple[dict[str, Any], float]:
    """Runs on a node: one stage; ``after`` are the results of the stages it waits for (Ray resolves them first)."""
    began = time.perf_counter()
    info = func(resume, *args, **kwargs)
    return info, time.perf_counter() - began


@dataclass
class _Submitted:
    name: str
    key: str
    ref: Any


class ClusterStages:
    """Submit stages (:meth:`submit`), then :meth:`wait` for them; ``on_done(name, key, seconds, info)`` records
    each one that finishes, ``on_failed(name, error)`` turns a stage's error into the pipeline's."""

    def __init__(self, address: str, resources: dict[str, float], run_resources: dict[str, float], work_dir: Path,
                 *, on_done: Callable[[str, str, float, dict[str, Any]], None],
                 on_failed: Callable[[str, InferKitError], InferKitError]) -> None:
        self.connection = connect(address)
        self.resources = dict(resources or DEFAULT_RESOURCES)
        self.run_resources = dict(run_resources or self.resources)
        self.on_done = on_done
        self.on_failed = on_failed
        nodes = cluster_nodes()
        check_shared_storage(nodes, write_dir=work_dir)  # every node sees the work folder, or one line names it
        log.info(f"ray: pipeline stages on {len(nodes)} node(s) of the cluster at {self.connection.gcs_address}")
        self.pending: dict[Any, _Submitted] = {}
        self.results: dict[Any, dict[str, Any]] = {}

    @property
    def task_cpus(self) -> int:
        """Worker processes a scoring stage may use: the CPUs its task asks for (at least one)."""
        return max(1, int(self.resources.get("CPU", 1)))

    @property
    def run_threads(self) -> int | None:
        """Runner threads of a run task: the CPUs it asks for (None when it asks for none)."""
        cpus = int(self.run_resources.get("CPU", 1))
        return cpus if cpus >= 1 else None

    def submit(self, name: str, key: str, func: Callable[..., dict[str, Any]], args: tuple[Any, ...],
               kwargs: dict[str, Any], resume: bool, *, is_run: bool = False, after: Sequence[Any] = ()) -> Any:
        ray = import_ray()
        options = task_options(self.run_resources if is_run else self.resources)
        remote = ray.remote(_stage_task).options(max_retries=RETRIES, retry_exceptions=False, name=name, **options)
        # A run retried after its node died finds its own outputs: it must resume into them. The driver cleared
        # the folder unless it resumes anyway, so resuming is what a first attempt does too.
        ref = remote.remote(func, args, kwargs, resume or is_run, *after)
        self.pending[ref] = _Submitted(name, key, ref)
        return ref

    def result(self, ref: Any) -> dict[str, Any]:
        """The info of the stage behind ``ref``, once it finished (recording the others that finish meanwhile)."""
        while ref not in self.results:
            if ref not in self.pending:
                raise InferKitError("a pipeline stage was cancelled before it finished", hint="rerun the pipeline")
            self.wait(until=ref)
        return self.results[ref]

    def wait(self, until: Any = None) -> None:
        """Record finished stages until ``until`` (or every submitted stage) is done; the first failure cancels
        the rest and is raised, named by its stage."""
        ray = import_ray()
        try:
            while self.pending and (until is None or until not in self.results):
                order = list(self.pending)  # submission order: a stage before the ones that wait for it
                ready, _ = ray_wait(order, num_returns=1, timeout=0.5)
                for ref in sorted(ready, key=order.index):
                    done = self.pending.pop(ref)
                    try:
                        info, seconds = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        error = task_error(exc)
                        if isinstance(error, InferKitError):
                            raise self.on_failed(done.name, error) from None
                        raise error from None
                    except ray.exceptions.RayError as exc:  # its worker or node died, and so did every retry
                        lost = InferKitError(f"its Ray worker died ({type(exc).__name__}), {RETRIES} retries too",
                                             hint="check the nodes ('ray status')")
                        raise self.on_failed(done.name, lost) from None
                    self.results[ref] = info
                    self.on_done(done.name, done.key, seconds, info)
        except BaseException:
            self.cancel()
            raise

    def cancel(self) -> None:
        ray = import_ray()
        for ref in self.pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # finished meanwhile
                pass
        self.pending.clear()
