"""Write an AIPP config as the protobuf text ATC reads; :func:`parse_config` reads it back unchanged.

Fields come out in the template's order (mode, geometry, colour conversion, normalisation), one
``key : value`` per line, a blank line between groups. Floats are written with ``repr`` (the
shortest text that reads back to the same double), so values generated from a spec keep the
digits the ModelZoo configs print (``0.0171247538316637``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from infer_kit.aipp.config import AippConfig, AippOp
from infer_kit.aipp.fields import FIELD_BY_NAME

INDENT = "    "


def format_value(name: str, value: object) -> str:
    kind = FIELD_BY_NAME[name].kind
    if kind == "bool":
        return "true" if value else "false"
    if kind == "float":
        number = float(value)  # type: ignore[arg-type]
        if math.isnan(number):
            return "nan"
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        return repr(number)
    if kind == "string":
        escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return str(value)


def render_op(op: AippOp) -> str:
    lines = ["aipp_op {"]
    previous_group = None
    for name, value in op.values.items():
        group = FIELD_BY_NAME[name].group
        if previous_group is not None and group != previous_group:
            lines.append("")
        previous_group = group
        lines.append(f"{INDENT}{name} : {format_value(name, value)}")
    lines.append("}")
    return "\n".join(lines)


def render_config(config: AippConfig | AippOp | Iterable[AippOp], *, header: Iterable[str] = ()) -> str:
    """The config file text; ``header`` lines become ``#`` comments at the top."""
    if isinstance(config, AippOp):
        ops: tuple[AippOp, ...] = (config,)
    elif isinstance(config, AippConfig):
        ops = config.ops
    else:
        ops = tuple(config)
    comments = [f"# {line}".rstrip() for line in header]
    body = "\n\n".join(render_op(op) for op in ops)
    return "\n".join([*comments, body]) + "\n" if comments else body + "\n"

