"""The AIPP behaviours no primary source pins down, chosen in one place, one switch each.

What *is* verified and therefore not a switch: the processing order (channel swap, crop, CSC,
normalisation, padding); the CSC formulas with the integer matrix and ``>> 8``; the DTC formula
``(x - mean_chn - min_chn) * var_reci``; that ``min_chn``/``var_reci`` are programmed as
float16 (the Aipp operator calls ``np.float16(value)`` on the proto's float32); that
``mean_chn`` is an integer; the float16 output.

The switches (defaults in :data:`DEFAULT_ASSUMPTIONS`):

``csc_shift``
    How ``>> 8`` rounds a negative sum. ``"floor"`` (default): an arithmetic shift, which is what
    a hardware shifter on two's-complement sums does. ``"trunc"``: toward zero (C integer
    division). ``"round"``: add 128 before the shift.
``csc_saturate``
    Clip the CSC result to 0..255 before normalisation (default True): the CSC unit feeds 8-bit
    channels, and the JPEG matrix overshoots (``Y + 1.4 V`` exceeds 255 for saturated reds).
``chroma_upsampling``
    How YUV420SP chroma (one U,V pair per 2x2 pixels) becomes 4:4:4. ``"replicate"`` (default):
    each pair serves its 2x2 block, the cheapest hardware path. ``"bilinear"``: libjpeg's
    "fancy" triangle filter (3/4, 1/4 taps per axis, ``(sum + 8) >> 4``).
``dtc_precision``
    Where the normalisation rounds. ``"float16"`` (default): every step of
    ``((x - mean) - min) * var`` is rounded to float16, as a float16 datapath would.
    ``"float32"``: computed in float32, rounded to float16 once at the end.

Two layout choices are documented here too, though they are not arithmetic:
YUV420SP input is given to the emulated model as uint8 ``[N, H*3/2, W, 1]`` (NV12 bytes; the
byte count is what ais_bench checks, the shape the .om reports is unknown), and XRGB8888 input
keeps only the three colour channels (the X/A byte is dropped after the swaps, as CSC ignores it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from infer_kit.errors import InferKitError

CHOICES: dict[str, tuple[Any, ...]] = {
    "csc_shift": ("floor", "trunc", "round"),
    "csc_saturate": (True, False),
    "chroma_upsampling": ("replicate", "bilinear"),
    "dtc_precision": ("float16", "float32"),
}


@dataclass(frozen=True)
class Assumptions:
    """One value per UNVERIFIED AIPP behaviour (see the module docstring)."""

    csc_shift: str = "floor"
    csc_saturate: bool = True
    chroma_upsampling: str = "replicate"
    dtc_precision: str = "float16"

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value not in CHOICES[item.name]:
                choices = ", ".join(str(c).lower() for c in CHOICES[item.name])
                raise InferKitError(f"AIPP assumption {item.name}={value!r} is not known", hint=f"use one of {choices}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, settings: dict[str, str]) -> Assumptions:
        """Apply ``{"csc_shift": "trunc", "csc_saturate": "false"}``-style text settings."""
        changes: dict[str, Any] = {}
        for key, text in settings.items():
            if key not in CHOICES:
                raise InferKitError(f"unknown AIPP assumption {key!r}", hint=f"use one of {', '.join(CHOICES)}")
            if isinstance(CHOICES[key][0], bool):
                lowered = str(text).lower()
                if lowered not in ("true", "false"):
                    raise InferKitError(f"AIPP assumption {key} takes true or false, got {text!r}")
                changes[key] = lowered == "true"
            else:
                changes[key] = str(text).lower()
        return replace(self, **changes)


DEFAULT_ASSUMPTIONS = Assumptions()


def parse_assumptions(items: tuple[str, ...] | list[str]) -> Assumptions:
    """``["csc_shift=trunc", ...]`` (CLI ``--assume``) on top of the defaults."""
    settings: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InferKitError(f"--assume {item!r}: expected KEY=VALUE", hint=f"keys: {', '.join(CHOICES)}")
        settings[key.strip()] = value.strip()
    return DEFAULT_ASSUMPTIONS.with_overrides(settings)
