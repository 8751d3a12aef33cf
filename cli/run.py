from __future__ import annotations

from typing import Any

import click

from infer_kit.cli.ais_bench_flags import AisBenchCommand, ais_bench_options
from infer_kit.cli.options import engine_options


def _list_backends(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from infer_kit.runtime import list_runners

    for status in list_runners():
        state = "available" if status.available else "unavailable"
        click.echo(f"{status.name:<12} {state:<12} {status.summary}")
        if not status.available:
            click.echo(f"{'':<12} {'':<12} {status.reason}")
    ctx.exit(0)


@click.command(name="run", cls=AisBenchCommand)
@ais_bench_options
@click.option("--resume", is_flag=True, help="Finish an interrupted run into the same OUT/NAME, skipping done files.")
@click.option("--shard", metavar="K/N", help="Process only slice K of N (1-based) of the sorted files.")
@click.option("--split-devices", is_flag=True,
              help="With a --device list: share the batches among the devices, one result folder (infer-kit's "
                   "mode) instead of ais_bench's device{id}_{i} folders.")
@click.option("--cpu-threads", type=click.IntRange(min=1), help="CPU threads for the runner (default: all cores).")
@click.option("--arch", help="Registry architecture of a checkpoint run with --backend torch.")
@click.option("--list-backends", is_flag=True, is_eager=True, expose_value=False, callback=_list_backends,
              help="List the backends, whether each is available here, and why not.")
@engine_options
def command(resume: bool, shard: str | None, split_devices: bool, cpu_threads: int | None, arch: str | None,
            **flags: Any) -> None:
    """Batched inference over tensor files, compatible with ais_bench (every flag, every spelling).

    Inputs map to batches as ais_bench maps them (natural sort, files per batch = input
    bytes / file bytes, short last batch padded); outputs are {name}_{i}.{bin|npy|txt} in
    OUT/NAME/, and OUT/NAME_summary.json holds ais_bench's summary plus an "infer_kit" object.
    ais_bench's and msit's spellings are accepted too (--dymBatch, --output_dirname, -db, -om,
    unambiguous prefixes); switches take a value (--debug 1).

    \b
    Examples:
      infer-kit run -m resnet50_bs16.emu.onnx -i prep_dataset -o out --output-dirname result --outfmt TXT
      infer-kit run --model resnet50_bs16.om --input ./prep_dataset/ --output ./ --output_dirname result
      infer-kit run -m resnet50_dynbs.emu.onnx -i prep -o out --dymBatch 8
      infer-kit run -m model.emu.onnx -i prep -o out --device 0,1          # device0_0/, device1_1/
      infer-kit run -m resnet50.onnx --batchsize 8 --loop 20               # pure-performance mode
      infer-kit run -m /shared/model.emu.onnx -i /shared/prep -o /shared/out --engine ray   # a Ray cluster
    """
    from infer_kit.runtime import format_summary, run, run_shape_range, run_trtexec

    display_all = flags.pop("display_all_summary")
    if flags.pop("perf"):
        result = run_trtexec(flags["model"], backend=flags["backend"], device=_first_device(flags["device"]),
                             loop=flags["loop"], batchsize=flags["batchsize"])
        for line in result.lines:
            click.echo(line)
        return
    flags.pop("profiler_rename")  # msprof's output renaming: there is no msprof output here
    _check_npu_id(flags.pop("npu_id"))
    if flags["backend"] == "trtexec":
        flags["backend"] = "auto"  # ais_bench reads --backend only with --perf
    model, inputs, output = flags.pop("model"), flags.pop("inputs"), flags.pop("output")
    options = dict(
        output_dirname=flags.pop("output_dirname"), outfmt=flags.pop("outfmt").upper(),
        batchsize=flags.pop("batchsize"), loop=flags.pop("loop"), warmup_count=flags.pop("warmup_count"),
        devices=flags.pop("device"), backend=flags.pop("backend"), threads=cpu_threads,
        pure_data_type=flags.pop("pure_data_type"), resume=resume, shard=shard, arch=arch,
        pipeline_threads=flags.pop("threads"), split_devices=split_devices, **flags,
    )
    range_text = options.pop("dym_shape_range")
    if range_text is not None and options.get("dym_shape") is None:
        sweep = run_shape_range(model, inputs, output, dym_shape_range=range_text, **options)
        for item in sweep.runs:
            if item.result is not None:
                click.echo(format_summary(item.result.summary, display_all_summary=display_all))
        for line in sweep.lines:
            click.echo(line)
        return
    result = run(model, inputs, output, **options)
    for single in result.per_device or (result,):
        click.echo(format_summary(single.summary, display_all_summary=display_all))
        for line in single.lines:
            click.echo(line)
    if result.per_device:
        for line in result.lines:
            click.echo(line)


def _first_device(text: str) -> int:
    first = str(text).split(",")[0].strip()
    return int(first) if first.isdigit() else 0


def _check_npu_id(text: str) -> None:
    from infer_kit.errors import InferKitError

    for item in str(text).split(","):
        item = item.strip()
        if not item.isdigit() or not 0 <= int(item) <= 255:
            raise InferKitError(f"--npu_id {text}: {item} of npu_id is invalid. valid value range is [0, 255]")
