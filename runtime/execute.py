"""One device's share of a run: warm up, then read -> infer -> write every batch of a job.

The same code runs in the command's own process (one device), in one worker process per device
(:func:`run_worker`) and in a Ray actor (:mod:`infer_kit.runtime.ray_run` is handed :func:`execute`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from infer_kit.console import progress
from infer_kit.errors import InferKitError
from infer_kit.runtime.base import Runner, open_runner
from infer_kit.runtime.dynamic import check_file_shapes, check_output_sizes
from infer_kit.runtime.inputs import Batch, BatchReader, pure_feeds, read_batch_input
from infer_kit.runtime.jobs import WorkerJob, WorkerStats
from infer_kit.runtime.output_writer import OutputWriter

PREFETCH_BATCHES = 4


def execute(runner: Runner, job: WorkerJob, *, show_progress: bool = False) -> WorkerStats:
    """Warm up, then read -> infer -> write every batch of ``job`` with ``runner``."""
    stats = WorkerStats(job.device)
    if not job.batches:
        return stats
    dumper = _dumper(job)
    if job.per_file is not None:
        return _execute_per_file(runner, job, stats, dumper, show_progress)
    writer = _writer(job)
    if job.pure_data_type is not None:
        feeds = pure_feeds(job.inputs, job.pure_data_type)
        source: Any = _pure_source(job.batches[0], feeds)
        first = feeds
    else:
        first_batch = job.batches[0]
        first = [read_batch_input(files, desc, first_batch.size)
                 for files, desc in zip(first_batch.files, job.inputs, strict=True)]
        source = BatchReader(job.batches, job.inputs, depth=PREFETCH_BATCHES)
    try:
        for _ in range(job.warmup_count):
            runner.infer(first)
            _dump(dumper, runner)
        runner.reset_timings()
        start = time.perf_counter()
        stats.start_time = time.time()
        label = {"full": "Inference Processing full"}.get(job.run_mode, f"Inference {job.run_mode} Processing")
        bar = progress(source, total=len(job.batches), desc=label, unit="batch",
                       disable=None if show_progress else True)
        held: list[tuple[Batch, list[Any]]] = []
        if job.run_mode == "full":  # ais_bench loads every batch first, runs them all, then writes
            loaded = list(bar)
            bar = loaded
        for batch, feeds in bar:
            outputs = _infer(runner, feeds, job, dumper, stats)
            if job.run_mode == "full":
                held.append((batch, outputs))
            elif writer is not None:
                writer.submit(batch, outputs)
            stats.images += batch.real
            stats.padded += batch.padded
            stats.batches += 1
        stats.end_time = time.time()
        for batch, outputs in held:
            if writer is not None:
                writer.submit(batch, outputs)
        _finish(writer, stats, start)
    except BaseException:
        _abort(writer, source)
        raise
    finally:
        if dumper is not None:
            dumper.close()
    return _device_timings(runner, stats)


def run_worker(job: WorkerJob) -> WorkerStats:
    """Entry point of one device's worker process."""
    runner = open_runner(job.backend, job.model, **runner_options(job.batch, job.device, job.threads, job.arch),
                         **dict(job.runner_options))
    with runner:
        stats = execute_lanes(runner, job) if job.pipeline_threads else execute(runner, job)
    collect_profile(runner, [stats])
    return stats


def runner_options(batch: int | None, device: int, threads: int | None, arch: str | None) -> dict[str, Any]:
    """The options a run gives its runner: the ones the user set (a runner refuses any it does not take)."""
    options = {"batch": batch, "device": device, "threads": threads, "arch": arch}
    return {key: value for key, value in options.items() if value is not None}


def collect_profile(runner: Runner, stats: list[WorkerStats]) -> None:
    """Note the runner's ``--profiler`` trace (if it wrote one) in the first worker's stats."""
    profile = getattr(runner, "profile_file", None)
    if profile and stats and "profile" not in stats[0].extra:
        stats[0].extra["profile"] = profile


def _infer(runner: Runner, feeds: list[Any], job: WorkerJob, dumper: Any, stats: WorkerStats) -> list[Any]:
    """``--loop`` inferences of one batch (each dumped), the outputs checked against ``--outputSize``."""
    for _ in range(job.loop):
        outputs = runner.infer(feeds)
        _dump(dumper, runner)
    check_output_sizes(outputs, job.output_sizes)
    if "output_shapes" not in stats.extra:  # the first batch's, built once (not on every batch)
        stats.extra["output_shapes"] = [list(getattr(o, "shape", ())) for o in outputs]
    return outputs


def _finish(writer: OutputWriter | None, stats: WorkerStats, start: float) -> None:
    """Wait for the writer's last files, then take the wall time (it includes the writing)."""
    if writer is not None:
        writer.close()
        stats.filesinfo = writer.filesinfo
    stats.wall_time_s = time.perf_counter() - start


def _abort(writer: OutputWriter | None, source: Any = None) -> None:
    """A run that stopped: the reader stops reading ahead, the writer drops what it has not started."""
    if isinstance(source, BatchReader):
        source.close()
    if writer is not None:
        writer.abort()


def _device_timings(runner: Runner, stats: WorkerStats) -> WorkerStats:
    timings = runner.timings()
    stats.compute_ms, stats.h2d_ms, stats.d2h_ms = timings.compute_ms, timings.h2d_ms, timings.d2h_ms
    return stats


def _writer(job: WorkerJob) -> OutputWriter | None:
    if not job.write_outputs or job.result_dir is None:
        return None
    return OutputWriter(job.result_dir, job.outfmt, depth=PREFETCH_BATCHES, axis=job.output_axis,
                        shown=job.shown_dir)


def _dumper(job: WorkerJob) -> Any:
    if job.dump is None:
        return None
    from infer_kit.runtime.dump import DumpWriter

    return DumpWriter(job.dump)


def _dump(dumper: Any, runner: Runner) -> None:
    if dumper is not None:
        dumper.write(getattr(runner, "last_tensors", None))


def _execute_per_file(runner: Runner, job: WorkerJob, stats: WorkerStats, dumper: Any,
                      show_progress: bool) -> WorkerStats:
    """ais_bench's auto modes: each ``.npy`` is one inference at its own shape (a gear, or inside the range)."""
    import numpy as np

    writer = _writer(job)
    names = [desc.name for desc in job.inputs]

    def load(batch: Batch) -> list[Any]:
        feeds = []
        for files in batch.files:
            try:
                feeds.append(np.load(files[0], allow_pickle=False))
            except (OSError, ValueError) as exc:
                raise InferKitError(f"cannot read input file {files[0]}: {exc}") from None
        shapes = [tuple(int(d) for d in f.shape) for f in feeds]
        check_file_shapes(job.dynamic, names, shapes, job.per_file or "shape", str(batch.files[0][0]))
        runner.set_input_shapes(shapes)
        return feeds

    try:
        first = load(job.batches[0])
        for _ in range(job.warmup_count):
            runner.infer(first)
        runner.reset_timings()
        start = time.perf_counter()
        stats.start_time = time.time()
        for batch in progress(job.batches, total=len(job.batches), desc="Inference array Processing", unit="file",
                              disable=None if show_progress else True):
            feeds = load(batch)
            outputs = _infer(runner, feeds, job, dumper, stats)
            stats.batch_sizes.append(int(feeds[0].shape[0]) if feeds and feeds[0].ndim else 1)
            if writer is not None:
                writer.submit(batch, outputs)
            stats.images += 1
            stats.batches += 1
        stats.end_time = time.time()
        _finish(writer, stats, start)
    except BaseException:
        _abort(writer)
        raise
    finally:
        if dumper is not None:
            dumper.close()
    return _device_timings(runner, stats)


def execute_lanes(runner: Runner, job: WorkerJob) -> WorkerStats:
    """``--pipeline``: this runner and ``--threads`` - 1 more, one lane each."""
    from infer_kit.runtime.pipeline_mode import execute_pipeline

    runners = [runner]
    options = runner_options(job.batch, job.device, job.threads, job.arch)
    try:
        for _ in range(job.pipeline_threads - 1):
            runners.append(open_runner(job.backend, job.model, **options, **dict(job.runner_options)))
        return execute_pipeline(runners, job)
    finally:
        for extra in runners[1:]:
            extra.close()


def _pure_source(batch: Batch, feeds: list[Any]) -> Iterator[tuple[Batch, list[Any]]]:
    yield batch, feeds
