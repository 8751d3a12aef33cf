"""``infer-kit quantize``: float32 ONNX -> INT8 (QDQ) ONNX, calibrated on preprocessed images."""

from __future__ import annotations

import click


@click.command(name="quantize")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--calibration", required=True, type=click.Path(file_okay=False),
              help="A folder 'infer-kit preprocess' wrote: float tensors, or aipp sources (run through the "
                   "AIPP config generated from the model's spec).")
@click.option("--samples", type=click.IntRange(min=1),
              help="Calibrate on the first N files [default: 128, or all when fewer]; more than the folder "
                   "holds is an error.")
@click.option("--method", type=click.Choice(["minmax", "entropy", "percentile"]), default="minmax",
              show_default=True, help="How activation ranges are chosen from the calibration images.")
@click.option("--per-channel/--per-tensor", default=True, show_default=True,
              help="int8 weights per output channel (AMCT's channel_wise) or one scale per tensor.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="The INT8 model [default: MODEL.int8.onnx beside MODEL].")
def command(model: str, calibration: str, samples: int | None, method: str, per_channel: bool,
            output: str | None) -> None:
    """Quantize MODEL to INT8 with ONNX Runtime's static quantization (QDQ).

    uint8 asymmetric activations, int8 symmetric weights (per channel by default): the grid
    Ascend's AMCT uses (int8 asymmetric activations are the same values shifted by 128), and
    what ONNX Runtime runs fast on a CPU. The spec and provenance are carried into the output's
    metadata, so atc, preprocess --for and run treat it like MODEL. 'infer-kit atc
    --precision-mode int8' does this (and puts AIPP in front) in one step.

    \b
    Examples:
      infer-kit quantize resnet50.onnx --calibration prep_float/ -o resnet50.int8.onnx
      infer-kit quantize model.onnx --calibration prep_aipp/ --samples 64 --method percentile
    """
    from infer_kit.converter import quantize_onnx

    result = quantize_onnx(model, calibration, output=output, samples=samples, method=method,
                           per_channel=per_channel)
    weights = "per channel" if result.per_channel else "per tensor"
    click.echo(f"quantized {model} -> {result.path} ({result.quantized_tensors} tensors quantized, "
               f"{result.seconds:.1f} s)")
    click.echo(f"  scheme       QDQ: uint8 asymmetric activations, int8 symmetric weights {weights}")
    click.echo(f"  calibration  {result.method} on {result.samples_text}")
