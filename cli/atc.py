"""``infer-kit atc``: ONNX -> batch-sized OM models (real ATC when CANN is here, else the CPU emulation)."""

from __future__ import annotations

import json
from typing import Any

import click

from infer_kit.cli.options import int_list, pop_spec_overrides, spec_options
from infer_kit.converter import DEFAULT_PRECISION_MODE
from infer_kit.errors import InferKitError


@click.command(name="atc")
@click.option("-m", "--model", required=True, type=click.Path(dir_okay=False), help="The ONNX model (from export).")
@click.option("--soc", required=True, help="Chip: 'Ascend' + the npu-smi name, e.g. Ascend910A, Ascend310P3.")
@click.option("-b", "--batch", "batches", multiple=True, callback=int_list(minimum=1),
              help="Batch size(s): --batch 64, --batch 1,8,64 or repeated; one model per size.")
@click.option("--aipp", default="auto", show_default=True,
              help="auto (generated from the model's spec), none, or an AIPP config file.")
@click.option("--precision-mode", default=DEFAULT_PRECISION_MODE, show_default=True, metavar="MODE[,MODE...]",
              help="ATC's --precision_mode (or a --precision_mode_v2 name), a comma list, 'all' (every distinct "
                   "mode), or int8 (quantized; needs --calibration). Several modes: one artifact each, "
                   "<base>_<mode>.")
@click.option("--keep-dtype", metavar="NAMES|FILE",
              help="Operators kept in their original dtype: comma-separated node names (OpType::Type for a "
                   "type), or ATC's keep_dtype file.")
@click.option("--modify-mixlist", type=click.Path(dir_okay=False), help="ATC's mixlist JSON (mixed modes).")
@click.option("--calibration", type=click.Path(file_okay=False),
              help="A preprocessed folder (float or aipp layout): images for the range check and INT8 "
                   "calibration. Without it the range check uses random images.")
@click.option("--samples", type=click.IntRange(min=1),
              help="Images taken from --calibration [default: 8 for the range check, 128 for INT8].")
@click.option("-o", "--output", help="Output base like ATC's --output (no suffix); '{batch}' is replaced. "
                                     "Default: <model dir>/<model stem>_bs{batch}.")
@click.option("--emulate", is_flag=True, help="Write emulated artifacts even when atc is on PATH.")
@click.option("--force", is_flag=True, help="Rebuild artifacts that are up to date.")
@click.option("--preset", help="Spec from a ModelZoo preset (for a model without a stamped spec).")
@spec_options
@click.option("--assume", multiple=True, metavar="KEY=VALUE", help="Change an UNVERIFIED AIPP emulation choice.")
@click.option("--dynamic-batch", "--dynamic_batch_size", "dynamic_batch_size", metavar="N,N,...",
              help='ATC\'s --dynamic_batch_size: one model for these batch gears, e.g. "1,2,4,8".')
@click.option("--dynamic-image-size", "--dynamic_image_size", "dynamic_image_size", metavar="H,W;H,W",
              help='ATC\'s --dynamic_image_size (height first): e.g. "224,224;256,256", with one --batch.')
@click.option("--dynamic-dims", "--dynamic_dims", "dynamic_dims", metavar="D,..;D,..",
              help="ATC's --dynamic_dims: one value per -1 of --input-shape in each gear (input format ND).")
@click.option("--input-shape", "--input_shape", "input_shape", metavar="NAME:N,C,H,W",
              help="ATC's --input_shape: -1 on the axes the gears set, LOW~HIGH for a shape range.")
@click.option("--input-shape-range", "--input_shape_range", "input_shape_range", metavar="NAME:[DIMS]",
              help="ATC's deprecated --input_shape_range, e.g. \"x:[1~8,3,224,224]\".")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def command(model: str, soc: str, batches: list[int], aipp: str, precision_mode: str, keep_dtype: str | None,
            modify_mixlist: str | None, calibration: str | None, samples: int | None, output: str | None,
            emulate: bool, force: bool, preset: str | None, assume: tuple[str, ...], as_json: bool,
            dynamic_batch_size: str | None, dynamic_image_size: str | None, dynamic_dims: str | None,
            input_shape: str | None, input_shape_range: str | None, **kwargs: Any) -> None:
    """Compile MODEL to batch-sized OM models, as the ModelZoo recipe's atc command does.

    Prints and saves (<base>.atc.sh) the exact ATC command. With CANN's atc on PATH it runs it;
    otherwise it writes <base>.emu.onnx: the static-batch model with AIPP's arithmetic and the
    precision mode emulated as the AI Core computes it (float16/bfloat16 operands, float32
    arithmetic inside an operator, a rounded result), which ONNX Runtime runs (never named .om).
    For the float16/bfloat16 modes the float32 model's tensors are checked against the format's
    range on --calibration images, and the nodes that overflow or flush to zero are named. Each
    artifact gets a <base>.manifest.json (tensors, spec, AIPP config, ATC argv, emulation, range check).

    \b
    Examples:
      infer-kit atc --model resnet50.onnx --soc Ascend910A --batch 1,64
      infer-kit atc -m resnet50.onnx --soc Ascend310P3 -b 64 -o out/resnet50_bs64 --aipp aipp_resnet50.aippconfig
      infer-kit atc -m model.onnx --soc Ascend910B3 -b 16 --aipp none --precision-mode must_keep_origin_dtype
      infer-kit atc -m resnet50.onnx --soc Ascend910A --dynamic-batch 1,2,4,8
      infer-kit atc -m resnet50.onnx --soc Ascend910A -b 8 --dynamic-image-size "224,224;256,256"
      infer-kit atc -m resnet50.onnx --soc Ascend910B3 -b 16 --precision-mode all,int8 --calibration prep/
      infer-kit atc -m resnet50.onnx --soc Ascend910A -b 16 --keep-dtype /fc/Gemm,OpType::Softmax
    """
    from infer_kit.aipp import parse_assumptions
    from infer_kit.converter import DynamicRequest, compile_om

    overrides = pop_spec_overrides(kwargs)
    spec = _spec(model, preset, overrides)
    dynamic = DynamicRequest(dynamic_batch_size, dynamic_image_size, dynamic_dims, input_shape, input_shape_range)
    if not batches and not dynamic.given:
        raise InferKitError("atc needs the batch size", hint="give --batch 64 (or --dynamic-batch 1,2,4,8, or "
                                                            "--input-shape NAME:N,C,H,W)")
    artifacts = compile_om(
        model, soc=soc, batch_sizes=batches, aipp=aipp, precision_mode=precision_mode, output=output,
        emulate=True if emulate else None, spec=spec, assumptions=parse_assumptions(assume), force=force,
        dynamic=dynamic, keep_dtype=keep_dtype, modify_mixlist=modify_mixlist, calibration=calibration,
        samples=samples,
    )
    if as_json:
        click.echo(json.dumps([{
            "batch": a.batch, "kind": a.kind, "model_file": str(a.model_file), "manifest": str(a.paths.manifest),
            "atc_script": str(a.paths.atc_script), "argv": a.argv, "layout": a.layout, "reused": a.reused,
            "inputs": [t.to_dict() for t in a.inputs], "outputs": [t.to_dict() for t in a.outputs],
            "precision_mode": a.precision_mode, "emulation": a.emulation, "range_check": a.range_check,
        } for a in artifacts], indent=2))
        return
    for artifact in artifacts:
        what = "emulated OM" if artifact.kind == "emulated-om" else "OM"
        state = " (up to date)" if artifact.reused else ""
        batch = "dynamic" if artifact.batch is None else artifact.batch
        click.echo(f"{what} {artifact.model_file}{state}: batch {batch}, {artifact.precision_mode}, "
                   f"{'AIPP' if artifact.layout == 'aipp' else 'no AIPP'}")
        for tensor in artifact.inputs:
            click.echo(f"  input   {tensor.describe()} {tensor.format}")
        for tensor in artifact.outputs:
            click.echo(f"  output  {tensor.describe()}")
        dynamic = _gears(artifact)
        if dynamic:
            click.echo(f"  shapes  {dynamic}")
        if artifact.emulation:
            click.echo(f"  compute {artifact.emulation['rule']}")
        if artifact.range_check:
            click.echo(f"  range   {artifact.range_check['summary']}")
        click.echo(f"  atc     {artifact.command}")
        click.echo(f"  script  {artifact.paths.atc_script}")
    # compile_om warns when it checks; an up-to-date artifact's finding is repeated here
    repeated = {a.precision_mode: a.range_warning for a in artifacts if a.reused and a.range_warning}
    for warning in repeated.values():
        click.echo(f"warning: range check {warning}", err=True)
    if any(a.kind == "emulated-om" for a in artifacts):
        click.echo("No CANN here: these are emulated artifacts (ONNX Runtime runs them). On a machine with CANN, "
                   "run the .atc.sh script(s) to build the real .om.")


def _gears(artifact: Any) -> str | None:
    """The compiled profile, as run takes it: ``batch gears [1][2][4][8] (--dymBatch N)``."""
    from infer_kit.artifacts import read_artifact_manifest

    block = read_artifact_manifest(artifact.paths.manifest).get("dynamic")
    if not block:
        return None
    gears = "".join("[" + ",".join(map(str, g)) + "]" for g in block.get("gears", []))
    flag = {"batch": "--dymBatch N", "image_size": "--dymHW H,W", "dims": "--dymDims NAME:dims",
            "shape_range": "--dymShape NAME:dims"}[block["kind"]]
    ranges = "; ".join(
        f"{name}:[" + ",".join(str(lo) if lo == hi else f"{lo}~{'' if hi is None else hi}" for lo, hi in dims) + "]"
        for name, dims in block.get("ranges", {}).items())
    return f"{block['kind']} {gears or ranges} (run with {flag})"


def _spec(model: str, preset: str | None, overrides: dict[str, Any]) -> Any:
    """The spec to compile with: the preset, or the model's stamped spec, with the overrides; None = stamped."""
    if preset is None and not overrides:
        return None
    from infer_kit.resolve import resolve_spec

    resolved = resolve_spec(model=None if preset else model, preset=preset, overrides=overrides)
    if resolved is None or resolved.spec is None:
        raise InferKitError(f"{model} carries no spec to override", hint="give --preset, or --resize and --crop")
    return resolved.spec
