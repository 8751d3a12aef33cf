from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from infer_kit.postprocess import ComparisonResult


@click.command(name="compare")
@click.argument("run_a", metavar="RUN_A[,SHARD...]")
@click.argument("run_b", metavar="RUN_B[,SHARD...]")
@click.option("--labels", metavar="PATH", help="val_label.txt or a preprocessed folder: say which run was right.")
@click.option("--atol", type=float, metavar="X", help="Also count images whose scores differ by more than X.")
@click.option("-o", "--output", metavar="PATH", help="Write the full per-image report as JSON.")
@click.option("--max-disagreement", type=float, metavar="PCT",
              help="Exit 3 if more than PCT % of images disagree (top-1 changed, or beyond --atol).")
@click.option("--show", type=click.IntRange(min=0), default=10, show_default=True,
              help="Changed images listed on screen (all go to --output).")
@click.option("--workers", type=click.IntRange(min=1), help="Processes [default: all cores for large runs].")
@click.option("--dtype", help="dtype of .bin outputs when no run summary says (e.g. float32).")
@click.option("--width", type=click.IntRange(min=1), help="Values per .bin output when no run summary says.")
def command(run_a: str, run_b: str, labels: str | None, atol: float | None, output: str | None,
            max_disagreement: float | None, show: int, workers: int | None, dtype: str | None,
            width: int | None) -> None:
    """Per-image agreement between two runs (torch vs ONNX, ONNX vs OM, fp32 vs fp16/int8).

    Top-1 agreement, top-5 overlap, max/mean absolute score difference, cosine similarity,
    and the images whose top-1 changed. The runs may use different formats (TXT vs BIN).

    \b
    Examples:
      infer-kit compare out/onnx out/om --labels val_label.txt -o compare.json
      infer-kit compare out/fp32 out/fp16 --atol 0.05 --max-disagreement 0.5
    """
    from infer_kit.gates import Gates, raise_for_failures
    from infer_kit.postprocess import compare

    gates = Gates(max_disagreement=max_disagreement)
    result = compare(run_a, run_b, labels=labels, atol=atol, output=output, workers=workers, dtype=dtype,
                     width=width)
    _print_summary(result, show)
    what = "top-1 changed" + (f" or |diff| > {result.atol:g}" if result.atol is not None else "")
    failures = gates.agreement_failures(disagreements=result.disagreements, images=result.images, what=what)
    raise_for_failures(failures, note=f"; {result.output_path} written" if result.output_path else "")


def _print_summary(result: ComparisonResult, show: int) -> None:
    rows = [
        ("images", str(result.images)),
        ("top-1 agreement", f"{100 * result.top1_agreement:.2f}% ({len(result.changed)} changed)"),
        (f"top-{result.overlap_k} overlap", f"{100 * result.topk_overlap_mean:.2f}% (mean)"),
        ("max |diff|", f"{result.max_abs_diff:.6g}"),
        ("mean |diff|", f"{result.mean_abs_diff:.6g}"),
        ("cosine", f"min {result.cosine_min:.6f}, mean {result.cosine_mean:.6f}"),
    ]
    if result.atol is not None:
        rows.append((f"|diff| > {result.atol:g}", f"{len(result.beyond_atol)} images"))
    if result.accuracy_a is not None and result.accuracy_b is not None:
        rows.append(("top-1 accuracy", f"A {100 * result.accuracy_a:.2f}%, B {100 * result.accuracy_b:.2f}% "
                                       f"({result.labelled} labelled)"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        click.echo(f"{name:<{width}}  {value}")
    if result.changed and show:
        click.echo("top-1 changed (A -> B):")
        for item in result.changed[:show]:
            line = f"  {item.image}: {_cls(result, item.top1_a)} -> {_cls(result, item.top1_b)}"
            if item.label is not None:
                line += f", label {_cls(result, item.label)}"
            click.echo(line + f", max |diff| {item.max_abs_diff:.4g}")
        if len(result.changed) > show:
            click.echo(f"  ... and {len(result.changed) - show} more" + (" (see the report)" if result.output_path
                                                                         else " (write them all with -o)"))
    if result.output_path:
        click.echo(f"wrote {result.output_path}")


def _cls(result: ComparisonResult, index: int) -> str:
    name = result.name(index)
    return f"{index} ({name})" if name else str(index)
