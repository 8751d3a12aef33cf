"""Click options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from infer_kit.spec import CHANNEL_ORDERS, INTERPOLATIONS


def _triple(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        items = tuple(float(v) for v in value.replace(" ", "").split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give three comma-separated numbers, e.g. 0.485,0.456,0.406") from None
    if len(items) not in (1, 3):
        raise click.BadParameter(f"{value!r}: give one or three comma-separated numbers")
    return items if len(items) == 3 else items * 3


SPEC_OPTION_NAMES = ("resize", "crop", "mean", "std", "interpolation", "channel_order")


def spec_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--resize --crop --mean --std --interpolation --channel-order`` overrides of a spec."""
    options = [
        click.option("--resize", type=click.IntRange(min=1), help="Short side after resizing (override)."),
        click.option("--crop", type=click.IntRange(min=1), help="Centre-crop size (override)."),
        click.option("--mean", callback=_triple, help="Mean in RGB order on the 0..1 scale, e.g. 0.485,0.456,0.406."),
        click.option("--std", callback=_triple, help="Std in RGB order on the 0..1 scale, e.g. 0.229,0.224,0.225."),
        click.option("--interpolation", type=click.Choice(INTERPOLATIONS), help="Resize filter (override)."),
        click.option("--channel-order", type=click.Choice(CHANNEL_ORDERS, case_sensitive=False),
                     help="Channel planes the model expects (override)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def pop_spec_overrides(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Remove the spec options from a command's kwargs; return the ones the user set."""
    overrides = {}
    for name in SPEC_OPTION_NAMES:
        value = kwargs.pop(name, None)
        if value is not None:
            overrides[name] = value
    return overrides


def int_list(minimum: int = 0, example: str = "1,8,64") -> Callable[..., Any]:
    """A click callback for ``--opt 1,8,64`` (also repeated, with ``multiple=True``) -> a tuple of ints."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | tuple[str, ...] | None) -> Any:
        if value is None or value == ():
            return None
        parts = [item for text in ((value,) if isinstance(value, str) else value)
                 for item in text.replace(" ", "").split(",") if item]
        try:
            numbers = tuple(int(item) for item in parts)
        except ValueError:
            raise click.BadParameter(f"{','.join(parts)!r}: give comma-separated integers, e.g. {example}") from None
        low = [n for n in numbers if n < minimum]
        if low:
            raise click.BadParameter(f"{low[0]} is below {minimum}")
        return numbers

    return callback


def engine_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--engine local|ray`` and ``--address auto|HOST:PORT``: where the work runs."""
    options = [
        click.option("--engine", type=click.Choice(("local", "ray")), default="local", show_default=True,
                     help="local: this machine; ray: spread the files over a running Ray cluster (pip install "
                          "'infer-kit[ray]'; inputs and outputs on a folder every node mounts at the same path)."),
        click.option("--address", metavar="auto|HOST:PORT",
                     help="With --engine ray: the cluster 'ray start' left on this machine (auto, the default) or "
                          "the head's HOST:PORT."),
    ]
    for option in reversed(options):
        func = option(func)
    return func
