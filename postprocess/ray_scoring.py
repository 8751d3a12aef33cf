"""``evaluate --engine ray``: scoring chunks as Ray tasks, merged in the order one process merges them.

Each task reads its chunk of output files from the shared folder and returns only label ranks
and the top-k (:func:`~infer_kit.postprocess.scoring.score_chunk`); the results come back in
submission order, so the accumulator adds the same numbers in the same order and
``result.json`` and the details (the misclassified list included) are byte for byte those of
one process. A task lost with its node is Ray's to retry; it only reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from infer_kit.cluster import (
    RayOptions,
    check_shared_storage,
    cluster_nodes,
    connect,
    import_ray,
    map_tasks,
    total_cpus,
)
from infer_kit.console import log, progress

T = TypeVar("T")
R = TypeVar("R")


def _apply(func: Callable[[Any], Any], task: Any) -> Any:
    return func(task)


@dataclass
class ClusterScoring:
    """:meth:`open` (connect, check every node reads the outputs), then :meth:`map_chunks`."""

    options: RayOptions
    cpus: int = 0

    def open(self, first_file: str) -> int:
        """The CPUs the cluster scores with."""
        connection = connect(self.options.address)
        nodes = [n for n in cluster_nodes() if n.resources.get("CPU", 0) >= 1]
        passed = check_shared_storage(nodes, read_paths=[first_file])
        self.cpus = max(1, total_cpus(passed))
        log.info(f"ray: scoring on {len(passed)} node(s), {self.cpus} CPU(s), of the cluster at "
                 f"{connection.gcs_address}")
        return self.cpus

    def map_chunks(self, func: Callable[[T], R], tasks: Sequence[T], *, sizes: Sequence[int],
                   desc: str) -> Iterator[R]:
        """``func`` over ``tasks`` on the cluster, results in submission order, with a progress bar counting files."""
        ray = import_ray()
        remote = ray.remote(num_cpus=1)(_apply)
        with progress(total=sum(sizes), desc=desc, unit="file") as bar:
            for index, value in map_tasks(remote, list(tasks), ordered=True, args=(func,), window=2 * self.cpus):
                bar.update(sizes[index])
                yield value
