from __future__ import annotations

from typing import TYPE_CHECKING

import click

from infer_kit.cli.options import engine_options
from infer_kit.postprocess import DEFAULT_TIE_BREAK, TIE_BREAKS

if TYPE_CHECKING:
    from infer_kit.postprocess import EvaluationResult


@click.command(name="evaluate")
@click.argument("result_dirs", nargs=-1, required=True, metavar="RESULT_DIR[,DIR2...]")
@click.option("--labels", "labels", required=True, metavar="PATH",
              help="val_label.txt ('<image file> <class>' lines), or a folder 'preprocess' wrote.")
@click.option("-o", "--output", metavar="PATH",
              help="Where to write result.json [default: result.json beside the first result folder].")
@click.option("--topk", type=click.IntRange(min=1), default=5, show_default=True, help="TopN rows in result.json.")
@click.option("--label-offset", type=click.Choice(["auto", "0", "1"]), default="auto", show_default=True,
              help="Add 1 to labels (1001-class models); auto does it for width 1001.")
@click.option("--min-top1", type=float, metavar="PCT", help="Exit 3 if top-1 accuracy (%) is below PCT.")
@click.option("--min-top5", type=float, metavar="PCT", help="Exit 3 if top-5 accuracy (%) is below PCT.")
@click.option("--details", metavar="PATH", help="Also write per-class accuracy, confusion pairs and misses here.")
@click.option("--allow-partial", is_flag=True, help="Score the images present when some labelled ones have no output.")
@click.option("--workers", type=click.IntRange(min=1), help="Processes [default: all cores for large runs].")
@click.option("--dtype", help="dtype of .bin outputs when no run summary says (e.g. float32).")
@click.option("--width", type=click.IntRange(min=1), help="Values per .bin output when no run summary says.")
@click.option("--tie-break", type=click.Choice(TIE_BREAKS), default=DEFAULT_TIE_BREAK, show_default=True,
              help="Order of equal scores: numpy = numpy's argsort on the float32 values, as the ModelZoo scorer "
                   "(same numpy and CPU give the same result.json); index = lower class index first (stable, the "
                   "same everywhere); numpy-scalar = numpy's scalar introsort (numpy <= 1.24, the ModelZoo's pinned "
                   "1.21.5) on any machine, slow.")
@engine_options
def command(result_dirs: tuple[str, ...], labels: str, output: str | None, topk: int, label_offset: str,
            min_top1: float | None, min_top5: float | None, details: str | None, allow_partial: bool,
            workers: int | None, dtype: str | None, width: int | None, tie_break: str, engine: str,
            address: str | None) -> None:
    """Score run outputs into a ModelZoo result.json (top-1..top-5), with accuracy gates.

    RESULT_DIR holds {image}_0.txt|npy|bin files as 'infer-kit run' or ais_bench writes them;
    several folders (shards) merge. result.json is byte-for-byte what the ModelZoo's
    vision_metric_ImageNet.py writes; --details holds everything else.

    \b
    Examples:
      infer-kit evaluate result --labels val_label.txt
      infer-kit evaluate out/shard0,out/shard1 --labels prep_dataset --min-top1 75.5 --details details.json
      infer-kit evaluate result --labels val_label.txt --dtype float32 --width 1000   # bare ais_bench .bin
      infer-kit evaluate /shared/out/r --labels /shared/val_label.txt --engine ray
    """
    from infer_kit.gates import Gates, raise_for_failures
    from infer_kit.postprocess import evaluate

    gates = Gates(min_top1=min_top1, min_top5=min_top5)
    gates.check_topk(topk)
    result = evaluate(
        list(result_dirs), labels, output=output, topk=topk, label_offset=label_offset, details=details,
        allow_partial=allow_partial, workers=workers, dtype=dtype, width=width, tie_break=tie_break, engine=engine,
        address=address,
    )
    _print_table(result)
    failures = gates.accuracy_failures(top1=result.top1, top5=result.top5, classes=result.classes)
    raise_for_failures(failures, note=f" ({result.images} images; {result.result_path} written)")


def _print_table(result: EvaluationResult) -> None:
    rows = [("images", str(result.images)), ("classes", str(result.classes))]
    if result.missing:
        rows.append(("coverage", f"{100 * result.coverage:.2f}% ({len(result.missing)} labelled images missing)"))
    rows += [(f"top-{i + 1}", text) for i, text in enumerate(result.accuracy_strings())]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        click.echo(f"{name:<{width}}  {value}")
    click.echo(f"wrote {result.result_path}" + (f" and {result.details_path}" if result.details_path else ""))
