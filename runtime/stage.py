"""The ``run`` stage: batched inference over tensor files, ais_bench-compatible.

Order of work, so that nothing is computed before every check has passed:

1. describe the model (manifest or ONNX metadata), resolve its dynamic shapes against the
   request (``--dymBatch`` and friends, :mod:`infer_kit.runtime.dynamic`), open its runner;
2. list the input files, check each folder's ``manifest.json`` against the model, check
   every file's size against the model input, refuse output-name collisions;
3. pick the result folder ``OUT/NAME`` (refused when it already holds files, unless
   ``resume``, which skips every batch whose outputs are all there);
4. run: a reader thread prefetches batches, the runner computes, a writer thread writes
   the outputs atomically (ais_bench's ``--run_mode full`` reads everything first and writes
   last; ``--pipeline`` runs one file per inference on ``--threads`` lanes; the auto dynamic
   modes run one ``.npy`` per inference at its own shape);
5. write ``OUT/NAME_summary.json`` beside the folder.

Step 4 for one device is :mod:`infer_kit.runtime.execute`; the result folder, its run record and
what a resume skips are :mod:`infer_kit.runtime.result_folder`.

Several devices (``--device 0,1``) run as ais_bench runs them: one worker process per device,
each on every input (or its ``--divide_input`` share), into ``OUT/NAME/device{id}_{i}/`` with a
summary each (:mod:`infer_kit.runtime.devices`); ``split_devices`` keeps infer-kit's own mode,
one folder with the batches shared among the devices. With ``engine="ray"`` one actor per device
of a Ray cluster takes tasks of whole batches into one folder, as one machine writes it
(:mod:`infer_kit.runtime.ray_run`: the actors open the model, this machine does not).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infer_kit.artifacts import (
    ModelDescription,
    TensorDesc,
    artifact_paths,
    check_folder_matches_model,
    describe_model,
    read_folder_manifest,
)
from infer_kit.cluster import RayOptions, check_engine
from infer_kit.console import log
from infer_kit.errors import BackendUnavailable, InferKitError
from infer_kit.fsutil import (
    check_output_dir,
    check_output_file,
    sha256_file,
)
from infer_kit.locks import hold
from infer_kit.result_files import check_outfmt
from infer_kit.run_summary import build_summary, summary_path, write_run_summary
from infer_kit.runtime.base import Runner, choose_backend, open_runner
from infer_kit.runtime.devices import check_device_base, device_folder, divide_files, end_lines
from infer_kit.runtime.dynamic import DymRequest, RunShapes, resolve_shapes
from infer_kit.runtime.execute import collect_profile, execute, execute_lanes, run_worker, runner_options
from infer_kit.runtime.inputs import (
    INPUT_SUFFIXES,
    PURE_INFER_NAME,
    Batch,
    check_file_sizes,
    parse_shard,
    plan_batches,
    resolve_input_files,
    shard_range,
    shown_lists,
    split_contiguous,
    split_input_arg,
)
from infer_kit.runtime.jobs import WorkerJob, WorkerStats
from infer_kit.runtime.output_writer import check_split
from infer_kit.runtime.ray_run import ClusterRun
from infer_kit.runtime.result_folder import (
    check_collisions,
    prepare_result_dir,
    result_paths,
    run_identity,
    side_file,
    split_done,
)
from infer_kit.spec import PreprocessSpec
from infer_kit.workers import cpu_count, process_pool

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".tar", ".ckpt", ".pyth")
RUN_MODES = ("array", "files", "tensor", "full")
MAX_PIPELINE_THREADS = 64


@dataclass(frozen=True)
class RunResult:
    """Where the outputs and the summary went (None without ``output``), and the summary itself.

    With several devices in ais_bench's layout, ``result_dir`` is ``OUT/NAME``, ``per_device``
    holds each device's own result and ``summary`` adds them up; ``lines`` are the extra lines
    ais_bench prints after its summary (the multi-device end lines, the profile table).
    """

    result_dir: Path | None
    summary_path: Path | None
    summary: dict[str, Any]
    per_device: tuple[RunResult, ...] = ()
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Options:
    """Everything one run was asked, checked once (see :func:`run`)."""

    outfmt: str
    batchsize: int | None
    loop: int
    warmup_count: int
    devices: list[int]
    backend: str
    threads: int | None
    pure_data_type: str
    resume: bool
    shard: tuple[int, int] | None
    arch: str | None
    args: Sequence[str] | None
    request: DymRequest = field(default_factory=DymRequest)
    aipp_config: str | None = None
    output_axis: int = 0
    run_mode: str = "array"
    debug: bool = False
    profiler: bool = False
    dump: bool = False
    dump_npy: bool = False
    pipeline_threads: int = 0
    divide_input: bool = False
    split_devices: bool = False
    replace_outputs: bool = False
    output: str | None = None  # --output as typed (for the names ais_bench records)
    output_dirname: str | None = None
    spec: PreprocessSpec | None = None  # the torch backend's input files' preprocessing, when given


def run(model: Any, inputs: str | Sequence[str | os.PathLike[str]] | None = None,
        output: str | os.PathLike[str] | None = None, *, output_dirname: str | None = None, outfmt: str = "BIN",
        batchsize: int | None = None, loop: int = 1, warmup_count: int = 1, devices: Sequence[int] = (0,),
        backend: str = "auto", threads: int | None = None, pure_data_type: str = "zero", resume: bool = False,
        shard: str | tuple[int, int] | None = None, arch: str | None = None,
        args: Sequence[str] | None = None, dym_batch: int | None = 0, dym_hw: str | None = None,
        dym_dims: str | None = None, dym_shape: str | None = None, output_size: str | None = None,
        auto_set_dymshape_mode: bool = False, auto_set_dymdims_mode: bool = False,
        aipp_config: str | os.PathLike[str] | None = None, output_batchsize_axis: int = 0, run_mode: str = "array",
        debug: bool = False, profiler: bool = False, dump: bool = False, dump_npy: bool = False,
        pipeline: bool = False, pipeline_threads: int = 1, divide_input: bool = False, split_devices: bool = False,
        energy_consumption: bool = False, acl_json_path: str | None = None,
        replace_outputs: bool = False, engine: str = "local", address: str | None = None,
        ray_options: RayOptions | None = None, spec: PreprocessSpec | None = None) -> RunResult:
    """Run ``model`` over the tensor files in ``inputs`` (or on generated data) like ais_bench does.

    ``model``: an ONNX file, an emulated artifact (``<base>.emu.onnx`` / ``.manifest.json``),
    an ``.om``, or for ``backend="torch"`` a checkpoint path or ``nn.Module`` with ``arch`` (``spec``:
    the preprocessing its input files were made with, when not the arch's or the checkpoint's own).
    ``threads`` is the runner's CPU threads; ``pipeline``/``pipeline_threads`` are ais_bench's
    ``--pipeline --threads``. ``batchsize`` is ais_bench's: the batch the throughput figure uses
    (by default derived from the model), and the batch of a plain ONNX model with a dynamic batch
    axis. The ``dym_*``, ``output_size`` and ``auto_set_*`` arguments are ais_bench's dynamic-shape
    flags, ``aipp_config`` its dynamic-AIPP parameters. ``replace_outputs`` lets a
    ``--dymShape_range`` sweep write each shape's outputs over the last one's, as ais_bench does.
    ``engine="ray"`` spreads the batches over a Ray cluster (``address``: ``auto`` or ``HOST:PORT``;
    ``ray_options`` for the rest) with the same outputs and summary.
    Returns the result folder, the summary path and the summary dict.
    """
    outfmt = check_outfmt(outfmt)
    devices = _check_devices(devices)
    shard_kn = shard if isinstance(shard, tuple) or shard is None else parse_shard(shard)
    _check_counts(loop, warmup_count, batchsize, threads, pure_data_type)
    if energy_consumption:
        raise BackendUnavailable("--energy_consumption reads the NPU's power draw with npu-smi, and there is no "
                                 "Ascend device here", hint="run it on an Ascend host; the emulation has no power "
                                                            "figure to give")
    if acl_json_path is not None:
        raise BackendUnavailable(f"--acl_json_path {acl_json_path} configures the Ascend ACL runtime (aclInit), which "
                                 "is not here", hint="use --dump or --profiler for their CPU equivalents")
    if aipp_config is not None and os.fspath(aipp_config) and not Path(aipp_config).is_file():
        raise InferKitError(f"--aipp_config {os.fspath(aipp_config)}: no such file (ais_bench checks it before "
                            "anything runs, whatever the model)",
                            hint="give the .config file of dynamic AIPP parameters, or leave out --aipp_config")
    if output is None and (output_dirname is not None or resume):
        raise InferKitError("--output-dirname and --resume need --output", hint="add --output OUT")
    if resume and output_dirname is None:
        raise InferKitError("--resume needs --output-dirname to find the run to finish",
                            hint="pass the same --output and --output-dirname as the interrupted run")
    if inputs is None and shard_kn is not None:
        raise InferKitError("--shard needs --input", hint="pure-performance mode has no files to split")
    if profiler and dump:
        raise InferKitError("parameter --profiler cannot be true at the same time as parameter --dump, please check "
                            "them!", hint="profile and dump in two runs")
    if (profiler or dump) and output is None:
        raise InferKitError("when dump or profiler, miss output path, please check them!", hint="add --output OUT")
    if run_mode not in RUN_MODES:
        raise InferKitError(f"wrong run_mode:{run_mode}", hint=f"use one of {', '.join(RUN_MODES)}")
    if output_batchsize_axis < 0:
        raise InferKitError(f"--output_batchsize_axis {output_batchsize_axis} is invalid: give 0 or more")
    if not 1 <= pipeline_threads <= MAX_PIPELINE_THREADS:
        raise InferKitError(f"--threads {pipeline_threads} is invalid: give 1 to {MAX_PIPELINE_THREADS}")
    if pipeline_threads > 1 and not pipeline:
        log.info("need to set --pipeline when setting threads number to be more than one.")
        pipeline_threads = 1
    if profiler and inputs is not None and warmup_count != 0:
        log.info("profiler mode with input change warmup_count to 0")
        warmup_count = 0
    request = DymRequest(int(dym_batch or 0), dym_hw, dym_dims, dym_shape, output_size, bool(auto_set_dymshape_mode),
                         bool(auto_set_dymdims_mode))
    options = _Options(
        outfmt=outfmt, batchsize=batchsize, loop=loop, warmup_count=warmup_count, devices=devices, backend=backend,
        threads=threads, pure_data_type=pure_data_type, resume=resume, shard=shard_kn, arch=arch, args=args,
        request=request, aipp_config=os.fspath(aipp_config) if aipp_config is not None else None,
        output_axis=output_batchsize_axis, run_mode=run_mode, debug=debug, profiler=profiler, dump=dump,
        dump_npy=dump_npy, pipeline_threads=pipeline_threads if pipeline else 0, divide_input=divide_input,
        split_devices=split_devices, replace_outputs=replace_outputs,
        output=os.fspath(output) if output is not None else None, output_dirname=output_dirname, spec=spec,
    )
    cluster = _cluster(check_engine(engine, address), address, ray_options, inputs, options)
    with contextlib.ExitStack() as stack:
        if len(devices) > 1 and not split_devices:
            return _run_devices(stack, model, inputs, options)
        result_dir, result_summary = result_paths(output, output_dirname)
        return _run(stack, model, inputs, result_dir, result_summary, options, cluster)


@dataclass
class _Prepared:
    """A model described, its shapes resolved and its runner open (closed by the caller)."""

    description: ModelDescription
    label: str
    backend: str
    model_ref: Any
    shapes: RunShapes
    runner: Runner
    runner_options: dict[str, Any]
    worker_threads: int | None


def _prepare(model: Any, options: _Options, devices: list[int], *, planning: bool = False,
             cluster: ClusterRun | None = None, inputs: Any = None) -> _Prepared:
    description, label = _describe(model, options.backend, options.arch, options.spec)
    backend = choose_backend(options.backend, description)
    model_ref = model if backend == "torch" else str(description.path)
    worker_threads = options.threads
    if options.threads is None and len(devices) > 1 and backend == "onnxruntime":
        worker_threads = max(1, cpu_count() // len(devices))
    shapes = RunShapes(None, None)
    if backend != "torch":
        shapes = resolve_shapes(description, options.request, options.batchsize)
    elif options.request.given or options.aipp_config is not None:
        raise InferKitError("the torch backend runs the checkpoint's own graph: dynamic-shape flags and "
                            "--aipp_config apply to compiled models", hint="run the ONNX model or artifact instead")
    extra = _extra_runner_options(description, backend, shapes, options)
    profile = extra.pop("profile", None)
    runner_extra = dict(extra) if planning or profile is None else {**extra, "profile": profile}
    if cluster is not None:  # the cluster's actors open it (an .om does not open on a CPU-only head)
        if hasattr(model_ref, "forward"):
            raise InferKitError("an in-memory torch module runs on this machine only", hint="drop --engine ray")
        runner = cluster.open(backend, model_ref, {**runner_options(options.batchsize, 0, options.threads,
                                                                     options.arch), **runner_extra}, inputs)
        return _Prepared(description, label, backend, model_ref, shapes, runner, extra, options.threads)
    runner = open_runner(backend, model_ref, **runner_options(options.batchsize, devices[0], worker_threads,
                                                               options.arch), **runner_extra)
    return _Prepared(description, label, backend, model_ref, shapes, runner, extra, worker_threads)


def _extra_runner_options(description: ModelDescription, backend: str, shapes: RunShapes,
                          options: _Options) -> dict[str, Any]:
    """What a runner needs beyond batch/device/threads: shapes, the run's dynamic AIPP, ais_bench's request."""
    extra: dict[str, Any] = {}
    if backend == "torch":  # its input size: the given spec's, else what the arch or checkpoint says
        if options.spec is not None:
            extra["input_shape"] = (options.batchsize or 1, *options.spec.sample_shape("float"))
        return extra
    if backend == "ascend":
        if options.request.given:
            extra["dynamic"] = options.request
        if options.aipp_config is not None:
            extra["aipp_config"] = options.aipp_config
        return extra
    input_shapes = list(shapes.input_shapes) if shapes.input_shapes is not None else None
    if shapes.per_file is not None and description.inputs:  # each file brings its own shape: axes stay open
        input_shapes = [tuple(desc.shape) for desc in description.inputs]
    if description.dynamic_aipp is not None and backend == "onnxruntime":
        op, shape, model_hw = _dynamic_aipp(description, shapes, options)
        extra["dynamic_aipp"] = (op, model_hw, False)
        input_shapes = [shape]
    elif options.aipp_config is not None:
        log.info(f"--aipp_config {options.aipp_config} ignored: {description.path.name} has no dynamic AIPP input")
    if input_shapes is not None:
        extra["input_shapes"] = input_shapes
    if options.dump and backend == "onnxruntime":
        extra["expose"] = True
    if options.profiler and options.output is not None and backend == "onnxruntime":
        from infer_kit.runtime.profiling import profile_prefix

        extra["profile"] = profile_prefix(options.output, description.path.name.split(".")[0], options.devices[0])
    return extra


def _dynamic_aipp(description: ModelDescription, shapes: RunShapes,
                  options: _Options) -> tuple[Any, tuple[int, ...], tuple[int, int]]:
    """The run's AIPP op for a model compiled with dynamic AIPP, checked as the device checks it."""
    from infer_kit.aipp import read_ais_aipp_config, resolve_geometry, source_bytes, source_shape

    info = description.dynamic_aipp
    assert info is not None
    if options.aipp_config is None:
        raise InferKitError("aipp model without aipp config!",
                            hint="can't find aipp config file for model with dym aipp input: pass --aipp_config "
                                 "FILE.config")
    op = read_ais_aipp_config(options.aipp_config)
    model_shape = shapes.input_shapes[0] if shapes.input_shapes is not None else tuple(
        d if d is not None else -1 for d in (description.dynamic.shape_of(info.input) if description.dynamic else
                                             description.inputs[0].shape))
    batch = int(model_shape[0]) if model_shape and model_shape[0] and model_shape[0] > 0 else 1
    if description.dynamic is not None and description.dynamic.kind == "batch":
        batch = max(g[0] for g in description.dynamic.gears)  # set for the largest batch, as ais_bench does
    model_hw = (int(model_shape[2]), int(model_shape[3])) if len(model_shape) == 4 and model_shape[2] > 0 \
        else tuple(info.model_hw)
    geometry = resolve_geometry(op, model_hw)
    if (geometry.out_h, geometry.out_w) != tuple(model_hw):
        raise InferKitError(f"--aipp_config {options.aipp_config}: its AIPP output is {geometry.out_h}x"
                            f"{geometry.out_w} but the model input is {model_hw[0]}x{model_hw[1]} (ACL refuses this "
                            "aclmdlSetInputAIPP)", hint="crop (and pad) the source to the model's H x W")
    need = source_bytes(op, batch)
    if need > info.max_src_image_size:
        raise InferKitError(f"--aipp_config {options.aipp_config}: {batch} source image(s) of "
                            f"{op.get('src_image_size_w')}x{op.get('src_image_size_h')} {op.input_format} need {need} "
                            f"bytes, above the compiled max_src_image_size {info.max_src_image_size}",
                            hint="a smaller source, or recompile with a larger max_src_image_size")
    run_batch = int(model_shape[0]) if model_shape and model_shape[0] and model_shape[0] > 0 else 1
    return op, (run_batch, *source_shape(op, geometry)), model_hw  # type: ignore[return-value]


def _run(stack: contextlib.ExitStack, model: Any, inputs: Any, result_dir: Path | None, summary_file: Path | None,
         options: _Options, cluster: ClusterRun | None = None) -> RunResult:
    """Check everything, then take the result folder's lock (held on ``stack``) and run."""
    devices = options.devices
    prepared = _prepare(model, options, devices, cluster=cluster, inputs=inputs)
    runner = prepared.runner
    stats: list[WorkerStats] = []
    try:
        batch = runner.batch
        if options.batchsize is not None and options.batchsize != batch:
            log.info(f"--batchsize {options.batchsize} is used for the throughput figure: {prepared.label} runs "
                     f"batches of {batch}")
        _log_debug(prepared, options, devices[0])
        lists, shown = _input_lists(inputs, runner.inputs, prepared.description, options, prepared.shapes)
        batches, files_total = _batches(lists, shown, runner.inputs, options, prepared.shapes)
        if result_dir is not None:
            _check_output_split(prepared, runner.outputs, batches, options)
        identity = run_identity(prepared.description, prepared.model_ref, inputs, batches, options.outfmt, batch,
                             options.shard, prepared.backend, _variant(options))
        lock = None
        if result_dir is not None:  # every check passed: from here on the folder is this run's alone
            lock = stack.enter_context(hold(side_file(result_dir, ".lock"), what=f"result folder {result_dir}"))
        done = prepare_result_dir(result_dir, options.resume, options.outfmt, identity, options.replace_outputs)
        shown_dir = _shown_dir(options, result_dir)
        todo, skipped, skipped_info = split_done(batches, done, len(runner.outputs), options.outfmt,
                                                 options.pipeline_threads > 0, shown_dir)
        _log_plan(inputs, runner, batches, todo, skipped)
        job = _job(prepared, options, devices[0], todo, result_dir, shown_dir, inputs)
        if cluster is not None:
            stats = cluster.execute(job, lock)
        elif options.pipeline_threads:
            stats = [execute_lanes(runner, job)]
        elif len(devices) == 1:
            stats = [execute(runner, job, show_progress=True)]
        else:
            if hasattr(prepared.model_ref, "forward"):
                raise InferKitError("an in-memory torch module runs on one device", hint="pass --device 0")
            runner.close()
            stats = _run_workers(job, devices, lock)
    finally:
        runner.close()
    collect_profile(runner, stats)
    info = _info(runner, prepared, job, stats, files_total, skipped, options, devices, result_dir, summary_file)
    if cluster is not None:
        info.update(engine="ray", ray=cluster.info())
    summary = _summary(skipped_info, stats, options, info, job, prepared)
    if summary_file is not None:
        write_run_summary(summary_file, summary)
    return RunResult(result_dir, summary_file, summary, lines=tuple(_profile_lines(stats, prepared)))


def _run_devices(stack: contextlib.ExitStack, model: Any, inputs: Any, options: _Options) -> RunResult:
    """ais_bench's multi-device run: every device runs every input (or its share) into ``OUT/NAME/device{d}_{i}``."""
    devices = options.devices
    base_dir = None
    if options.output is not None:
        name = options.output_dirname or time.strftime("%Y_%m_%d-%H_%M_%S")
        if not name or Path(name).name != name or name in (".", ".."):
            raise InferKitError(f"--output-dirname {name!r} must be a plain folder name")
        base_dir = check_output_dir(check_output_dir(options.output, what="--output") / name, what="result folder")
    log.info(f"multidevice:{devices} run begin")
    prepared = _prepare(model, options, devices, planning=True)
    runner = prepared.runner
    try:
        if hasattr(prepared.model_ref, "forward"):
            raise InferKitError("an in-memory torch module runs on one device", hint="pass --device 0")
        _log_debug(prepared, options, devices[0])
        lists, shown = _input_lists(inputs, runner.inputs, prepared.description, options, prepared.shapes)
        if inputs is not None and options.divide_input:
            shares = divide_files(lists, shown, len(devices))
        else:
            shares = [(lists, shown)] * len(devices)
        planned = [_batches(share_lists, share_shown, runner.inputs, options, prepared.shapes)
                   for share_lists, share_shown in shares]
        if base_dir is not None:
            for share_batches, _ in planned:
                _check_output_split(prepared, runner.outputs, share_batches, options)
        n_outputs = len(runner.outputs)
        inputs_desc = tuple(runner.inputs)
        batch = runner.batch
    finally:
        runner.close()
    lock = None
    if base_dir is not None:
        lock = stack.enter_context(hold(side_file(base_dir, ".lock"), what=f"result folder {base_dir}"))
        check_device_base(base_dir, devices)
        for index, device in enumerate(devices):  # before any work (they are written once every device finished)
            check_output_file(summary_path(base_dir / device_folder(device, index)), what="run summary")
        base_dir.mkdir(parents=True, exist_ok=True)
    jobs, skipped_infos, skipped_counts, folders = [], [], [], []
    for index, (device, (batches, _)) in enumerate(zip(devices, planned, strict=True)):
        folder = base_dir / device_folder(device, index) if base_dir is not None else None
        identity = run_identity(prepared.description, prepared.model_ref, inputs, batches, options.outfmt, batch,
                             options.shard, prepared.backend, {**_variant(options), "device": [device, index]})
        done = prepare_result_dir(folder, options.resume, options.outfmt, identity, options.replace_outputs)
        shown_dir = _shown_dir(options, folder, device_folder(device, index))
        todo, skipped, skipped_info = split_done(batches, done, n_outputs, options.outfmt, options.pipeline_threads > 0,
                                                 shown_dir)
        job = replace(_job(prepared, options, device, todo, folder, shown_dir, inputs), inputs=inputs_desc)
        jobs.append(job)
        skipped_infos.append(skipped_info)
        skipped_counts.append(skipped)
        folders.append(folder)
    with process_pool(len(jobs), what="run", lock_file=lock,
                      hint="the outputs it finished are kept; rerun with --resume to finish the rest") as pool:
        all_stats = list(pool.map(run_worker, jobs))
    results = []
    for index, (device, job, stats, folder) in enumerate(zip(devices, jobs, all_stats, folders, strict=True)):
        summary_file = check_output_file(summary_path(folder), what="run summary") if folder is not None else None
        total = sum(b.real for b in planned[index][0])
        info = _info(None, prepared, job, [stats], total, skipped_counts[index], options, [device], folder,
                     summary_file)
        summary = _summary(skipped_infos[index], [stats], options, info, job, prepared)
        if summary_file is not None:
            write_run_summary(summary_file, summary)
        results.append(RunResult(folder, summary_file, summary, lines=tuple(_profile_lines([stats], prepared))))
    lines = end_lines(devices, [r.summary["throughput"] for r in results], [s.start_time for s in all_stats],
                      [s.end_time for s in all_stats])
    total_info = dict(results[0].summary["infer_kit"])
    total_info.update(devices=devices, result_dir=str(base_dir) if base_dir else None, summary_path=None,
                      processed=sum(r.summary["infer_kit"]["processed"] for r in results),
                      per_device=[{"device": d, "index": i, "result_dir": r.summary["infer_kit"]["result_dir"],
                                   "summary_path": r.summary["infer_kit"]["summary_path"],
                                   "throughput": r.summary["throughput"]}
                                  for i, (d, r) in enumerate(zip(devices, results, strict=True))])
    aggregate = {"throughput": sum(r.summary["throughput"] for r in results), "infer_kit": total_info}
    return RunResult(base_dir, None, aggregate, per_device=tuple(results), lines=tuple(lines))


def _check_output_split(prepared: _Prepared, outputs: Sequence[TensorDesc], batches: list[Batch],
                        options: _Options) -> None:
    """Before any work: each output (where its shape is known) cuts into the batch's per-file pieces.

    Only for ONNX Runtime, whose session reports the shapes it will return; a dynamic .om may report its
    largest gear's output dims, which the run's gear does not produce (the writer checks those outputs)."""
    if not batches or options.pipeline_threads or prepared.backend != "onnxruntime":
        return
    for index, desc in enumerate(outputs):
        if desc.shape:
            check_split(desc.shape, batches[0].size, output_index=index, axis=options.output_axis)


def _job(prepared: _Prepared, options: _Options, device: int, batches: list[Batch], result_dir: Path | None,
         shown_dir: str | None, inputs: Any) -> WorkerJob:
    from infer_kit.runtime.dump import prepare_dump

    runner = prepared.runner
    dump_job = None
    if options.dump and result_dir is not None and options.output is not None:
        dump_job = prepare_dump(options.output, prepared.model_ref, device, npy=options.dump_npy,
                                om_name=prepared.label)
    extra = dict(prepared.runner_options)
    if options.profiler and options.output is not None and prepared.backend == "onnxruntime":
        from infer_kit.runtime.profiling import profile_prefix

        extra["profile"] = profile_prefix(options.output, prepared.description.path.name.split(".")[0], device)
    return WorkerJob(
        model=str(prepared.model_ref) if not hasattr(prepared.model_ref, "forward") else "<module>",
        backend=prepared.backend, device=device, threads=prepared.worker_threads, batch=runner.batch,
        arch=options.arch, inputs=tuple(runner.inputs), batches=tuple(batches), result_dir=result_dir,
        outfmt=options.outfmt, loop=options.loop, warmup_count=options.warmup_count,
        pure_data_type=None if inputs is not None else options.pure_data_type, write_outputs=result_dir is not None,
        runner_options=tuple(sorted(extra.items())), shown_dir=shown_dir, output_axis=options.output_axis,
        run_mode=options.run_mode, per_file=prepared.shapes.per_file, output_sizes=prepared.shapes.output_sizes,
        pipeline_threads=options.pipeline_threads, debug=options.debug, dump=dump_job,
        dynamic=prepared.description.dynamic,
    )


def _shown_dir(options: _Options, result_dir: Path | None, sub: str | None = None) -> str | None:
    """The result folder as ais_bench names it: ``os.path.join(--output, NAME)`` with the user's spelling."""
    if result_dir is None or options.output is None:
        return None
    shown = os.path.join(options.output, result_dir.name if sub is None else result_dir.parent.name)
    return os.path.join(shown, sub) if sub is not None else shown


def _variant(options: _Options) -> dict[str, Any]:
    """Options that change what a result folder holds (a resume must match them too)."""
    request = options.request
    return {"output_axis": options.output_axis, "pipeline": bool(options.pipeline_threads),
            "dynamic": [request.batch, request.hw, request.dims, request.shape, request.auto],
            "aipp_config": sha256_file(Path(options.aipp_config)) if options.aipp_config and
            Path(options.aipp_config).is_file() else None}


def _log_debug(prepared: _Prepared, options: _Options, device: int) -> None:
    if not options.debug:
        return
    from infer_kit.runtime.debug_info import description_lines

    for line in description_lines(prepared.description, prepared.runner.inputs, prepared.runner.outputs, device):
        log.info(line)


def _profile_lines(stats: list[WorkerStats], prepared: _Prepared) -> list[str]:
    lines: list[str] = []
    for worker in stats:
        profile = worker.extra.get("profile")
        if not profile:
            continue
        from infer_kit.runtime.profiling import format_profile, write_summaries

        per_node, per_type, ops = write_summaries(profile)
        worker.extra["profile_summaries"] = [str(per_node), str(per_type)]
        lines += format_profile(ops)
        lines.append(f"[INFO] profile: {profile} (ONNX Runtime trace), {per_node}, {per_type}")
    return lines


def _run_workers(job: WorkerJob, devices: list[int], lock: Path | None) -> list[WorkerStats]:
    """``--split-devices``: one worker per device, each a contiguous share of the batches, one folder."""
    if job.pure_data_type is not None:
        shares = [(0, len(job.batches))] * len(devices)
    else:
        shares = split_contiguous(len(job.batches), len(devices))
    jobs = [replace(job, device=d, batches=job.batches[a:b],
                    write_outputs=job.write_outputs and (job.pure_data_type is None or n == 0))
            for n, (d, (a, b)) in enumerate(zip(devices, shares, strict=True))]
    log.info(f"running on devices {','.join(map(str, devices))}: one worker process each, the batches shared")
    with process_pool(len(jobs), what="run", lock_file=lock,
                      hint="the outputs it finished are kept; rerun with --resume to finish the rest") as pool:
        return list(pool.map(run_worker, jobs))


def _cluster(engine: str, address: str | None, ray_options: RayOptions | None, inputs: Any,
             options: _Options) -> ClusterRun | None:
    """The Ray cluster's share of the run (``engine="ray"``), or None for this machine alone."""
    if engine != "ray":
        return None
    if inputs is None:
        raise InferKitError("--engine ray spreads input files over the cluster; pure-performance mode has none",
                            hint="give --input, or drop --engine ray")
    if options.devices != [0]:  # a single --device 3 too: it would be ignored
        raise InferKitError("--device lists this machine's devices; with --engine ray every device of the cluster "
                            "is used", hint="drop --device")
    for flag, given in (("--pipeline", options.pipeline_threads), ("--profiler", options.profiler),
                        ("--dump", options.dump)):
        if given:
            raise InferKitError(f"{flag} runs on this machine only: --engine ray does not spread it",
                                hint=f"drop {flag} or --engine ray")
    return ClusterRun((ray_options or RayOptions()).with_address(address), execute)


def _summary(skipped_info: dict[int, Any], stats: list[WorkerStats], options: _Options, info: dict[str, Any],
             job: WorkerJob, prepared: _Prepared) -> dict[str, Any]:
    """The ais_bench summary (batch as ais_bench derives it; the multi-thread pipeline's own form)."""
    filesinfo = dict(skipped_info)
    for worker in stats:
        filesinfo.update(worker.filesinfo)
    if options.pipeline_threads:
        filesinfo = {}
    batch_sizes = [b for s in stats for b in s.batch_sizes]
    if options.batchsize is not None:
        throughput_batch: float = options.batchsize
    elif batch_sizes:
        throughput_batch = sum(batch_sizes) / len(batch_sizes)
    else:
        throughput_batch = prepared.shapes.throughput_batch or job.batch
    info["throughput_batchsize"] = throughput_batch
    compute = [t for s in stats for t in s.compute_ms]
    summary = build_summary(
        filesinfo=filesinfo, args=list(options.args) if options.args is not None else list(sys.argv),
        compute_ms=compute, h2d_ms=[t for s in stats for t in s.h2d_ms], d2h_ms=[t for s in stats for t in s.d2h_ms],
        batchsize=throughput_batch, infer_kit=info,
    )
    if options.pipeline_threads > 1:
        from infer_kit.runtime.pipeline_mode import multi_thread_mean

        intervals = [iv for s in stats for iv in s.intervals]
        mean = multi_thread_mean(intervals)
        summary["NPU_compute_time"] = {"mean": mean, "count": len(intervals)}
        summary["H2D_latency"] = {"mean": summary["H2D_latency"]["mean"], "count": summary["H2D_latency"]["count"]}
        summary["D2H_latency"] = {"mean": summary["D2H_latency"]["mean"], "count": summary["D2H_latency"]["count"]}
        summary["npu_compute_time_list"] = [list(iv) for iv in intervals]
        summary["throughput"] = 1000.0 * throughput_batch / mean if mean else 0
    return summary


def _input_lists(inputs: Any, model_inputs: Sequence[TensorDesc], description: ModelDescription | None,
                 options: _Options, shapes: RunShapes) -> tuple[list[list[Path]], list[list[str]]]:
    """One naturally sorted file list per model input (and the names as the user gave them); folders checked."""
    if inputs is None:
        if options.run_mode == "files":
            raise InferKitError("not support pure infer", hint="--run_mode files reads input files: give --input")
        return [], []
    folders = [p for p in split_input_arg(inputs) if p.is_dir()]
    lists = resolve_input_files(inputs, len(model_inputs))
    if description is not None and description.dynamic_aipp is None and shapes.per_file is None:
        expected = _gear_description(description, shapes)
        for folder in folders:
            manifest = read_folder_manifest(folder)
            if manifest is not None:
                check_folder_matches_model(manifest, expected)
                _warn_count(manifest.count, folder)
    if options.run_mode == "files":
        npy = next((p for files in lists for p in files if p.suffix in (".npy", ".NPY")), None)
        if npy is not None:
            raise InferKitError(f"not support npy file:{npy}", hint="--run_mode files reads raw .bin files; use "
                                                                   "--run_mode array for .npy")
    if shapes.per_file is not None:
        raw = next((p for files in lists for p in files if p.suffix not in (".npy", ".NPY")), None)
        if raw is not None:
            raise InferKitError(f"{raw} is not a .npy file: the auto dynamic-shape modes take each file's shape from "
                                "its .npy header", hint="save the inputs with np.save")
    check_collisions(lists[0], options.pipeline_threads > 0)
    return lists, shown_lists(inputs, lists)


def _gear_description(description: ModelDescription, shapes: RunShapes) -> ModelDescription:
    """The description whose spec a folder must match at this run's gear (a dynamic image size changes the crop)."""
    profile = description.dynamic
    if profile is None or profile.kind != "image_size" or description.spec is None or not shapes.input_shapes:
        return description
    shape = shapes.input_shapes[0]
    h, w = (shape[1], shape[2]) if description.inputs and description.inputs[0].format == "NHWC" else shape[2:4]
    if h != w or h > description.spec.resize:
        return replace(description, spec=None)  # a gear preprocess cannot write: nothing to compare
    return replace(description, spec=description.spec.with_overrides(crop=h, aipp_geometry="crop"))


def _batches(lists: list[list[Path]], shown: list[list[str]], model_inputs: Sequence[TensorDesc],
             options: _Options, shapes: RunShapes) -> tuple[list[Batch], int]:
    """Batches (input 0's real files name the outputs) and the number of files they cover."""
    if not lists:
        pure = tuple((Path(PURE_INFER_NAME),) for _ in model_inputs)
        return [Batch(0, pure, 1)], 0
    if shapes.per_file is not None:
        per_batch = 1  # ais_bench: no combining of files, no size check
    elif options.pipeline_threads:
        from infer_kit.runtime.pipeline_mode import check_pipeline_sizes

        check_pipeline_sizes(lists, model_inputs)
        per_batch = 1
    else:
        per_batch = check_file_sizes(lists, model_inputs)
    start, stop = shard_range(len(lists[0]), options.shard)
    if start == stop:
        raise InferKitError(f"shard {options.shard[0]}/{options.shard[1]} of {len(lists[0])} files is empty",  # type: ignore[index]
                            hint="use fewer shards than files")
    lists = [files[start:stop] for files in lists]
    shown = [names[start:stop] for names in shown]
    return plan_batches(lists, per_batch, shown), stop - start


def _describe(model: Any, backend: str, arch: str | None,
              spec: PreprocessSpec | None = None) -> tuple[ModelDescription, str]:
    """The model's description and a label for messages; torch models are described from ``spec`` or ``arch``."""
    if hasattr(model, "forward"):
        if backend not in ("auto", "torch"):
            raise InferKitError(f"an nn.Module runs with the torch backend, not {backend!r}")
        return _torch_description(Path(type(model).__name__), arch, spec), type(model).__name__
    path = Path(model)
    if backend == "torch":
        if not path.name.endswith(CHECKPOINT_SUFFIXES):
            raise InferKitError(
                f"the torch backend runs a checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}) with --arch, not {path.name}",
                hint="run ONNX models and emulated artifacts with --backend onnxruntime",
            )
        if not path.is_file():
            raise InferKitError(f"checkpoint not found: {path}")
        return _torch_description(path, arch, spec), path.name
    if not path.exists() and not (path.suffix == ".om" and artifact_paths(path).manifest.is_file()):
        raise InferKitError(f"model not found: {path}", hint="give an .onnx, an emulated .emu.onnx or an .om")
    description = describe_model(path)
    if not path.exists():
        log.info(f"{path.name} is not here (no CANN); running its emulated artifact {description.path.name}")
    return description, path.name


def _torch_description(path: Path, arch: str | None, spec: PreprocessSpec | None = None) -> ModelDescription:
    if spec is None and arch is not None:
        from infer_kit.registry import get_model

        spec = get_model(arch).spec
    return ModelDescription("torch", path, spec, "float" if spec is not None else None, None, (), ())


def _warn_count(expected: int, folder: Path) -> None:
    found = sum(1 for name in os.listdir(folder) if name.endswith(INPUT_SUFFIXES))
    if found != expected:
        log.warning(f"{folder}/manifest.json records {expected} file(s) but the folder holds {found}: "
                    "was 'infer-kit preprocess' interrupted? (rerun it with --resume)")


def _log_plan(inputs: Any, runner: Runner, batches: list[Batch], todo: list[Batch], skipped: int) -> None:
    if inputs is None:
        log.info("no --input: pure-performance mode on generated data")
        return
    size = batches[0].size
    log.info(f"{sum(b.real for b in batches)} file(s), {size} per batch of {runner.inputs[0].describe()}, "
             f"{len(batches)} batch(es)")
    if skipped:
        log.info(f"resume: {skipped} file(s) already have their outputs; {len(todo)} batch(es) to run")


def _info(runner: Runner | None, prepared: _Prepared, job: WorkerJob, stats: list[WorkerStats], files_total: int,
          skipped: int, options: _Options, devices: list[int], result_dir: Path | None,
          summary_path: Path | None) -> dict[str, Any]:
    runner = runner or prepared.runner
    description = prepared.description
    wall = max((s.wall_time_s for s in stats), default=0.0)
    images = sum(s.images for s in stats)
    pure = job.pure_data_type is not None
    per_file = 1 if pure else job.batches[0].size if job.batches else None
    seen = next((s.extra["output_shapes"] for s in stats if "output_shapes" in s.extra), None)
    outputs = []
    for i, desc in enumerate(runner.outputs):
        shape = list(seen[i]) if seen is not None and i < len(seen) else list(desc.shape)
        axis = job.output_axis if job.output_axis < len(shape) else 0
        pieces = 1 if pure or per_file is None else per_file
        file_shape = list(shape)
        if file_shape and file_shape[axis] is not None and pieces:
            file_shape[axis] = file_shape[axis] // pieces
        per_sample = [d for k, d in enumerate(file_shape) if k != axis] if file_shape else []
        outputs.append({"name": desc.name, "dtype": desc.dtype, "shape": per_sample, "file_shape": file_shape})
    info: dict[str, Any] = {
        "backend": prepared.backend,
        "provider": runner.provider,
        "threads": job.threads if job.threads is not None else runner.threads,
        "model": prepared.label,
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
        "shard": f"{options.shard[0]}/{options.shard[1]}" if options.shard else None,
        "devices": devices,
        "outputs": outputs,
        "pure_data_type": job.pure_data_type,
        "run_mode": job.run_mode,
        "output_batchsize_axis": job.output_axis,
        "dynamic": prepared.shapes.note,
        "pipeline_threads": job.pipeline_threads or None,
        "start_time": min((s.start_time for s in stats), default=0.0),
        "end_time": max((s.end_time for s in stats), default=0.0),
    }
    profiles = [s.extra["profile"] for s in stats if s.extra.get("profile")]
    if profiles:
        info["profile"] = {"kind": "onnxruntime (CPU, per operator; not the NPU's msprof)", "traces": profiles}
    if job.dump is not None:
        info["dump"] = {"path": job.dump.root, "format": "npy per operator input/output (msaccucmp names); the CANN "
                                                          "binary dump format is not imitated"}
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
        items = devices.split(",") if devices.strip() else []
        try:  # "0,,1" and "0," are refused, as ais_bench's parser refuses them (an empty item is no device)
            devices = [int(d) for d in items]
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
