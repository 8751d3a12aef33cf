from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from infer_kit.cli.options import engine_options, pop_spec_overrides, spec_options
from infer_kit.errors import InferKitError


@click.command(name="preprocess")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@click.option("--for", "target", type=click.Path(path_type=Path), metavar="MODEL",
              help="The model the tensors are for (.onnx from export, an atc artifact .emu.onnx/.om/.manifest.json): "
              "its spec and layout are used.")
@click.option("--arch", help="A registry model name (seed or any timm architecture): its spec is used.")
@click.option("--model", "model_name", hidden=True, help="Old spelling of --arch.")
@click.option("--preset", help="A ModelZoo preset: resnet, inceptionv3, inceptionv4, efficientnetB3, efficientnetB5, "
              "dpn131.")
@click.option("--layout", type=click.Choice(["aipp", "float"]),
              help="aipp: uint8 HWC RGB at the resize size, for AIPP models (default without --for); "
              "float: float32 CHW normalised crop. With --for the model decides.")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (default: all cores).")
@click.option("--resume", is_flag=True, help="Keep complete files from an interrupted run; redo the rest.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N images (sorted by path).")
@click.option("--on-error", type=click.Choice(["stop", "skip"]), default="stop", show_default=True,
              help="On a bad image: stop with an error naming it, or skip it and list it in the manifest.")
@click.option("--labels", type=click.Path(path_type=Path),
              help="An existing val_label.txt to check: every image must have a label.")
@spec_options
@engine_options
def command(src: Path, dst: Path, **kwargs: Any) -> None:
    """Turn the images in SRC into one tensor file per image in DST.

    SRC is a flat folder of images (ImageNet val: ILSVRC2012_val_00000001.JPEG) or a tree of
    class folders (val/<synset>/<image>). DST gets <name>.bin per image (<name> = the file
    name up to its first '.'), a manifest.json (spec, layout, dtype, shape, count, skipped
    files) and, for a class tree, val_label.txt and class_index.json.

    The spec comes from --for, --arch or --preset (exactly one). Without --for the layout
    defaults to aipp: byte-identical to the ModelZoo imagenet_torch_preprocess.py output.
    The chosen layout and spec are printed at the end.

    \b
    A rerun without --resume rewrites every file (same bytes); --resume keeps the complete
    ones. A DST holding another spec's tensors is refused.

    \b
    Examples:
      infer-kit preprocess --preset resnet ImageNet/val prep_dataset
      infer-kit preprocess --for resnet50_bs64.manifest.json ImageNet/val prep_dataset --resume
      infer-kit preprocess --arch efficientnet_b3 --layout float val/ prep_b3 --on-error skip
      infer-kit preprocess --preset resnet /shared/val /shared/prep --engine ray --address 10.0.0.1:6379
    """
    from infer_kit.console import log
    from infer_kit.preprocess import preprocess

    overrides = pop_spec_overrides(kwargs)
    model_name = kwargs.pop("model_name")
    if model_name is not None:
        log.warning("--model NAME is now --arch NAME (--model is always a model file); taking it as --arch")
        if kwargs["arch"] is not None:
            raise InferKitError("give only one of --arch and --model NAME: both name the architecture")
        kwargs["arch"] = model_name
    result = preprocess(src, dst, overrides=overrides, **kwargs)
    for line in summary_lines(result):
        click.echo(line)


def summary_lines(result: Any) -> list[str]:
    """The end-of-run summary: counts, layout and spec, speed, label files, skipped files."""
    spec, layout = result.spec, result.layout
    shape = "x".join(str(d) for d in spec.sample_shape(layout))
    kept = f", {result.kept} kept from an earlier run" if result.kept else ""
    lines = [
        f"preprocessed {result.written} images into {result.dst}{kept}, {len(result.skipped)} skipped "
        f"({result.count} tensor files)",
        f"layout {layout}: {spec.sample_dtype(layout)} {shape}, {result.bytes_per_file:,} bytes per file",
        f"spec: {spec.describe()} (from {result.spec_source})",
        f"{result.bytes_written / 1e6:,.1f} MB in {result.seconds:.2f} s, {result.images_per_second:,.1f} images/s "
        f"with {result.workers} worker{'s' if result.workers != 1 else ''}",
    ]
    if result.labels_path is not None:
        if result.class_index_path is not None:
            lines.append(f"labels: {result.labels_path} ({result.classes} classes), {result.class_index_path}")
        else:
            lines.append(f"labels checked: {result.labels_path}"
                         + (f" ({len(result.unlabelled)} images without a label)" if result.unlabelled else ""))
    for item in result.skipped[:20]:
        lines.append(f"skipped {item['file']}: {item['reason']}")
    if len(result.skipped) > 20:
        lines.append(f"... and {len(result.skipped) - 20} more skipped files (see {result.manifest_path})")
    return lines
