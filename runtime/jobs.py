"""What one worker is given (:class:`WorkerJob`) and what it measured (:class:`WorkerStats`).

Shared by the run stage, its execution modes (ais_bench's ``--run_mode``, ``--pipeline``, the
per-file dynamic-shape modes) and the device layouts; both are picklable, so a device's
worker process gets its job whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infer_kit.artifacts import TensorDesc
from infer_kit.runtime.inputs import Batch


@dataclass
class WorkerStats:
    """What one worker measured and wrote."""

    device: int
    compute_ms: list[float] = field(default_factory=list)
    h2d_ms: list[float] = field(default_factory=list)
    d2h_ms: list[float] = field(default_factory=list)
    filesinfo: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    images: int = 0
    padded: int = 0
    batches: int = 0
    wall_time_s: float = 0.0
    start_time: float = 0.0  # time.time() when the timed loop began and ended (ais_bench's multi-device line)
    end_time: float = 0.0
    batch_sizes: list[int] = field(default_factory=list)  # per inference, in the per-file dynamic modes
    intervals: list[tuple[float, float]] = field(default_factory=list)  # (start, end) ms, pipeline threads
    extra: dict[str, Any] = field(default_factory=dict)  # profile/dump paths and the like


@dataclass(frozen=True)
class WorkerJob:
    """Everything a worker process needs (picklable)."""

    model: str
    backend: str
    device: int
    threads: int | None
    batch: int
    arch: str | None
    inputs: tuple[TensorDesc, ...]
    batches: tuple[Batch, ...]
    result_dir: Path | None
    outfmt: str
    loop: int
    warmup_count: int
    pure_data_type: str | None
    write_outputs: bool
    runner_options: tuple[tuple[str, Any], ...] = ()  # more options for open_runner (dynamic shapes, AIPP, dump)
    shown_dir: str | None = None  # the result folder as ais_bench names it in filesinfo (the user's "./" kept)
    output_axis: int = 0  # --output_batchsize_axis
    run_mode: str = "array"  # --run_mode
    per_file: str | None = None  # "shape" | "dims": one .npy per inference, its own shape (the auto modes)
    output_sizes: tuple[int, ...] | None = None  # --outputSize (bytes per output)
    pipeline_threads: int = 0  # --pipeline --threads N (0: not the pipeline mode)
    debug: bool = False
    dump: Any = None  # a DumpJob (runtime.dump) when --dump is on
    dynamic: Any = None  # the model's DynamicProfile, to check each file's shape in the auto modes
