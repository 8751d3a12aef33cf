from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from infer_kit.cli.options import int_list, pop_spec_overrides, spec_options
from infer_kit.converter import SOURCE_NAMES
from infer_kit.result_files import OUTFMTS


@click.command(name="pipeline")
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="[model] checkpoint.")
@click.option("--onnx", type=click.Path(dir_okay=False), help="[model] an exported ONNX model instead.")
@click.option("--arch", help="[model] arch.")
@click.option("--from", "source", type=click.Choice(SOURCE_NAMES), help="[model] source: which codebase wrote the "
              "checkpoint (default auto).")
@click.option("--images", type=click.Path(file_okay=False), help="[data] images (flat folder or class tree).")
@click.option("--labels", type=click.Path(dir_okay=False), help="[data] val_label.txt.")
@click.option("--limit", type=click.IntRange(min=1), help="[data] only the first N images.")
@click.option("--soc", help="[atc] soc version, e.g. Ascend910A.")
@click.option("--batch", callback=int_list(minimum=1, example="1,16"), help="[atc] batch sizes, e.g. 1,16.")
@click.option("--precision-mode", help="[atc] precision modes, comma-separated ('all', 'int8' too).")
@click.option("--calibration", type=click.Path(file_okay=False),
              help="[atc] preprocessed images for the range check and INT8 [default: the pipeline's own].")
@click.option("--emulate/--no-emulate", default=None, help="[atc] force the emulation (or real ATC).")
@click.option("--outfmt", type=click.Choice(OUTFMTS, case_sensitive=False), help="[run] outfmt.")
@click.option("--threads", type=click.IntRange(min=1), help="[run] ONNX Runtime threads.")
@click.option("--min-top1", type=float, help="[evaluate] gate in percent (exit 3 below it).")
@click.option("--min-top5", type=float, help="[evaluate] gate in percent.")
@click.option("--no-compare", is_flag=True, help="[compare] skip the fp32 ONNX reference run.")
@click.option("--compare-torch", is_flag=True, help="[compare] torch: also run the checkpoint in eager torch.")
@click.option("--max-disagreement", type=float, help="[compare] gate: max %% of images whose top-1 changes.")
@click.option("--engine", type=click.Choice(("local", "ray")),
              help="[cluster] engine: ray runs the rows as tasks on a Ray cluster (pip install 'infer-kit[ray]').")
@click.option("--address", metavar="auto|HOST:PORT", help="[cluster] address of the Ray cluster.")
@click.option("--work-dir", type=click.Path(file_okay=False), help="Where everything is written.")
@click.option("--name", help="Name shown in the report.")
@spec_options
@click.option("--force", is_flag=True, help="Ignore the cache and rerun every stage.")
def command(config: Path | None, force: bool, **flags: Any) -> None:
    """Run export -> atc -> preprocess -> run -> evaluate (-> compare) and write a report.

    CONFIG is a TOML file (see pipeline/config.py and examples/); flags set or
    override its keys. Each stage is cached by a key of its inputs: a rerun after a change
    redoes only the stages it affects. Exit 3 when a gate fails (after the report is written).

    \b
    Examples:
      infer-kit pipeline examples/fashion_mnist.toml
      infer-kit pipeline --checkpoint resnet50.pth --images val/ --labels val_label.txt \\
          --soc Ascend910A --batch 1,64 --min-top1 75
    """
    from infer_kit.pipeline import config_from_dict, read_toml, run_pipeline

    spec = pop_spec_overrides(flags)
    if config is not None:
        base, where, raw = config.parent, str(config), read_toml(config)
    else:
        base, where, raw = Path.cwd(), "command line", {}
    _merge_flags(raw, flags, spec, base)
    settings = config_from_dict(raw, base=base, where=where, source=config)
    result = run_pipeline(settings, force=force)

    click.echo(f"pipeline {settings.name}: {len(result.ran)} stage(s) ran, {len(result.cached)} reused from cache")
    if result.cached:
        click.echo(f"reused: {', '.join(result.cached)}")
    with_torch = any(row.agreement_torch is not None for row in result.rows)
    width = max([28, *(len(row.name) for row in result.rows)])
    click.echo(f"{'row':<{width}} {'batch':>5} {'top-1 %':>8} {'top-5 %':>8} {'Δtop-1':>7} {'Δtop-5':>7} "
               f"{'agree %':>8}" + (f" {'torch %':>8}" if with_torch else "")
               + f" {'img/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for row in result.rows:
        agree = "-" if row.agreement is None else f"{row.agreement:.2f}"
        top5 = "-" if row.top5 is None else f"{row.top5:.2f}"
        d1 = "-" if row.delta_top1 is None else f"{row.delta_top1:+.2f}"
        d5 = "-" if row.delta_top5 is None else f"{row.delta_top5:+.2f}"
        torch = "" if not with_torch else f" {'-' if row.agreement_torch is None else f'{row.agreement_torch:.2f}':>8}"
        click.echo(f"{row.name:<{width}} {row.batch:>5} {row.top1:>8.2f} {top5:>8} {d1:>7} {d5:>7} {agree:>8}{torch} "
                   f"{row.images_per_s:>9.1f} {row.latency_p50_ms:>8.2f} {row.latency_p99_ms:>8.2f}")
    for row in result.rows:
        if row.range_warning:
            click.echo(f"warning: range check {row.range_check}", err=True)
        if row.layers_json:
            click.echo(f"per-layer comparison ({row.name}, below the agreement gate): {row.layers_json}")
    if result.images:
        _print_images(result)
    for row in result.rows:
        click.echo(f"result.json ({row.name}): {row.result_json}")
    click.echo(f"report: {result.report_html}  (and {result.report_md.name})")
    result.raise_for_gates()


def _print_images(result: Any) -> None:
    """A run of a few images, image by image: the first row's top-1 and which rows agree with the references."""
    from infer_kit.pipeline import REFERENCE_ROW, TORCH_ROW

    main = result.rows[0].name
    click.echo(f"image by image ({main}: top-1, probability; the rows that name the same class as the references):")
    for image in result.images:
        name, probability, index = image.predicted[main]
        mark = "" if image.label is None else ("ok" if index == image.label else "MISS")
        agree = [f"= {label}: {image.agreement(ref)}" for ref, label in ((REFERENCE_ROW, "fp32 ONNX"),
                                                                       (TORCH_ROW, "torch")) if image.agreement(ref)]
        click.echo(f"  {image.key:<16} {name[:22]:<22} {probability:>6.3f} {mark:<4} (true: {image.true[:22]}) "
                   + "; ".join(agree))


def _merge_flags(raw: dict[str, Any], flags: dict[str, Any], spec: dict[str, Any], base: Path) -> None:
    """Write the CLI flags into the config dict (paths made relative to ``base`` by being absolute)."""
    def put(section: str, key: str, value: Any) -> None:
        if value is not None:
            raw.setdefault(section, {})[key] = value

    absolute = {k: str(Path(v).resolve()) if v is not None else None
                for k, v in flags.items() if k in ("checkpoint", "onnx", "images", "labels", "work_dir")}
    put("model", "checkpoint", absolute["checkpoint"])
    put("model", "onnx", absolute["onnx"])
    put("model", "arch", flags["arch"])
    put("model", "source", flags["source"])
    if spec:
        raw.setdefault("model", {}).setdefault("spec", {}).update(
            {k: list(v) if isinstance(v, tuple) else v for k, v in spec.items()})
    put("data", "images", absolute["images"])
    put("data", "labels", absolute["labels"])
    put("data", "limit", flags["limit"])
    put("atc", "soc", flags["soc"])
    put("atc", "batch_sizes", list(flags["batch"]) if flags["batch"] else None)
    if flags["precision_mode"]:
        put("atc", "precision_modes", [m.strip() for m in flags["precision_mode"].split(",") if m.strip()])
    put("atc", "emulate", flags["emulate"])
    put("atc", "calibration", str(Path(flags["calibration"]).resolve()) if flags["calibration"] else None)
    put("run", "outfmt", flags["outfmt"].upper() if flags["outfmt"] else None)
    put("run", "threads", flags["threads"])
    put("evaluate", "min_top1", flags["min_top1"])
    put("evaluate", "min_top5", flags["min_top5"])
    if flags["no_compare"]:
        put("compare", "reference", False)
    if flags["compare_torch"]:
        put("compare", "torch", True)
    put("compare", "max_disagreement", flags["max_disagreement"])
    put("cluster", "engine", flags["engine"])
    put("cluster", "address", flags["address"])
    if absolute["work_dir"]:
        raw["work_dir"] = absolute["work_dir"]
    if flags["name"]:
        raw["name"] = flags["name"]
