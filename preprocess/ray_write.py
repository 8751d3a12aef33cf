"""``preprocess --engine ray``: chunks of images written by Ray tasks, each through the writer's own ``write_one``.

Listing, checks, the manifest (before and after) and the label files stay with the caller on
this machine; only the decode -> transform -> atomic write of ``dst/<key>.bin`` moves to the
cluster, which reads the images and writes the tensors on the shared folder. Only the outcomes
(bytes written, or why an image was bad) come back, so the destination holds the same files
with the same bytes as one machine writes. A task is idempotent: one lost with its worker or
node is Ray's to retry elsewhere, and a retried image is rewritten with the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from infer_kit.cluster import (
    RayOptions,
    check_shared_storage,
    cluster_nodes,
    connect,
    import_ray,
    join_writers,
    map_tasks,
    total_cpus,
)
from infer_kit.console import log
from infer_kit.preprocess.writer import MAX_CHUNK, Job, Outcome, Task, write_one


def _write_chunk(job: Job, lock_file: str | None, tasks: list[Task]) -> list[Outcome]:
    join_writers(lock_file)
    return [write_one(task, job) for task in tasks]


@dataclass
class ClusterWriter:
    """:meth:`open` (connect, check every node reads the images and writes ``dst``), then :meth:`write`."""

    options: RayOptions
    cpus: int = 0

    def open(self, first_image: str, dst: Path) -> int:
        """The CPUs the cluster writes with (what the manifest calls its workers)."""
        connection = connect(self.options.address)
        nodes = [n for n in cluster_nodes() if n.resources.get("CPU", 0) >= 1]
        passed = check_shared_storage(nodes, read_paths=[first_image], write_dir=dst)
        self.cpus = max(1, total_cpus(passed))
        log.info(f"ray: preprocessing on {len(passed)} node(s), {self.cpus} CPU(s), of the cluster at "
                 f"{connection.gcs_address}")
        return self.cpus

    def write(self, tasks: Sequence[Task], job: Job, *, lock_file: Path | None = None) -> Iterator[list[Outcome]]:
        """The outcomes of ``tasks`` chunk by chunk, in completion order (close the generator to stop early)."""
        if not tasks:
            return
        ray = import_ray()
        size = self.options.files_per_task or MAX_CHUNK
        chunks = [list(tasks[i:i + size]) for i in range(0, len(tasks), size)]
        remote = ray.remote(num_cpus=1)(_write_chunk)
        args = (ray.put(job), str(lock_file) if lock_file is not None else None)
        for _, outcomes in map_tasks(remote, chunks, ordered=False, args=args, window=2 * self.cpus):
            yield outcomes
