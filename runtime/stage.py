"""The ``run`` stage: batched inference over tensor files, ais_bench-compatible.

Order of work, so that nothing is computed before every check has passed:

1. describe the model (manifest or ONNX metadata) and open its runner;
2. list the input files, check each folder's ``manifest.json`` against the model, check
   every file's size against the model input, refuse output-name collisions;
3. pick the result folder ``OUT/NAME`` (refused when it already holds files, unless
   ``resume``, which skips every batch whose outputs are all there);
4. run: a reader thread prefetches batches, the runner computes, a writer thread writes
   the outputs atomically; with several devices one worker process per device takes a
   contiguous share of the batches (the batches themselves stay the same);
5. write ``OUT/NAME_summary.json`` beside the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infer_kit.artifacts import (
    FOLDER_MANIFEST,
    ModelDescription,
    TensorDesc,
    artifact_paths,
    check_folder_matches_model,
    describe_model,
    read_folder_manifest,
)
from infer_kit.console import log, progress
from infer_kit.errors import InferKitError
from infer_kit.fsutil import (
    check_output_dir,
    check_output_file,
    read_json,
    remove_stale_partials,
    sha256_file,
    write_json_atomic,
)
from infer_kit.labels import image_key
from infer_kit.locks import hold
from infer_kit.result_files import check_outfmt, output_filename
from infer_kit.run_summary import build_summary, summary_path, write_run_summary
from infer_kit.runtime.base import Runner, choose_backend, open_runner
from infer_kit.runtime.inputs import (
    INPUT_SUFFIXES,
    PURE_INFER_NAME,
    Batch,
    BatchReader,
    check_file_sizes,
    parse_shard,
    plan_batches,
    pure_feeds,
    read_batch_input,
    resolve_input_files,
    shard_range,
    split_contiguous,
    split_input_arg,
)
from infer_kit.runtime.output_writer import OutputWriter, existing_outputs
from infer_kit.workers import cpu_count, process_pool

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".tar", ".ckpt")
PREFETCH_BATCHES = 4


@dataclass(frozen=True)
class RunResult:
    """Where the outputs and the summary went (None without ``output``), and the summary itself."""

    result_dir: Path | None
    summary_path: Path | None
    summary: dict[str, Any]


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


def run(model: Any, inputs: str | Sequence[str | os.PathLike[str]] | None = None,
        output: str | os.PathLike[str] | None = None, *, output_dirname: str | None = None, outfmt: str = "BIN",
        batchsize: int | None = None, loop: int = 1, warmup_count: int = 1, devices: Sequence[int] = (0,),
        backend: str = "auto", threads: int | None = None, pure_data_type: str = "zero", resume: bool = False,
        shard: str | tuple[int, int] | None = None, arch: str | None = None,
        args: Sequence[str] | None = None) -> RunResult:
    """Run ``model`` over the tensor files in ``inputs`` (or on generated data) like ais_bench does.

    ``model``: an ONNX file, an emulated artifact (``<base>.emu.onnx`` / ``.manifest.json``),
    an ``.om``, or for ``backend="torch"`` a checkpoint path or ``nn.Module`` with ``arch``.
    Returns the result folder, the summary path and the summary dict.
    """
    outfmt = check_outfmt(outfmt)
    devices = _check_devices(devices)
    shard_kn = shard if isinstance(shard, tuple) or shard is None else parse_shard(shard)
    _check_counts(loop, warmup_count, batchsize, threads, pure_data_type)
    if output is None and (output_dirname is not None or resume):
        raise InferKitError("--output-dirname and --resume need --output", hint="add --output OUT")
    if resume and output_dirname is None:
        raise InferKitError("--resume needs --output-dirname to find the run to finish",
                            hint="pass the same --output and --output-dirname as the interrupted run")
    if inputs is None and shard_kn is not None:
        raise InferKitError("--shard needs --input", hint="pure-performance mode has no files to split")
    result_dir, summary_path = _result_paths(output, output_dirname)
    with contextlib.ExitStack() as stack:
        return _run(stack, model, inputs, result_dir, summary_path, outfmt=outfmt, batchsize=batchsize, loop=loop,
                    warmup_count=warmup_count, devices=devices, backend=backend, threads=threads,
                    pure_data_type=pure_data_type, resume=resume, shard=shard_kn, arch=arch, args=args)


def _run(stack: contextlib.ExitStack, model: Any, inputs: Any, result_dir: Path | None, summary_path: Path | None,
         *, outfmt: str, batchsize: int | None, loop: int, warmup_count: int, devices: list[int], backend: str,
         threads: int | None, pure_data_type: str, resume: bool, shard: tuple[int, int] | None, arch: str | None,
         args: Sequence[str] | None) -> RunResult:
    """Check everything, then take the result folder's lock (held on ``stack``) and run."""
    shard_kn = shard
    description, model_label = _describe(model, backend, arch)
    backend = choose_backend(backend, description)
    model_ref = model if backend == "torch" else str(description.path)
    worker_threads = threads
    if threads is None and len(devices) > 1 and backend == "onnxruntime":
        worker_threads = max(1, cpu_count() // len(devices))

    runner = open_runner(backend, model_ref, **_runner_options(batchsize, devices[0], worker_threads, arch))
    try:
        batch = runner.batch
        if batchsize is not None and batchsize != batch:
            log.warning(f"--batchsize {batchsize} ignored: {model_label} has a static batch of {batch}")
        batches, files_total = _plan(inputs, runner.inputs, description, shard_kn)
        identity = _identity(description, model_ref, inputs, batches, outfmt, batch, shard_kn, backend)
        lock = None
        if result_dir is not None:  # every check passed: from here on the folder is this run's alone
            lock = stack.enter_context(hold(_side_file(result_dir, ".lock"), what=f"result folder {result_dir}"))
        done = _prepare_result_dir(result_dir, resume, outfmt, identity)
        todo, skipped, skipped_info = _split_done(batches, done, len(runner.outputs), outfmt)
        pure = None if inputs is not None else pure_data_type
        _log_plan(inputs, runner, batches, todo, skipped)
        job = WorkerJob(
            model=str(model_ref) if not hasattr(model_ref, "forward") else "<module>", backend=backend,
            device=devices[0], threads=worker_threads, batch=batch, arch=arch, inputs=tuple(runner.inputs),
            batches=tuple(todo), result_dir=result_dir, outfmt=outfmt, loop=loop, warmup_count=warmup_count,
            pure_data_type=pure, write_outputs=result_dir is not None,
        )
        if len(devices) == 1:
            stats = [execute(runner, job, show_progress=True)]
        else:
            if hasattr(model_ref, "forward"):
                raise InferKitError("an in-memory torch module runs on one device", hint="pass --device 0")
            runner.close()
            stats = _run_workers(job, devices, lock)
        info = _info(runner, backend, model_label, description, job, stats, files_total, skipped, shard_kn,
                     devices, result_dir, summary_path)
    finally:
        runner.close()
    filesinfo = dict(skipped_info)
    for worker in stats:
        filesinfo.update(worker.filesinfo)
    summary = build_summary(
        filesinfo=filesinfo, args=list(args) if args is not None else list(sys.argv),
        compute_ms=[t for s in stats for t in s.compute_ms], h2d_ms=[t for s in stats for t in s.h2d_ms],
        d2h_ms=[t for s in stats for t in s.d2h_ms], batchsize=batch, infer_kit=info,
    )
    if summary_path is not None:
        write_run_summary(summary_path, summary)
    return RunResult(result_dir, summary_path, summary)


def execute(runner: Runner, job: WorkerJob, *, show_progress: bool = False) -> WorkerStats:
    """Warm up, then read -> infer -> write every batch of ``job`` with ``runner``."""
    stats = WorkerStats(job.device)
    if not job.batches:
        return stats
    writer = OutputWriter(job.result_dir, job.outfmt, depth=PREFETCH_BATCHES) if job.write_outputs else None
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
        runner.reset_timings()
        start = time.perf_counter()
        bar = progress(source, total=len(job.batches), desc="run", unit="batch", disable=None if show_progress
                       else True)
        for batch, feeds in bar:
            for _ in range(job.loop):
                outputs = runner.infer(feeds)
            if writer is not None:
                writer.submit(batch, outputs)
            stats.images += batch.real
            stats.padded += batch.padded
            stats.batches += 1
        if writer is not None:
            writer.close()
            stats.filesinfo = writer.filesinfo
        stats.wall_time_s = time.perf_counter() - start
    except BaseException:
        if isinstance(source, BatchReader):
            source.close()
        if writer is not None:
            writer.abort()
        raise
    timings = runner.timings()
    stats.compute_ms, stats.h2d_ms, stats.d2h_ms = timings.compute_ms, timings.h2d_ms, timings.d2h_ms
    return stats


def run_worker(job: WorkerJob) -> WorkerStats:
    """Entry point of one device's worker process."""
    with open_runner(job.backend, job.model, **_runner_options(job.batch, job.device, job.threads, job.arch)) as runner:
        return execute(runner, job)


def _runner_options(batch: int | None, device: int, threads: int | None, arch: str | None) -> dict[str, Any]:
    """The options a run gives its runner: the ones the user set (a runner refuses any it does not take)."""
    options = {"batch": batch, "device": device, "threads": threads, "arch": arch}
    return {key: value for key, value in options.items() if value is not None}


def _run_workers(job: WorkerJob, devices: list[int], lock: Path | None) -> list[WorkerStats]:
    from dataclasses import replace

    if job.pure_data_type is not None:
        shares = [(0, len(job.batches))] * len(devices)
    else:
        shares = split_contiguous(len(job.batches), len(devices))
    jobs = [replace(job, device=d, batches=job.batches[a:b],
                    write_outputs=job.write_outputs and (job.pure_data_type is None or n == 0))
            for n, (d, (a, b)) in enumerate(zip(devices, shares, strict=True))]
    log.info(f"running on devices {','.join(map(str, devices))}: one worker process each")
    with process_pool(len(jobs), what="run", lock_file=lock,
                      hint="the outputs it finished are kept; rerun with --resume to finish the rest") as pool:
        return list(pool.map(run_worker, jobs))


def _pure_source(batch: Batch, feeds: list[Any]) -> Iterator[tuple[Batch, list[Any]]]:
    yield batch, feeds


def _describe(model: Any, backend: str, arch: str | None) -> tuple[ModelDescription, str]:
    """The model's description and a label for messages; torch models are described from ``arch``."""
    if hasattr(model, "forward"):
        if backend not in ("auto", "torch"):
            raise InferKitError(f"an nn.Module runs with the torch backend, not {backend!r}")
        return _torch_description(Path(type(model).__name__), arch), type(model).__name__
    path = Path(model)
    if backend == "torch":
        if not path.name.endswith(CHECKPOINT_SUFFIXES):
            raise InferKitError(
                f"the torch backend runs a checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}) with --arch, not {path.name}",
                hint="run ONNX models and emulated artifacts with --backend onnxruntime",
            )
        if not path.is_file():
            raise InferKitError(f"checkpoint not found: {path}")
        return _torch_description(path, arch), path.name
    if not path.exists() and not (path.suffix == ".om" and artifact_paths(path).manifest.is_file()):
        raise InferKitError(f"model not found: {path}", hint="give an .onnx, an emulated .emu.onnx or an .om")
    description = describe_model(path)
    if not path.exists():
        log.info(f"{path.name} is not here (no CANN); running its emulated artifact {description.path.name}")
    return description, path.name


def _torch_description(path: Path, arch: str | None) -> ModelDescription:
    spec = None
    if arch is not None:
        from infer_kit.registry import get_model

        spec = get_model(arch).spec
    return ModelDescription("torch", path, spec, "float" if spec is not None else None, None, (), ())


def _plan(inputs: Any, model_inputs: Sequence[TensorDesc], description: ModelDescription | None,
          shard: tuple[int, int] | None) -> tuple[list[Batch], int]:
    """Batches (input 0's real files name the outputs) and the number of files they cover."""
    if inputs is None:
        pure = tuple((Path(PURE_INFER_NAME),) for _ in model_inputs)
        return [Batch(0, pure, 1)], 0
    folders = [p for p in split_input_arg(inputs) if p.is_dir()]
    lists = resolve_input_files(inputs, len(model_inputs))
    if description is not None:
        for folder in folders:
            manifest = read_folder_manifest(folder)
            if manifest is not None:
                check_folder_matches_model(manifest, description)
                _warn_count(manifest.count, folder)
    per_batch = check_file_sizes(lists, model_inputs)
    _check_collisions(lists[0])
    start, stop = shard_range(len(lists[0]), shard)
    if start == stop:
        raise InferKitError(f"shard {shard[0]}/{shard[1]} of {len(lists[0])} files is empty",  # type: ignore[index]
                            hint="use fewer shards than files")
    lists = [files[start:stop] for files in lists]
    return plan_batches(lists, per_batch), stop - start


def _warn_count(expected: int, folder: Path) -> None:
    found = sum(1 for name in os.listdir(folder) if name.endswith(INPUT_SUFFIXES))
    if found != expected:
        log.warning(f"{folder}/manifest.json records {expected} file(s) but the folder holds {found}: "
                    "was 'infer-kit preprocess' interrupted? (rerun it with --resume)")


def _check_collisions(files: Sequence[Path]) -> None:
    seen: dict[str, Path] = {}
    for path in files:
        key = image_key(path.name)
        if key in seen:
            raise InferKitError(
                f"input files {seen[key].name} and {path.name} would write the same outputs ({key}_0...)",
                hint="outputs are named after the file name up to its first '.'; rename one of them",
            )
        seen[key] = path


def _result_paths(output: Any, output_dirname: str | None) -> tuple[Path | None, Path | None]:
    if output is None:
        return None, None
    name = output_dirname or time.strftime("%Y_%m_%d-%H_%M_%S")
    if not name or Path(name).name != name or name in (".", ".."):
        raise InferKitError(f"--output-dirname {name!r} must be a plain folder name")
    out = check_output_dir(output, what="--output")
    result_dir = check_output_dir(out / name, what="result folder")
    return result_dir, check_output_file(summary_path(result_dir), what="run summary")


def _side_file(result_dir: Path, suffix: str) -> Path:
    """A hidden file beside ``OUT/NAME`` (never inside: the folder holds outputs only, as scorers expect)."""
    return result_dir.parent / f".{result_dir.name}{suffix}"


def _identity(description: ModelDescription, model_ref: Any, inputs: Any, batches: list[Batch], outfmt: str,
              batch: int, shard: tuple[int, int] | None, backend: str) -> dict[str, Any]:
    """What made a result folder's outputs: a resume must match it exactly, or it would mix two runs."""
    model_file = None if hasattr(model_ref, "forward") else Path(model_ref)
    files = hashlib.sha256()
    for planned in batches:
        for slot in range(planned.real):
            for per_input in planned.files:
                path = per_input[slot]
                files.update(f"{Path(path).resolve()}\0{_size(path)}\n".encode())
    manifests = {}
    for folder in ([] if inputs is None else [p for p in split_input_arg(inputs) if p.is_dir()]):
        manifest = folder / FOLDER_MANIFEST
        manifests[str(folder.resolve())] = sha256_file(manifest) if manifest.is_file() else None
    return {
        "model": str(model_file.resolve()) if model_file else "<module>",
        "model_sha256": sha256_file(model_file) if model_file and model_file.is_file() else None,
        "backend": backend,
        "batch": batch,
        "outfmt": outfmt,
        "shard": list(shard) if shard else None,
        "input_files": files.hexdigest(),
        "input_manifests": manifests,
    }


def _size(path: Path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return -1


def _prepare_result_dir(result_dir: Path | None, resume: bool, outfmt: str, identity: dict[str, Any]) -> set[str]:
    """Create the result folder; the names already in it (resume, same run only), or refuse a used one."""
    if result_dir is None:
        return set()
    existing = existing_outputs(result_dir)
    if existing and not resume:
        raise InferKitError(
            f"result folder {result_dir} already holds {len(existing)} file(s)",
            hint="pass --resume to finish that run, or choose another --output-dirname",
        )
    foreign = sorted(n for n in existing if not n.endswith("." + outfmt.lower()))
    if resume and foreign:
        raise InferKitError(
            f"cannot resume into {result_dir} with --outfmt {outfmt}: it holds other files, e.g. {foreign[0]}",
            hint="resume with the interrupted run's --outfmt, or choose another --output-dirname",
        )
    record = _side_file(result_dir, ".run.json")
    if resume and existing:
        _check_same_run(record, identity, result_dir)
    if resume and result_dir.is_dir():
        removed = remove_stale_partials(result_dir)
        if removed:
            log.info(f"removed {removed} partial file(s) an interrupted run left in {result_dir}")
    try:
        result_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InferKitError(f"cannot create result folder {result_dir}: {exc.strerror}") from None
    write_json_atomic(record, identity)
    return existing


_IDENTITY_WORDS = {"model": "another model file", "model_sha256": "another model (its sha256 differs)",
                   "backend": "another backend", "batch": "another batch size", "outfmt": "another --outfmt",
                   "shard": "another --shard", "input_files": "other input files",
                   "input_manifests": "inputs preprocessed differently (their manifest differs)"}


def _check_same_run(record: Path, identity: dict[str, Any], result_dir: Path) -> None:
    """Refuse to resume into outputs that another run (model, inputs, options) wrote."""
    if not record.is_file():
        raise InferKitError(
            f"cannot resume into {result_dir}: there is no record of the run that wrote its outputs ({record.name})",
            hint="choose another --output-dirname, or delete the folder to run again",
        )
    written = read_json(record, what="run record")
    differ = [key for key in _IDENTITY_WORDS if written.get(key) != identity.get(key)]
    if differ:
        raise InferKitError(
            f"cannot resume into {result_dir}: its outputs were written by a run with "
            f"{', '.join(_IDENTITY_WORDS[key] for key in differ)}",
            hint="resume with the interrupted run's model, inputs and options, or choose another --output-dirname",
        )


def _split_done(batches: list[Batch], done: set[str], n_outputs: int,
                outfmt: str) -> tuple[list[Batch], int, dict[int, dict[str, list[str]]]]:
    """Batches still to run; samples skipped; their filesinfo. A batch is redone whole unless complete."""
    if not done:
        return batches, 0, {}
    todo, skipped, info = [], 0, {}
    for batch in batches:
        names = [[output_filename(key, i, outfmt) for i in range(n_outputs)] for key in batch.keys]
        if all(name in done for per_file in names for name in per_file):
            skipped += batch.real
            for slot, per_file in enumerate(names):
                info[batch.index * batch.size + slot] = {
                    "infiles": [str(files[slot]) for files in batch.files], "outfiles": per_file}
        else:
            todo.append(batch)
    return todo, skipped, info


def _log_plan(inputs: Any, runner: Runner, batches: list[Batch], todo: list[Batch], skipped: int) -> None:
    if inputs is None:
        log.info("no --input: pure-performance mode on generated data")
        return
    size = batches[0].size
    log.info(f"{sum(b.real for b in batches)} file(s), {size} per batch of {runner.inputs[0].describe()}, "
             f"{len(batches)} batch(es)")
    if skipped:
        log.info(f"resume: {skipped} file(s) already have their outputs; {len(todo)} batch(es) to run")


def _info(runner: Runner, backend: str, model_label: str, description: ModelDescription | None, job: WorkerJob,
          stats: list[WorkerStats], files_total: int, skipped: int, shard: tuple[int, int] | None,
          devices: list[int], result_dir: Path | None, summary_path: Path | None) -> dict[str, Any]:
    wall = max((s.wall_time_s for s in stats), default=0.0)
    images = sum(s.images for s in stats)
    pure = job.pure_data_type is not None
    per_file = 1 if pure else job.batches[0].size if job.batches else None
    outputs = []
    for desc in runner.outputs:
        per_sample = list(desc.shape[1:]) if desc.shape else []
        file_shape = list(desc.shape) if pure or per_file is None else [job.batch // per_file, *per_sample]
        outputs.append({"name": desc.name, "dtype": desc.dtype, "shape": per_sample, "file_shape": file_shape})
    info: dict[str, Any] = {
        "backend": backend,
        "provider": runner.provider,
        "threads": job.threads if job.threads is not None else runner.threads,
        "model": model_label,
        "model_path": job.model,
        "model_kind": description.kind if description is not None else "torch",
        "batchsize": job.batch,
        "files": files_total,
        "processed": images,
        "skipped": skipped,
        "padded": sum(s.padded for s in stats),
        "batches": sum(s.batches for s in stats),
        "loop": job.loop,
        "warmup_count": job.warmup_count,
        "wall_time_s": wall,
        "throughput_e2e": images * job.loop / wall if wall else 0.0,
        "outfmt": job.outfmt,
        "result_dir": str(result_dir) if result_dir is not None else None,
        "summary_path": str(summary_path) if summary_path is not None else None,
        "shard": f"{shard[0]}/{shard[1]}" if shard else None,
        "devices": devices,
        "outputs": outputs,
        "pure_data_type": job.pure_data_type,
    }
    if len(stats) > 1:
        info["per_device"] = [
            {"device": s.device, "images": s.images, "batches": s.batches, "wall_time_s": s.wall_time_s,
             "throughput_e2e": s.images * job.loop / s.wall_time_s if s.wall_time_s else 0.0}
            for s in stats
        ]
    return info


def _check_devices(devices: Sequence[int] | int | str) -> list[int]:
    if isinstance(devices, int):
        devices = [devices]
    elif isinstance(devices, str):
        try:
            devices = [int(d) for d in devices.split(",") if d.strip()]
        except ValueError:
            raise InferKitError(f"--device {devices!r} is not a list of integers", hint="e.g. --device 0,1") from None
    result = [int(d) for d in devices]
    if not result:
        raise InferKitError("--device is empty", hint="e.g. --device 0")
    bad = [d for d in result if not 0 <= d <= 255]
    if bad:
        raise InferKitError(f"device {bad[0]} is invalid: valid range is [0, 255]")
    if len(set(result)) != len(result):
        raise InferKitError(f"--device {','.join(map(str, result))} names a device twice")
    return result


def _check_counts(loop: int, warmup_count: int, batchsize: int | None, threads: int | None,
                  pure_data_type: str) -> None:
    if loop < 1:
        raise InferKitError(f"--loop {loop} is invalid: give a positive integer")
    if warmup_count < 0:
        raise InferKitError(f"--warmup-count {warmup_count} is invalid: give 0 or more")
    if batchsize is not None and batchsize < 1:
        raise InferKitError(f"--batchsize {batchsize} is invalid: give a positive integer")
    if threads is not None and threads < 1:
        raise InferKitError(f"--threads {threads} is invalid: give a positive integer")
    if pure_data_type not in ("zero", "random"):
        raise InferKitError(f"--pure-data-type {pure_data_type!r} is invalid", hint="use zero or random")
