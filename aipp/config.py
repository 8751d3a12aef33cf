"""The AIPP config as values: one :class:`AippOp` per ``aipp_op`` block, an :class:`AippConfig` per file.

An :class:`AippOp` keeps only the fields the config sets (so writing it back reproduces the file's
content) and answers every other field with ATC's default, resolved the way GraphEngine's
``SetDefaultParams`` does: crop/resize/padding fields are zeroed when their switch is off, a
missing CSC coefficient or bias takes the BT.601-narrow default for the input format, and a
missing ``var_reci_chn_*`` is 1.0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infer_kit.aipp.fields import ENUMS, FIELD_BY_NAME, FIELDS
from infer_kit.errors import InferKitError

# GE's SetCscDefaultValue: YUV420SP input -> BT.601 narrow YUV->BGR; any other input -> RGB->YUV.
DEFAULT_YUV2BGR = ((298, 516, 0), (298, -100, -208), (298, 0, 409))
DEFAULT_RGB2YUV = ((66, 129, 25), (-38, -74, 112), (112, -94, -18))
DEFAULT_BIAS = (16, 128, 128)

_CROP_FIELDS = ("load_start_pos_w", "load_start_pos_h", "crop_size_w", "crop_size_h")
_RESIZE_FIELDS = ("resize_output_w", "resize_output_h")
_PADDING_FIELDS = ("left_padding_size", "right_padding_size", "top_padding_size", "bottom_padding_size")


def _coerce(name: str, value: Any) -> Any:
    spec = FIELD_BY_NAME.get(name)
    if spec is None:
        raise InferKitError(f"aipp_op has no field named {name!r}")
    kind = spec.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise InferKitError(f"aipp_op field {name} must be true or false, got {value!r}")
        return value
    if kind in ("int32", "uint32"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InferKitError(f"aipp_op field {name} must be an integer, got {value!r}")
        return int(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InferKitError(f"aipp_op field {name} must be a number, got {value!r}")
        return float(value)
    if kind == "enum":
        if value not in ENUMS[name]:
            raise InferKitError(f"aipp_op field {name}: unknown value {value!r}", hint=f"use one of {ENUMS[name]}")
        return str(value)
    return str(value)


@dataclass(frozen=True)
class AippOp:
    """One ``aipp_op { ... }`` block: the fields it sets, and where they came from."""

    values: Mapping[str, Any] = field(default_factory=dict)
    line: int | None = field(default=None, compare=False)
    lines: Mapping[str, int] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        coerced = {name: _coerce(name, value) for name, value in self.values.items()}
        ordered = {spec.name: coerced[spec.name] for spec in FIELDS if spec.name in coerced}
        object.__setattr__(self, "values", ordered)

    @classmethod
    def make(cls, **values: Any) -> AippOp:
        """An op from keyword fields (None values are left out)."""
        return cls({k: v for k, v in values.items() if v is not None})

    def replace(self, **changes: Any) -> AippOp:
        """A copy with fields changed; a None value removes the field."""
        values = dict(self.values)
        for key, value in changes.items():
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
        return AippOp(values, self.line, {k: v for k, v in self.lines.items() if k in values})

    # ---- field access -----------------------------------------------------------------
    def is_set(self, name: str) -> bool:
        return name in self.values

    def explicit(self, name: str) -> Any:
        """The value the config gives, or None when it leaves the field out."""
        return self.values.get(name)

    def get(self, name: str) -> Any:
        """The value ATC uses: the config's, or the default resolved as GE does."""
        spec = FIELD_BY_NAME.get(name)
        if spec is None:
            raise KeyError(name)
        if name in _CROP_FIELDS and not self.get("crop"):
            return 0
        if name in _RESIZE_FIELDS and not self.get("resize"):
            return 0
        if name in _PADDING_FIELDS and not self.get("padding"):
            return 0
        if name in self.values:
            return self.values[name]
        if name.startswith("matrix_r"):
            table = DEFAULT_YUV2BGR if self.input_format == "YUV420SP_U8" else DEFAULT_RGB2YUV
            return table[int(name[8])][int(name[10])]
        if name.startswith(("input_bias_", "output_bias_")):
            return DEFAULT_BIAS[int(name[-1])]
        return spec.default

    def line_of(self, name: str) -> int | None:
        return self.lines.get(name, self.line)

    @property
    def mode(self) -> str:
        return str(self.get("aipp_mode"))

    @property
    def input_format(self) -> str:
        return str(self.get("input_format"))

    def csc_matrix(self) -> tuple[tuple[int, int, int], ...]:
        return tuple(tuple(int(self.get(f"matrix_r{r}c{c}")) for c in range(3)) for r in range(3))  # type: ignore[return-value]

    def csc_matrix_given(self) -> bool:
        return any(self.is_set(f"matrix_r{r}c{c}") for r in range(3) for c in range(3))

    def input_bias(self) -> tuple[int, int, int]:
        return tuple(int(self.get(f"input_bias_{i}")) for i in range(3))  # type: ignore[return-value]

    def output_bias(self) -> tuple[int, int, int]:
        return tuple(int(self.get(f"output_bias_{i}")) for i in range(3))  # type: ignore[return-value]

    def mean_chn(self) -> tuple[int, int, int, int]:
        return tuple(int(self.get(f"mean_chn_{i}")) for i in range(4))  # type: ignore[return-value]

    def min_chn(self) -> tuple[float, float, float, float]:
        return tuple(float(self.get(f"min_chn_{i}")) for i in range(4))  # type: ignore[return-value]

    def var_reci(self) -> tuple[float, float, float, float]:
        return tuple(float(self.get(f"var_reci_chn_{i}")) for i in range(4))  # type: ignore[return-value]


@dataclass(frozen=True)
class AippConfig:
    """A whole insert-op config file: one or more ``aipp_op`` blocks."""

    ops: tuple[AippOp, ...]
    path: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))

    @property
    def where(self) -> str:
        return self.path or "<aipp config>"

    def op_for_input(self, rank: int = 0, name: str | None = None) -> AippOp | None:
        """The block that applies to model input ``rank`` (or input ``name``), if any."""
        for op in self.ops:
            wanted = op.explicit("related_input_name")
            if wanted:
                if name is not None and wanted == name:
                    return op
                continue
            if int(op.get("related_input_rank")) == rank:
                return op
        return None
