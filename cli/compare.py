from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from infer_kit.postprocess import ComparisonResult


@click.command(name="compare")
@click.argument("run_a", metavar="RUN_A[,SHARD...]|REF.onnx")
@click.argument("run_b", metavar="RUN_B[,SHARD...]|TARGET")
@click.option("--layers", is_flag=True,
              help="Compare two models layer by layer instead (REF.onnx TARGET.emu.onnx|.int8.onnx) on --input.")
@click.option("--input", "inputs", metavar="PREP_DIR", help="--layers: the preprocessed tensors to run (for TARGET).")
@click.option("--samples", type=click.IntRange(min=1), help="--layers: the first N tensors [default: 8].")
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
def command(run_a: str, run_b: str, layers: bool, inputs: str | None, samples: int | None, labels: str | None,
            atol: float | None, output: str | None, max_disagreement: float | None, show: int, workers: int | None,
            dtype: str | None, width: int | None) -> None:
    """Per-image agreement between two runs (torch vs ONNX, ONNX vs OM, fp32 vs fp16/int8), or, with
    --layers, the per-layer errors of two models and the first layer where the error jumps.

    Top-1 agreement, top-5 overlap, max/mean absolute score difference, cosine similarity,
    and the images whose top-1 changed. The runs may use different formats (TXT vs BIN).

    --layers runs REF and TARGET with every intermediate tensor exposed, matches tensors by name
    (through the emulation's rounding casts, INT8 Q/DQ pairs and the AIPP front, whose output the
    reference is fed), and prints cosine, max abs and max relative error, relative L2 error per
    layer, and the first diverging layer (relative L2 error 10x the largest before it).

    \b
    Examples:
      infer-kit compare out/onnx out/om --labels val_label.txt -o compare.json
      infer-kit compare out/fp32 out/fp16 --atol 0.05 --max-disagreement 0.5
      infer-kit compare --layers resnet50.onnx resnet50_bs16.emu.onnx --input prep/ --samples 4 -o layers.json
      infer-kit compare --layers resnet50.onnx resnet50.int8.onnx --input prep_float/
    """
    if layers:
        others = {"--labels": labels, "--atol": atol, "--max-disagreement": max_disagreement, "--workers": workers,
                  "--dtype": dtype, "--width": width}
        given = [flag for flag, value in others.items() if value is not None]
        if given:
            raise click.UsageError(f"{', '.join(given)} compare runs, not --layers")
        if inputs is None:
            raise click.UsageError("--layers needs --input PREP_DIR (the tensors to run)")
        _layers(run_a, run_b, inputs, samples, output)
        return
    if inputs is not None or samples is not None:
        raise click.UsageError("--input and --samples go with --layers")
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


def _layers(reference: str, target: str, inputs: str, samples: int | None, output: str | None) -> None:
    from infer_kit.converter import compare_layers

    result = compare_layers(reference, target, inputs, samples=samples or 8, output=output)
    click.echo(f"{result.reference.name} vs {result.target.name} on {result.samples_text}: "
               f"{len(result.layers)} tensors matched ({result.unmatched} of the reference's without a counterpart)")
    click.echo(f"{'tensor':<48} {'op':<18} {'cosine':>10} {'max abs':>10} {'max rel':>10} {'rel L2':>10}")
    for layer in result.layers:
        mark = "  <- first divergence" if result.first is not None and layer.tensor == result.first.tensor else ""
        name = layer.tensor if len(layer.tensor) <= 48 else "..." + layer.tensor[-45:]
        click.echo(f"{name:<48} {layer.op_type:<18} {layer.cosine:10.6f} {layer.max_abs:10.3g} "
                   f"{layer.max_rel:10.3g} {layer.rel_l2:10.3g}{mark}")
    if result.first is not None:
        click.echo(f"first diverging layer: {result.first.node} ({result.first.op_type}) -> {result.first.tensor}, "
                   f"rel L2 {result.first.rel_l2:.3g}")
    else:
        worst = result.worst
        click.echo("no layer diverges" + (f" (worst rel L2 {worst.rel_l2:.3g} at {worst.tensor})" if worst else ""))
    if result.output_path:
        click.echo(f"wrote {result.output_path}")
