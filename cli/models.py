from __future__ import annotations

import json

import click

from infer_kit.cli.options import pop_spec_overrides, spec_options


@click.command(name="models")
@click.argument("name", required=False)
@spec_options
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def command(name: str | None, as_json: bool, **kwargs: object) -> None:
    """List the registry (the seed models and efficientnet_lite0) with their preprocessing, or resolve NAME.

    \b
    Examples:
      infer-kit models
      infer-kit models efficientnet_b3 --channel-order RGB
      infer-kit models vit_small_patch16_224 --json
    """
    from infer_kit.registry import MODELS, get_model
    from infer_kit.resolve import resolve_spec

    overrides = pop_spec_overrides(kwargs)
    entries = [get_model(name)] if name else list(MODELS.values())
    rows = []
    for entry in entries:
        spec = resolve_spec(arch=entry.name, overrides=overrides).spec
        rows.append({"name": entry.name, "arch": entry.arch, "spec": spec.to_dict(),
                     "spec_source": entry.spec_source + (" + overrides" if overrides else ""),
                     "seed": entry.seed, "description": entry.description})
    if as_json:
        click.echo(json.dumps(rows if name is None else rows[0], indent=2))
        return
    from infer_kit.spec import PreprocessSpec

    width = max(len(r["name"]) for r in rows)
    arch_width = max(len(r["arch"]) for r in rows)
    for row in rows:
        spec = PreprocessSpec.from_dict(row["spec"])
        click.echo(f"{row['name']:<{width}}  timm:{row['arch']:<{arch_width}} {spec.describe()}")
        click.echo(f"{'':<{width}}  {row['spec_source']}")
    if name is None:
        click.echo("Any other timm architecture name works too (spec from its pretrained_cfg).")
