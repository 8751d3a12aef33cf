"""ais_bench's ``--pipeline`` (with ``--threads T``): T sessions, each file one inference, the C++ writers.

ais_bench hands the file list to its C++ pipeline: T sessions (T lanes; lane k takes samples
k, k+T, ...), each with reader, copy, compute and save threads. Files are not combined: every
input file must be exactly the model input's size (``tensor_num:{i} tensorsize:{T} filesize:{F}
not match``). Outputs are named ``<input file name minus its last .npy/.bin>_<i>.<ext>`` (only
that extension is removed, unlike the normal path's first dot), written by C++: TXT with the
stream's default formatting (6 significant digits, each value and a space, one line per row; a
float16 output prints its raw 16-bit patterns and int8/uint8 print as characters, as
``std::ostream`` does with those types); no ``filesinfo`` is recorded. With T > 1 the summary's
compute time is the length of the union of busy intervals over the count, and only mean and count
are reported. Here each lane is one thread with its own runner (ONNX Runtime releases the GIL).
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infer_kit.errors import InferKitError
from infer_kit.fsutil import write_bytes_atomic
from infer_kit.runtime.base import Runner
from infer_kit.runtime.inputs import PURE_INFER_NAME, Batch, file_nbytes, pure_feeds, read_batch_input
from infer_kit.runtime.jobs import WorkerJob, WorkerStats

_TAILS = (".npy", ".bin", ".NPY", ".BIN")


def pipeline_output_name(input_file: str | os.PathLike[str], index: int, outfmt: str) -> str:
    """The C++ pipeline's name: the file name minus a trailing .npy/.bin, ``_<index>.<ext>``."""
    name = os.path.basename(os.fspath(input_file).rstrip("/"))
    for tail in _TAILS:
        if name.endswith(tail):
            name = name[: -len(tail)]
            break
    return f"{name}_{index}.{outfmt.lower()}"


def encode_cpp_txt(array: Any) -> bytes:
    """TXT as the C++ writer streams it: ``value << " "`` per value, ``std::endl`` after each row."""
    import numpy as np

    data = np.ascontiguousarray(array)
    width = data.shape[-1] if data.ndim else 1
    flat = data.reshape(-1)
    if data.dtype == np.float16:  # aclFloat16 is a uint16_t: the stream prints the bit pattern
        tokens = [str(v) for v in flat.view(np.uint16).tolist()]
    elif data.dtype in (np.int8, np.uint8):  # (u)int8_t are chars to a stream
        tokens = [chr(v % 256) for v in flat.view(np.uint8).tolist()]
    elif data.dtype == np.bool_:
        tokens = ["1" if v else "0" for v in flat.tolist()]
    elif data.dtype.kind == "f":
        tokens = [_cpp_float(v) for v in flat.tolist()]
    else:
        tokens = [str(v) for v in flat.tolist()]
    out = io.StringIO()
    for start in range(0, len(tokens), width):
        out.write("".join(t + " " for t in tokens[start:start + width]) + "\n")
    return out.getvalue().encode("latin1")


def _cpp_float(value: float) -> str:
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return f"{value:g}"


def encode_pipeline(array: Any, outfmt: str) -> bytes:
    import numpy as np

    data = np.ascontiguousarray(array)
    if outfmt == "BIN":
        return data.tobytes()
    if outfmt == "NPY":
        buffer = io.BytesIO()
        np.save(buffer, data.view(np.uint16) if data.dtype == np.float16 else data)
        return buffer.getvalue()
    return encode_cpp_txt(data)


def check_pipeline_sizes(lists: Sequence[Sequence[Path]], inputs: Sequence[Any]) -> None:
    """Every file must be exactly its input's size: no combining of files in the pipeline."""
    for index, (files, desc) in enumerate(zip(lists, inputs, strict=True)):
        tensor = desc.nbytes
        for path in files:
            size = file_nbytes(path)
            if size != tensor:
                raise InferKitError(f"tensor_num:{index} tensorsize:{tensor} filesize:{size} not match",
                                    hint="--pipeline takes one file per inference: each file must be exactly the "
                                         f"model input's {tensor} bytes ({path})")


def execute_pipeline(runners: Sequence[Runner], job: WorkerJob) -> WorkerStats:
    """Run every sample of ``job`` (batches of one file) on ``len(runners)`` lanes."""
    stats = WorkerStats(job.device)
    samples = list(job.batches)
    if not samples:
        return stats
    pure = job.pure_data_type is not None
    first = pure_feeds(job.inputs, job.pure_data_type or "zero") if pure else _read(samples[0], job)
    for runner in runners:
        for _ in range(job.warmup_count):
            runner.infer(first)
        runner.reset_timings()
    origin = time.perf_counter()
    errors: list[BaseException] = []
    lock = threading.Lock()
    stats.start_time = time.time()

    def lane(k: int) -> None:
        runner = runners[k]
        try:
            for batch in samples[k::len(runners)]:
                feeds = first if pure else _read(batch, job)
                for _ in range(job.loop):
                    began = time.perf_counter()
                    outputs = runner.infer(feeds)
                    ended = time.perf_counter()
                    with lock:
                        stats.intervals.append(((began - origin) * 1000.0, (ended - origin) * 1000.0))
                if job.write_outputs and job.result_dir is not None:
                    _write(batch, outputs, job)
                with lock:
                    stats.images += 1
                    stats.batches += 1
        except BaseException as exc:  # raised again in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=lane, args=(k,), name=f"infer-kit-lane-{k}", daemon=True)
               for k in range(len(runners))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats.end_time = time.time()
    stats.wall_time_s = time.perf_counter() - origin
    if errors:
        raise errors[0]
    stats.intervals.sort()
    stats.compute_ms = [end - start for start, end in stats.intervals]
    return stats


def multi_thread_mean(intervals: Sequence[tuple[float, float]]) -> float:
    """ais_bench's multi-thread compute time: the union of the busy intervals, over their count."""
    if not intervals:
        return 0.0
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return sum(end - start for start, end in merged) / len(intervals)


def _read(batch: Batch, job: WorkerJob) -> list[Any]:
    return [read_batch_input(files, desc, 1) for files, desc in zip(batch.files, job.inputs, strict=True)]


def _write(batch: Batch, outputs: Sequence[Any], job: WorkerJob) -> None:
    assert job.result_dir is not None
    source = batch.files[0][0] if batch.files[0] else Path(PURE_INFER_NAME)
    for i, array in enumerate(outputs):
        path = job.result_dir / pipeline_output_name(source, i, job.outfmt)
        try:
            write_bytes_atomic(path, encode_pipeline(array, job.outfmt))
        except OSError as exc:
            raise InferKitError(f"cannot write output file {path}: {exc.strerror}") from None
