from __future__ import annotations

import click


@click.command(name="doctor")
def command() -> None:
    """Report which tools and backends are available here, with the reason when not.

    Example: infer-kit doctor
    """
    from infer_kit.doctor import collect

    checks = collect()
    width = max(len(c.name) for c in checks)
    for check in checks:
        mark = "ok " if check.ok else ("-- " if not check.required else "NO ")
        click.echo(f"{mark} {check.name:<{width}}  {check.detail}")
    missing = [c.name for c in checks if c.required and not c.ok]
    if missing:
        raise click.ClickException(
            f"required package(s) missing: {', '.join(missing)} (run 'make test' or pip install -e .)"
        )
