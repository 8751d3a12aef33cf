from __future__ import annotations

from pathlib import Path

import click

from infer_kit.cli.options import pop_spec_overrides, spec_options
from infer_kit.converter import SOURCE_NAMES


@click.command(name="export")
@click.option("--arch", help="Registry name or timm architecture (default: what the checkpoint records, or its "
              "source's model).")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path),
              help="Weights (.pth/.pth.tar/.pt/.pyth, or a MindSpore .ckpt).")
@click.option("--from", "source", type=click.Choice(SOURCE_NAMES), default="auto", show_default=True,
              help="Which codebase wrote the checkpoint; auto detects it and says why.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Output .onnx [<arch>.onnx].")
@click.option("--batch", type=click.IntRange(min=1), help="Fix the batch size (the ModelZoo exports 16).")
@click.option("--dynamic-batch", is_flag=True, help="Dynamic batch axis (the default when --batch is not given).")
@click.option("--opset", type=click.IntRange(11, 18), default=11, show_default=True, help="ONNX opset (ATC: 11-18).")
@click.option("--input-name", default="actual_input_1", show_default=True)
@click.option("--output-name", default="output1", show_default=True)
@click.option("--num-classes", type=click.IntRange(min=1), help="Class count (default: read from the head).")
@spec_options
@click.option("--no-simplify", is_flag=True, help="Skip onnxsim.")
@click.option("--no-verify", is_flag=True, help="Skip the torch vs ONNX Runtime check.")
@click.option("--verify-images", type=click.Path(file_okay=False, path_type=Path),
              help="Also verify on the real images in this folder, preprocessed with the spec.")
@click.option("--atol", type=float, default=1e-4, show_default=True, help="Verification tolerance (absolute).")
@click.option("--rtol", type=float, default=1e-3, show_default=True,
              help="Verification tolerance, relative to the largest torch output.")
@click.option("--trust-checkpoint", is_flag=True,
              help="Allow a checkpoint that needs arbitrary code to unpickle (only for files you trust).")
@click.option("--ema", is_flag=True, help="Use the EMA weights (state_dict_ema) when the checkpoint has them.")
@click.option("--random-init", is_flag=True, help="No checkpoint: export random weights (speed tests, demos).")
def command(dynamic_batch: bool, **kwargs: object) -> None:
    """Export a checkpoint to a verified ONNX model with its preprocessing spec stamped inside.

    --from says which codebase wrote the checkpoint: pytorch (timm/torchvision names:
    pytorch/examples, torchvision, timm, infer-kit's trainer), mindspore (the ResNeSt-50 seed's
    .ckpt, read without MindSpore), pycls (the EfficientNet-B3 seed), timm-0.4 (timm 0.4.5
    TResNet, InPlace-ABN or the seed's BatchNorm copy), efficientnet-pytorch (lukemelas names,
    onto tf_efficientnet_*); auto (the default) detects it from the file and its key names.

    \b
    Examples:
      infer-kit export --arch resnet50 --checkpoint resnet50-0676ba61.pth -o resnet50.onnx
      infer-kit export --checkpoint runs/fmnist/model_best.pth --verify-images val_flat/
      infer-kit export --checkpoint resnest50-270_2502.ckpt -o resnest50.onnx         # MindSpore
      infer-kit export --checkpoint model_epoch_0100.pyth -o b3.onnx                  # pycls
      infer-kit export --checkpoint efficientnet-lite0-57934424.pth -o lite0.onnx     # EfficientNet-PyTorch
      infer-kit export --arch efficientnet_b3 --checkpoint b3.pth --channel-order RGB --batch 16
    """
    from infer_kit.converter import export_onnx
    from infer_kit.errors import InferKitError

    overrides = pop_spec_overrides(kwargs)
    if dynamic_batch and kwargs["batch"] is not None:
        raise InferKitError("--batch and --dynamic-batch exclude each other")
    result = export_onnx(
        kwargs["arch"], kwargs["checkpoint"], kwargs["output"], batch=kwargs["batch"], opset=kwargs["opset"],
        input_name=kwargs["input_name"], output_name=kwargs["output_name"], num_classes=kwargs["num_classes"],
        spec_overrides=overrides, simplify=not kwargs["no_simplify"], verify=not kwargs["no_verify"],
        verify_images=kwargs["verify_images"], atol=kwargs["atol"], rtol=kwargs["rtol"],
        trust_checkpoint=kwargs["trust_checkpoint"], use_ema=kwargs["ema"], random_init=kwargs["random_init"],
        source=kwargs["source"],
    )
    size = f"{result.size_bytes / 1e6:.1f} MB"
    state = "simplified" if result.simplified else f"not simplified: {result.simplify_note or 'skipped'}"
    click.echo(f"exported {result.arch} -> {result.path} ({size}, opset {result.opset}, {state}, "
               f"{result.seconds:.1f} s)")
    if result.checkpoint:
        click.echo(f"  {'source':<10} {result.checkpoint.describe_source()}")
        if result.checkpoint.variant:
            click.echo(f"  {'geometry':<10} {result.checkpoint.variant}")
        for note in result.checkpoint.notes:
            click.echo(f"  {'converted':<10} {note}")
    for label, tensors in (("input", result.inputs), ("output", result.outputs)):
        for tensor in tensors:
            click.echo(f"  {label:<10} {tensor.describe()}")
    click.echo(f"  {'classes':<10} {result.num_classes}")
    click.echo(f"  {'spec':<10} {result.spec.describe()}")
    if result.checkpoint:
        ckpt = result.checkpoint
        stripped = f", '{ckpt.stripped_prefix}' stripped" if ckpt.stripped_prefix else ""
        click.echo(f"  {'checkpoint':<10} {ckpt.path} ({ckpt.layout}{stripped}, sha256 {ckpt.sha256[:12]})")
    else:
        click.echo(f"  {'checkpoint':<10} none (random weights)")
    if result.verification:
        click.echo(f"  {'verified':<10} {result.verification.describe()}")
