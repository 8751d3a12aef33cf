"""`PreprocessSpec`: the one description of an image classifier's input preprocessing.

Most accuracy lost in deployment is lost to preprocessing that does not match training,
so one small frozen value travels with every artifact: it is stamped into the ONNX
metadata by ``export``, turned into the AIPP config by ``atc``, recorded in the manifest
of every preprocessed folder and emulated model, and checked by ``run``.

Conventions (the ones torchvision, timm and the ModelZoo scripts share):

* ``resize`` is the short side after resizing; the long side is
  ``int(resize * long / short)`` (truncation, as PIL-based ModelZoo and torchvision do);
  ``crop`` is the side of the square centre crop taken from that image, at offset
  ``int(round((h - crop) / 2))`` (Python rounding, half to even).
* ``mean`` and ``std`` are on the 0..1 scale and always written in **RGB order**;
  ``channel_order`` says in which order the model wants its channel planes (``BGR`` for
  models trained on OpenCV-decoded images, e.g. pycls' EfficientNet). The constants are
  applied to the matching planes, so a BGR model's first plane uses ``mean[2]``.
* Two input layouts exist for one spec:
  ``float``: float32 CHW ``(3, crop, crop)``, ``(x/255 - mean) / std`` in channel order;
  ``aipp``: uint8 HWC RGB bytes that the AIPP in front of the compiled model crops (or not) and
  normalises on the device. Its geometry (``aipp_geometry``) is one of
  ``square``: the ``resize x resize`` centre square, which AIPP crops ``crop x crop`` at
  ``crop_offset`` (the ModelZoo ResNet-50 layout), or
  ``crop``: the ``crop x crop`` centre crop itself, which AIPP takes whole (the ModelZoo
  Inception layout).
  Two centre crops in a row select the pixels of one centre crop for every image size only
  when ``(resize - crop) % 4 == 0`` (both offsets round half to even; proof and sweep in the
  README), so ``auto`` picks ``square`` then (and when ``crop == resize``) and ``crop``
  otherwise: the aipp layout plus its AIPP config always selects exactly the float layout's
  pixels.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from infer_kit.errors import InferKitError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
CHANNEL_ORDERS = ("RGB", "BGR")
LAYOUTS = ("aipp", "float")
LONG_SIDE_RULES = ("floor", "round")
AIPP_GEOMETRIES = ("auto", "square", "crop")
# Fields that determine the bytes of an aipp-layout file (the rest is applied by AIPP); the crop
# counts too when the geometry writes the crop itself (see PreprocessSpec.layout_fields).
AIPP_SOURCE_FIELDS = ("resize", "interpolation", "long_side")


@dataclass(frozen=True)
class PreprocessSpec:
    """How an image becomes the model's input tensor (see the module docstring)."""

    resize: int
    crop: int
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channel_order: str = "RGB"
    long_side: str = "floor"
    aipp_geometry: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _triple("mean", self.mean))
        object.__setattr__(self, "std", _triple("std", self.std))
        object.__setattr__(self, "interpolation", str(self.interpolation).lower())
        object.__setattr__(self, "channel_order", str(self.channel_order).upper())
        _check_int("resize", self.resize)
        _check_int("crop", self.crop)
        if self.crop > self.resize:
            raise InferKitError(
                f"preprocess spec: crop {self.crop} is larger than resize {self.resize}",
                hint="the centre crop is taken from the resized image; use crop <= resize",
            )
        if self.interpolation not in INTERPOLATIONS:
            raise InferKitError(
                f"preprocess spec: unknown interpolation {self.interpolation!r}",
                hint=f"use one of {', '.join(INTERPOLATIONS)}",
            )
        if self.channel_order not in CHANNEL_ORDERS:
            raise InferKitError(
                f"preprocess spec: unknown channel order {self.channel_order!r}", hint="use RGB or BGR"
            )
        if self.long_side not in LONG_SIDE_RULES:
            raise InferKitError(
                f"preprocess spec: unknown long-side rule {self.long_side!r}", hint="use floor or round"
            )
        if any(s <= 0 for s in self.std):
            raise InferKitError(f"preprocess spec: std {self.std} must be positive")
        if self.aipp_geometry not in AIPP_GEOMETRIES:
            raise InferKitError(f"preprocess spec: unknown aipp geometry {self.aipp_geometry!r}",
                                hint="use auto, square or crop")

    # ---- geometry -------------------------------------------------------------------
    @property
    def crop_offset(self) -> int:
        """Offset of the centre crop inside the ``resize x resize`` AIPP source image."""
        return int(round((self.resize - self.crop) / 2))

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after resizing the short side to ``resize``."""
        return cover_size(width, height, self.resize, self.resize, self.long_side)

    @property
    def geometry(self) -> str:
        """The aipp layout's geometry, ``square`` or ``crop`` (``auto`` resolved by the composition rule)."""
        if self.aipp_geometry != "auto":
            return "crop" if self.aipp_geometry == "crop" and self.crop != self.resize else "square"
        return "square" if (self.resize - self.crop) % 4 == 0 else "crop"

    @property
    def aipp_side(self) -> int:
        """Side of the square uint8 image the aipp layout writes: ``resize`` or ``crop``."""
        return self.resize if self.geometry == "square" else self.crop

    @property
    def aipp_crop(self) -> tuple[int, int] | None:
        """(offset, size) of the crop AIPP takes from the aipp-layout image, or None when it takes it whole."""
        if self.geometry == "square" and self.crop != self.resize:
            return self.crop_offset, self.crop
        return None

    def geometry_dict(self) -> dict[str, Any]:
        """The aipp layout's geometry as manifests record it."""
        crop = self.aipp_crop
        return {"kind": self.geometry, "side": self.aipp_side,
                "aipp_crop": None if crop is None else {"offset": crop[0], "size": crop[1]}}

    # ---- per-layout tensor description ----------------------------------------------
    def sample_shape(self, layout: str) -> tuple[int, int, int]:
        """Shape of one preprocessed image in ``layout`` (no batch axis)."""
        _check_layout(layout)
        if layout == "aipp":
            return (self.aipp_side, self.aipp_side, 3)
        return (3, self.crop, self.crop)

    def layout_fields(self, layout: str) -> dict[str, Any]:
        """The fields that decide the bytes of a ``layout`` file (all of them for ``float``)."""
        data = self.to_dict()
        if layout != "aipp":
            return data
        chosen = {k: data[k] for k in AIPP_SOURCE_FIELDS}
        chosen["geometry"] = self.geometry
        if self.geometry == "crop":
            chosen["crop"] = self.crop
        return chosen

    @staticmethod
    def sample_dtype(layout: str) -> str:
        _check_layout(layout)
        return "uint8" if layout == "aipp" else "float32"

    def sample_nbytes(self, layout: str) -> int:
        itemsize = 1 if layout == "aipp" else 4
        return math.prod(self.sample_shape(layout)) * itemsize

    def planes(self, values: tuple[float, float, float]) -> tuple[float, float, float]:
        """Reorder RGB-ordered constants into the model's channel order."""
        return values if self.channel_order == "RGB" else (values[2], values[1], values[0])

    # ---- (de)serialisation ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        if self.aipp_geometry == "auto":
            del data["aipp_geometry"]  # the default: specs written before the field existed read the same
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "preprocess spec") -> PreprocessSpec:
        if not isinstance(data, dict):
            raise InferKitError(f"{where}: expected an object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InferKitError(
                f"{where}: unknown field(s) {', '.join(unknown)}", hint=f"known fields: {', '.join(sorted(known))}"
            )
        missing = [name for name in ("resize", "crop") if name not in data]
        if missing:
            raise InferKitError(f"{where}: missing field(s) {', '.join(missing)}")
        try:
            return cls(**data)
        except InferKitError as exc:
            raise InferKitError(f"{where}: {exc.message.removeprefix('preprocess spec: ')}", hint=exc.hint) from None
        except (TypeError, ValueError) as exc:
            raise InferKitError(f"{where}: {exc}") from None

    @classmethod
    def from_json(cls, text: str, *, where: str = "preprocess spec") -> PreprocessSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InferKitError(f"{where}: not valid JSON ({exc.msg})") from None
        return cls.from_dict(data, where=where)

    def with_overrides(self, **overrides: Any) -> PreprocessSpec:
        """A copy with the non-None overrides applied (and validated)."""
        changes = {key: value for key, value in overrides.items() if value is not None}
        return replace(self, **changes) if changes else self

    # ---- comparison -----------------------------------------------------------------
    def differences(self, other: PreprocessSpec, *, layout: str | None = None, rel_tol: float = 1e-6) -> list[str]:
        """Human-readable list of fields that differ (floats compared with a tolerance).

        With ``layout="aipp"`` only what changes the uint8 source bytes counts: the geometry and
        its side, the resize; the crop (unless written), normalisation and channel order happen
        on the device.
        """
        out = []
        if layout == "aipp":
            names: Any = list(AIPP_SOURCE_FIELDS)
            if self.geometry != other.geometry:
                out.append(f"aipp geometry {self.geometry} {self.aipp_side} vs {other.geometry} {other.aipp_side}")
            elif self.geometry == "crop" and self.crop != other.crop:
                out.append(f"crop {self.crop} vs {other.crop} (the aipp layout writes the crop itself)")
        else:
            names = [f.name for f in fields(self) if f.name != "aipp_geometry"]
        for name in names:
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, tuple):
                same = all(math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-9) for a, b in zip(mine, theirs, strict=True))
            else:
                same = mine == theirs
            if not same:
                out.append(f"{name} {_fmt(mine)} vs {_fmt(theirs)}")
        return out

    def describe(self) -> str:
        return (
            f"resize {self.resize} -> crop {self.crop}, {self.interpolation}, {self.channel_order}, "
            f"mean {_fmt(self.mean)}, std {_fmt(self.std)}"
        )


def cover_size(width: int, height: int, target_w: int, target_h: int, long_side: str = "floor") -> tuple[int, int]:
    """The size an image is resized to so that it covers ``target_w x target_h`` (then centre-cropped to it).

    The side that reaches its target first gets it exactly; the other is scaled in proportion and
    truncated (``long_side="floor"``, the ModelZoo's ``int()``) or rounded. An image that already
    covers the target with one side exact is left alone.
    """
    if (width, height) == (target_w, target_h) or max(target_h / height, target_w / width) == 1.0:
        return width, height
    rounding = int if long_side == "floor" else (lambda x: int(round(x)))
    if height * target_w <= width * target_h:  # the height reaches its target first
        return rounding(target_h * width / height), target_h
    return target_w, rounding(target_w * height / width)


def _fmt(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(f"{v:g}" for v in value) + ")"
    return str(value)


def _triple(name: str, value: Any) -> tuple[float, float, float]:
    try:
        items = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise InferKitError(f"preprocess spec: {name} must be three numbers, got {value!r}") from None
    if len(items) == 1:
        items = items * 3
    if len(items) != 3 or not all(math.isfinite(v) for v in items):
        raise InferKitError(f"preprocess spec: {name} must be three finite numbers, got {value!r}")
    return items  # type: ignore[return-value]


def _check_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InferKitError(f"preprocess spec: {name} must be a positive integer, got {value!r}")


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise InferKitError(f"unknown input layout {layout!r}", hint="use aipp or float")
