"""``infer-kit aipp generate|check|emulate``: AIPP configs from a spec, ATC's checks and lints, the emulation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from infer_kit.cli.options import pop_spec_overrides, spec_options
from infer_kit.errors import GateFailed, InferKitError
from infer_kit.resolve import resolve_spec

STANDARDS = ("jpeg", "bt601-narrow", "bt601-wide", "bt709-narrow", "bt709-wide")


def _spec_source(func: Any) -> Any:
    """``--model / --arch / --preset`` plus the spec overrides."""
    func = spec_options(func)
    func = click.option("--preset", help="A ModelZoo preprocessing preset (resnet, efficientnetB3, ...).")(func)
    func = click.option("--arch", help="A registry model name (seed or timm) whose spec to use.")(func)
    return click.option("--model", "model", type=click.Path(dir_okay=False),
                        help="An ONNX model: its stamped spec and its input size.")(func)


@click.group(name="aipp")
def command() -> None:
    """Generate, check and emulate AIPP configs (ATC's --insert_op_conf files).

    \b
    Examples:
      infer-kit aipp generate --preset resnet -o aipp_resnet50.aippconfig
      infer-kit aipp check aipp_resnet50.aippconfig --model resnet50.onnx
      infer-kit aipp emulate aipp_resnet50.aippconfig cat.jpg -o cat_aipp.npy
    """


@command.command(name="generate")
@_spec_source
@click.option("--input-format", type=click.Choice(["RGB888_U8", "YUV420SP_U8"], case_sensitive=False),
              default="RGB888_U8", show_default=True, help="Source pixel format the device receives.")
@click.option("--csc", type=click.Choice(STANDARDS), default="jpeg", show_default=True,
              help="Colour standard of YUV420SP data (CSC preset).")
@click.option("--nv21", is_flag=True, help="YUV420SP data is NV21 (V before U): sets rbuv_swap_switch.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the config here (default: stdout).")
def generate(model: str | None, arch: str | None, preset: str | None, input_format: str, csc: str, nv21: bool,
             output: str | None, **kwargs: Any) -> None:
    """Write the static AIPP config that does a model's preprocessing on the device.

    The source is the aipp layout 'infer-kit preprocess' writes (uint8 RGB, resize x resize);
    AIPP crops the centre and normalises with min_chn = 255*mean, var_reci = 1/(255*std).

    \b
    Examples:
      infer-kit aipp generate --preset resnet
      infer-kit aipp generate --model resnet50.onnx -o aipp_resnet50.aippconfig
      infer-kit aipp generate --arch efficientnet_b3 --input-format YUV420SP_U8 --csc bt601-narrow
    """
    from infer_kit.aipp import describe_generated, generate_op, render_config
    from infer_kit.fsutil import check_output_file, write_text_atomic

    if output is not None:
        check_output_file(output, what="AIPP config")

    resolved = resolve_spec(model=model, arch=arch, preset=preset, overrides=pop_spec_overrides(kwargs))
    spec = resolved.spec if resolved is not None else None
    if spec is None:
        raise InferKitError("no preprocessing spec to generate from",
                            hint="give --model M.onnx (exported by infer-kit), --arch NAME, --preset NAME, "
                                 "or --resize and --crop")
    op = generate_op(spec, input_format=input_format.upper(), csc=csc, nv21=nv21)
    text = render_config(op, header=describe_generated(spec, op))
    if output is None:
        click.echo(text, nl=False)
        return
    write_text_atomic(output, text)
    click.echo(f"wrote {output} ({op.input_format}, {spec.describe()})")


@command.command(name="check")
@click.argument("config", type=click.Path(dir_okay=False))
@_spec_source
@click.option("--soc", help="Chip to check against (e.g. Ascend310P3); some limits depend on it.")
@click.option("--strict", is_flag=True, help="Exit with status 3 when there are warnings.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def check(config: str, model: str | None, arch: str | None, preset: str | None, soc: str | None, strict: bool,
          as_json: bool, **kwargs: Any) -> None:
    """Check CONFIG the way ATC does (errors) and for silent accuracy mistakes (warnings).

    With --model (or a spec) the geometry is checked against the model's input H and W, and
    the config is compared with the spec's float preprocessing on a test image.

    \b
    Examples:
      infer-kit aipp check aipp.cfg
      infer-kit aipp check aipp.cfg --model resnet50.onnx
      infer-kit aipp check aipp.cfg --preset efficientnetB3 --strict
    """
    from infer_kit.aipp import check_aipp

    resolved = resolve_spec(model=model, arch=arch, preset=preset, overrides=pop_spec_overrides(kwargs))
    spec = resolved.spec if resolved is not None else None
    report = check_aipp(config, model=model, spec=spec, soc=soc)
    if as_json:
        click.echo(json.dumps({
            "config": config, "errors": len(report.errors), "warnings": len(report.warnings),
            "spec_deviation": report.deviation,
            "issues": [{"severity": i.severity, "line": i.line, "field": i.field, "code": i.code, "message": i.text()}
                       for i in report.issues],
        }, indent=2))
    else:
        for line in report.lines():
            click.echo(line)
    if report.errors:
        raise InferKitError(f"{config}: ATC would reject this config ({len(report.errors)} error(s))")
    if strict and report.warnings:
        raise GateFailed(f"{config}: {len(report.warnings)} warning(s) with --strict")


@command.command(name="emulate")
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="Where to write the float16 NCHW tensor: .npy, or .bin (raw float16).")
@click.option("--model", type=click.Path(dir_okay=False), help="ONNX model whose input H/W fill sizes left at 0.")
@click.option("--csc", type=click.Choice(STANDARDS), help="Colour standard used to encode a photo as YUV420SP.")
@click.option("--assume", multiple=True, metavar="KEY=VALUE",
              help="Change an UNVERIFIED emulation choice, e.g. csc_shift=trunc (see 'aipp/assumptions.py').")
def emulate(config: str, source: str, output: str, model: str | None, csc: str | None, assume: tuple[str, ...]) -> None:
    """Apply CONFIG to SOURCE (a photo, or the uint8 bytes as .bin/.npy) and write the AIPP output.

    The result is what the model's first layer receives on the device: float16, NCHW.

    \b
    Examples:
      infer-kit aipp emulate aipp_resnet50.aippconfig cat.jpg -o cat.npy
      infer-kit aipp emulate aipp.cfg prep_dataset/ILSVRC2012_val_00000001.bin -o x.bin --assume csc_shift=trunc
    """
    import numpy as np

    from infer_kit.aipp import emulate_aipp, load_source, parse_assumptions, read_config
    from infer_kit.fsutil import atomic_write, check_output_file

    check_output_file(output, what="output tensor")

    assumptions = parse_assumptions(assume)
    parsed = read_config(config)
    op = parsed.op_for_input(0)
    if op is None:
        raise InferKitError(f"{config} has no aipp_op block for input 0")
    model_hw = None
    if model is not None:
        from infer_kit.aipp import read_model_shape

        _, h, w = read_model_shape(model).inputs[0]
        model_hw = (h, w) if h is not None and w is not None else None
    data = load_source(source, op, model_hw=model_hw, standard=csc)
    out = emulate_aipp(op, data, model_hw=model_hw, assumptions=assumptions)
    suffix = Path(output).suffix.lower()
    if suffix not in (".npy", ".bin"):
        raise InferKitError(f"output {output} must end in .npy or .bin")
    with atomic_write(output, "wb") as handle:
        if suffix == ".npy":
            np.save(handle, out)
        else:
            handle.write(out.tobytes())
    click.echo(f"wrote {output}: float16 {'x'.join(map(str, out.shape))} (NCHW)")
    for c in range(out.shape[1]):
        plane = out[0, c].astype(np.float32)
        click.echo(f"  channel {c}: min {plane.min():.4f}  max {plane.max():.4f}  mean {plane.mean():.4f}")
