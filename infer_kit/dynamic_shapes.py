"""Dynamic shapes as an artifact manifest records them: ``atc`` writes the profile, ``run`` reads it.

ATC compiles one OM for several input shapes in one of four ways, and the manifest's
``"dynamic"`` block says which, in terms of the artifact's own inputs (what ``run`` feeds,
so for an AIPP model the uint8 NHWC image):

* ``batch`` (``--dynamic_batch_size=1,2,4,8``): dim 0 of each input is -1; a gear is ``(N,)``;
* ``image_size`` (``--dynamic_image_size="224,224;256,256"``): H and W are -1; a gear is ``(H, W)``,
  height first;
* ``dims`` (``--dynamic_dims="1,224,224;8,256,256"``): any axes are -1; a gear lists a value for
  every -1 of every input, in input order;
* ``shape_range`` (``--input_shape="x:1~8,3,224,224"``, or ``-1`` for any size): no gears, each
  dynamic axis has an inclusive ``[low, high]`` range (``high`` None: unbounded).

The device takes exactly the compiled gears (a range's shapes for ``shape_range``); the largest
gear is used when none is set. ``dynamic_aipp`` (``aipp_mode: dynamic``) is recorded beside it:
the AIPP parameters then come with each run (``run --aipp_config``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infer_kit.errors import InferKitError

KINDS = ("batch", "image_size", "dims", "shape_range")
# The ATC option of each kind, for messages.
ATC_OPTIONS = {"batch": "--dynamic_batch_size", "image_size": "--dynamic_image_size", "dims": "--dynamic_dims",
               "shape_range": "--input_shape (ranges)"}
Shape = tuple[int, ...]


@dataclass(frozen=True)
class DynamicProfile:
    """The shapes one compiled model takes (see the module docstring); -1 marks a dynamic axis."""

    kind: str
    input_shapes: tuple[tuple[str, Shape], ...]
    gears: tuple[Shape, ...] = ()
    ranges: tuple[tuple[str, tuple[tuple[int, int | None], ...]], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InferKitError(f"unknown dynamic shape kind {self.kind!r}", hint=f"use one of {', '.join(KINDS)}")

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.input_shapes]

    def shape_of(self, name: str) -> Shape:
        return dict(self.input_shapes)[name]

    @property
    def max_gear(self) -> Shape | None:
        """The largest gear (by the bytes it feeds), which the device uses when no gear is set."""
        if not self.gears:
            return None
        return max(self.gears, key=lambda gear: sum(math.prod(s) for s in self.gear_shapes(gear).values()))

    def gear_shapes(self, gear: Sequence[int]) -> dict[str, Shape]:
        """Every input's shape at ``gear`` (the -1 axes filled as the kind fills them)."""
        gear = tuple(int(v) for v in gear)
        out: dict[str, Shape] = {}
        if self.kind == "dims":
            values = list(gear)
            for name, shape in self.input_shapes:
                out[name] = tuple(values.pop(0) if d == -1 else d for d in shape)
            return out
        for name, shape in self.input_shapes:
            fill = list(gear)
            out[name] = tuple(fill.pop(0) if d == -1 and fill else d for d in shape)
        return out

    def gear_text(self) -> str:
        """The gears the way ais_bench lists them: ``[1][2][4][8]``, or ``[224,224][448,448]``."""
        return "".join("[" + ",".join(str(v) for v in gear) + "]" for gear in self.gears)

    def in_range(self, name: str, shape: Sequence[int]) -> bool:
        limits = dict(self.ranges).get(name)
        if limits is None or len(limits) != len(shape):
            return False
        return all(low <= d and (high is None or d <= high) for d, (low, high) in zip(shape, limits, strict=True))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind,
                                "input_shapes": {name: list(shape) for name, shape in self.input_shapes}}
        if self.gears:
            data["gears"] = [list(g) for g in self.gears]
        if self.ranges:
            data["ranges"] = {name: [[low, high] for low, high in dims] for name, dims in self.ranges}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "artifact manifest") -> DynamicProfile:
        try:
            return cls(
                kind=str(data["kind"]),
                input_shapes=tuple((str(k), tuple(int(d) for d in v)) for k, v in data["input_shapes"].items()),
                gears=tuple(tuple(int(v) for v in g) for g in data.get("gears", [])),
                ranges=tuple((str(k), tuple((int(lo), None if hi is None else int(hi)) for lo, hi in v))
                             for k, v in data.get("ranges", {}).items()),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InferKitError(f"{where}: malformed dynamic shape block ({exc})",
                                hint="rebuild the artifact with 'infer-kit atc'") from None


@dataclass(frozen=True)
class DynamicAipp:
    """An input compiled with ``aipp_mode: dynamic``: its AIPP parameters come with each run."""

    input: str
    max_src_image_size: int
    related_input_rank: int = 0
    model_hw: tuple[int, int] = (0, 0)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "max_src_image_size": self.max_src_image_size,
                "related_input_rank": self.related_input_rank, "model_hw": list(self.model_hw), **self.extra}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "artifact manifest") -> DynamicAipp:
        try:
            known = {"input", "max_src_image_size", "related_input_rank", "model_hw"}
            return cls(str(data["input"]), int(data["max_src_image_size"]), int(data.get("related_input_rank", 0)),
                       tuple(int(v) for v in data.get("model_hw", (0, 0))),  # type: ignore[arg-type]
                       {k: v for k, v in data.items() if k not in known})
        except (KeyError, TypeError, ValueError) as exc:
            raise InferKitError(f"{where}: malformed dynamic AIPP block ({exc})",
                                hint="rebuild the artifact with 'infer-kit atc'") from None
