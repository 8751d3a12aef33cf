from __future__ import annotations

from typing import Any

import click

from infer_kit.result_files import OUTFMTS

BACKEND_CHOICES = ("auto", "onnxruntime", "ascend", "torch")

# ais_bench's underscore spellings, accepted (hidden) so existing scripts run unchanged.
_ALIASES = {
    "output_dirname_": ("--output_dirname", str),
    "warmup_count_": ("--warmup_count", click.IntRange(min=0)),
    "pure_data_type_": ("--pure_data_type", click.Choice(("zero", "random"))),
}


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


def _aliases(func: Any) -> Any:
    for dest, (flag, kind) in _ALIASES.items():
        func = click.option(flag, dest, type=kind, hidden=True)(func)
    return func


@click.command(name="run")
@click.option("-m", "--model", required=True,
              help="Model: .onnx, emulated artifact (<base>.emu.onnx or .manifest.json), .om, or a checkpoint "
                   "with --backend torch --arch.")
@click.option("-i", "--input", "inputs",
              help="Folder of .bin/.npy files (one folder per model input, comma-separated) or a comma list of "
                   "files. Without it: pure-performance mode on generated data.")
@click.option("-o", "--output", type=click.Path(file_okay=False),
              help="Where results go: OUT/NAME/ plus OUT/NAME_summary.json beside it. Without it nothing is saved.")
@click.option("--output-dirname", help="NAME of the result folder (default: a %Y_%m_%d-%H_%M_%S timestamp).")
@click.option("--outfmt", type=click.Choice(OUTFMTS, case_sensitive=False), default="BIN", show_default=True,
              help="Output file format, written exactly as ais_bench writes it.")
@click.option("--batchsize", type=click.IntRange(min=1),
              help="Batch for models with a dynamic batch axis (default 1); static models keep theirs.")
@click.option("-l", "--loop", type=click.IntRange(min=1), default=1, show_default=True,
              help="Inferences per batch (each timed).")
@click.option("--warmup-count", type=click.IntRange(min=0), default=1, show_default=True,
              help="Untimed inferences on the first batch before timing starts.")
@click.option("-d", "--device", default="0", show_default=True,
              help="Device id, or a comma list for one worker process per device (e.g. 0,1).")
@click.option("--pure-data-type", type=click.Choice(("zero", "random")), default="zero", show_default=True,
              help="Generated data for pure-performance mode (no --input).")
@click.option("--resume", is_flag=True, help="Finish an interrupted run into the same OUT/NAME, skipping done files.")
@click.option("--shard", metavar="K/N", help="Process only slice K of N (1-based) of the sorted files.")
@click.option("--backend", type=click.Choice(BACKEND_CHOICES), default="auto", show_default=True,
              help="auto: .om -> ascend, ONNX or emulated artifact -> onnxruntime.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for the runner (default: all cores).")
@click.option("--arch", help="Registry architecture of a checkpoint run with --backend torch.")
@click.option("--list-backends", is_flag=True, is_eager=True, expose_value=False, callback=_list_backends,
              help="List the backends, whether each is available here, and why not.")
@_aliases
def command(model: str, inputs: str | None, output: str | None, output_dirname: str | None, outfmt: str,
            batchsize: int | None, loop: int, warmup_count: int, device: str, pure_data_type: str, resume: bool,
            shard: str | None, backend: str, threads: int | None, arch: str | None, **aliases: Any) -> None:
    """Batched inference over tensor files, compatible with ais_bench.

    Inputs map to batches as ais_bench maps them (natural sort, files per batch = input
    bytes / file bytes, short last batch padded); outputs are {name}_{i}.{bin|npy|txt} in
    OUT/NAME/, and OUT/NAME_summary.json holds ais_bench's summary plus an "infer_kit" object.

    \b
    Examples:
      infer-kit run -m resnet50_bs16.emu.onnx -i prep_dataset -o out --output-dirname result --outfmt TXT
      infer-kit run --model resnet50_bs16.om --input ./prep_dataset/ --output ./ --output_dirname result
      infer-kit run -m resnet50.onnx --batchsize 8 --loop 20          # pure-performance mode
      infer-kit run -m model.emu.onnx -i prep -o out --output-dirname part2 --shard 2/4 --resume
    """
    from infer_kit.runtime import format_summary, run

    output_dirname = output_dirname or aliases.get("output_dirname_")
    if aliases.get("warmup_count_") is not None:
        warmup_count = aliases["warmup_count_"]
    if aliases.get("pure_data_type_") is not None:
        pure_data_type = aliases["pure_data_type_"]
    result = run(
        model, inputs, output, output_dirname=output_dirname, outfmt=outfmt.upper(), batchsize=batchsize, loop=loop,
        warmup_count=warmup_count, devices=device, backend=backend, threads=threads, pure_data_type=pure_data_type,
        resume=resume, shard=shard, arch=arch,
    )
    click.echo(format_summary(result.summary))
