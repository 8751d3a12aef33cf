"""ATC's dynamic-shape options: parsed, checked with ATC's error codes, and turned into argv and a profile.

One compiled model can take several input shapes (see :mod:`infer_kit.dynamic_shapes`):

* ``--dynamic_batch_size=1,2,4,8`` with ``--input_shape=x:-1,3,224,224`` (only N is -1);
* ``--dynamic_image_size="224,224;256,256"`` (height first) with ``x:8,3,-1,-1`` (only H and W);
* ``--dynamic_dims="1,224,224;8,256,256"`` with ``--input_format=ND`` and one value per -1;
* a shape range, ``--input_shape=x:1~8,3,224,224`` (``-1`` = any size), or the deprecated
  ``--input_shape_range=x:[1~8,3,224,224]``.

The gear options are mutually exclusive (E10009), need 2 to 100 distinct positive gears
(E10035, E10036, E10039, E10038), and their -1 axes must be the ones the option varies (E10018,
E10019, E10031, E10040); with AIPP, a dynamic image size needs crop and padding off and source
sizes 0 (E10052), and dynamic dims refuse AIPP (E10001) (:func:`check_aipp_with_dynamic`). Each
check names ATC's code and says what ATC would say, before anything is built.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from infer_kit.aipp import AippOp
from infer_kit.dynamic_shapes import DynamicProfile
from infer_kit.errors import InferKitError

MIN_GEARS = 2
MAX_GEARS = 100  # Atlas 310P/910/A2/A3/310B (ATC's documented limit; 256 on the 950)
_BATCH_CHARS = re.compile(r"^[0-9,]*$")
_IMAGE_CHARS = re.compile(r"^[0-9, ;]*$")


@dataclass(frozen=True)
class DynamicRequest:
    """The dynamic-shape options as ATC spells their values (None: not given)."""

    dynamic_batch_size: str | None = None
    dynamic_image_size: str | None = None
    dynamic_dims: str | None = None
    input_shape: str | None = None
    input_shape_range: str | None = None

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.dynamic_batch_size, self.dynamic_image_size, self.dynamic_dims,
                                           self.input_shape, self.input_shape_range))


@dataclass(frozen=True)
class DynamicPlan:
    """What a request compiles to: the source input's shape (-1 = dynamic), gears or ranges, ATC argv."""

    kind: str | None  # None: --input_shape fixed every axis
    name: str
    source_shape: tuple[int, ...]
    gears: tuple[tuple[int, ...], ...] = ()
    ranges: tuple[tuple[int, int | None], ...] = ()
    argv: tuple[str, ...] = ()
    input_format: str = "NCHW"
    suffix: str = ""
    option: str = ""

    @property
    def batch(self) -> int | None:
        """N when it is fixed, None when it varies."""
        n = self.source_shape[0]
        return None if n == -1 else n

    @property
    def input_hw(self) -> tuple[int, int] | None:
        h, w = self.source_shape[2], self.source_shape[3]
        return (h, w) if h > 0 and w > 0 else None

    def gear_source_shapes(self) -> list[tuple[int, ...]]:
        """The source input's shape at each gear (a range: its lowest and highest bounded shapes)."""
        profile = DynamicProfile(self.kind or "dims", ((self.name, self.source_shape),), self.gears)
        if self.kind in ("batch", "image_size", "dims"):
            return [profile.gear_shapes(g)[self.name] for g in self.gears]
        if self.kind == "shape_range":
            low = tuple(lo if d == -1 else d for d, (lo, _) in zip(self.source_shape, self.ranges, strict=True))
            high = tuple(d if d != -1 else (hi if hi is not None else max(lo, 1))
                         for d, (lo, hi) in zip(self.source_shape, self.ranges, strict=True))
            return sorted({tuple(max(v, 1) for v in low), high})
        return [self.source_shape]

    def profile(self, artifact_input: str, artifact_shape: Sequence[int]) -> DynamicProfile | None:
        """The manifest's profile, in the artifact input's terms (``artifact_shape``: -1 on dynamic axes)."""
        if self.kind is None:
            return None
        shape = tuple(int(d) for d in artifact_shape)
        ranges: tuple = ()
        if self.kind == "shape_range":
            ranges = ((artifact_input, tuple((d, d) if d != -1 else r for d, r in zip(self.source_shape,
                                                                                      self.ranges, strict=True))),)
        return DynamicProfile(self.kind, ((artifact_input, shape),), self.gears, ranges)


@dataclass
class _Shape:
    name: str
    dims: list[int] = field(default_factory=list)
    ranges: list[tuple[int, int | None]] = field(default_factory=list)
    has_range: bool = False


def plan_dynamic(request: DynamicRequest, *, input_name: str, model_shape: Sequence[int | None],
                 default_hw: tuple[int, int], batch_sizes: Sequence[int]) -> DynamicPlan | None:
    """Check ``request`` as ATC does and plan the artifact; None when nothing dynamic or fixed was asked.

    ``model_shape`` is the ONNX input's NCHW shape (None where the ONNX graph leaves it open),
    ``default_hw`` the H, W to use where it does (the spec's crop); ``batch_sizes`` the ``--batch``
    values given alongside (allowed with a dynamic image size, and with a fully fixed
    ``--input_shape`` only if they agree).
    """
    if not request.given:
        return None
    gear_options = [name for name, value in (("--dynamic_batch_size", request.dynamic_batch_size),
                                             ("--dynamic_image_size", request.dynamic_image_size),
                                             ("--dynamic_dims", request.dynamic_dims)) if value is not None]
    if len(gear_options) + (request.input_shape_range is not None) > 1:
        raise _atc("E10009", "--dynamic_batch_size, --dynamic_image_size, --input_shape_range, and --dynamic_dims "
                   "are mutually exclusive.", hint="give one of them")
    if request.input_shape is not None and request.input_shape_range is not None:
        raise InferKitError("--input-shape and --input-shape-range both give the input's shape",
                            hint="give the range in one of them: --input-shape \"x:1~8,3,224,224\"")
    shape = _parse_input_shape(request, input_name, model_shape, default_hw)
    option = gear_options[0] if gear_options else ""
    if gear_options:
        if shape.has_range:
            raise _atc("E10040", "As the --dynamic_batch_size, --dynamic_image_size, or --dynamic_dims argument is "
                       "included, the corresponding nodes specified in --input_shape must have -1 axes and cannot "
                       "have '~'.", hint="write the varying axes as -1")
        if batch_sizes and option != "--dynamic_image_size":
            raise InferKitError(f"--batch cannot be combined with {option.replace('_', '-')}",
                                hint="the batch axis is part of the gears (or of --input-shape)")
    if option == "--dynamic_batch_size":
        return _batch_plan(request.dynamic_batch_size or "", shape)
    if option == "--dynamic_image_size":
        return _image_plan(request.dynamic_image_size or "", shape, batch_sizes, request)
    if option == "--dynamic_dims":
        if request.input_shape is None:
            raise _atc("E10004", "Value for --input_shape is empty.",
                       hint="--dynamic-dims needs --input-shape \"NAME:dims\" with -1 on the axes the gears set")
        return _dims_plan(request.dynamic_dims or "", shape)
    return _range_or_fixed_plan(shape, request, batch_sizes)


def check_aipp_with_dynamic(plan: DynamicPlan | None, aipp: AippOp | None, where: str) -> None:
    """ATC's rules for AIPP on a dynamic-shape model (static and dynamic AIPP alike unless said)."""
    if plan is None or plan.kind is None or aipp is None:
        return
    if plan.kind == "image_size" and aipp.mode == "static":
        if aipp.get("crop") or aipp.get("padding"):
            raise _atc("E10052", "AIPP configuration is invalid. Reason: When --dynamic_image_size is set, crop and "
                       f"padding cannot be set to 'true'. ({where})",
                       hint="AIPP takes each gear's whole image: preprocess writes the crop itself")
        if int(aipp.get("src_image_size_w")) or int(aipp.get("src_image_size_h")):
            raise _atc("E10052", "AIPP configuration is invalid. Reason: When --dynamic_image_size is set, "
                       f"src_image_size_w and src_image_size_h must be set to '0'. ({where})",
                       hint="AIPP then takes each gear's H x W")
    if plan.kind == "dims":
        raise _atc("E10001", f"Value {where} for parameter --insert_op_conf is invalid. Reason: The dynamic dims "
                   "function does not support AIPP.", hint="compile with --aipp none")
    if plan.kind == "shape_range":
        raise InferKitError(f"{where}: AIPP cannot be combined with a shape range here (ATC refuses static AIPP on a "
                            "single-input shape-range model, and ais_bench skips AIPP under --dymShape)",
                            hint="compile with --aipp none, or use --dynamic-batch / --dynamic-image-size gears")


def _atc(code: str, text: str, hint: str | None = None) -> InferKitError:
    return InferKitError(f"ATC would refuse this with {code}: {text}", hint=hint)


def _parse_input_shape(request: DynamicRequest, input_name: str, model_shape: Sequence[int | None],
                       default_hw: tuple[int, int]) -> _Shape:
    """The single input's shape from --input_shape / --input_shape_range, else from the model (N, H, W = -1)."""
    text = request.input_shape if request.input_shape is not None else request.input_shape_range
    if text is None:
        fallback = [-1, 3, *default_hw]
        dims = [d if d is not None else fallback[i] for i, d in enumerate(model_shape)]
        if request.dynamic_batch_size is not None:
            dims[0] = -1
        if request.dynamic_image_size is not None:
            dims[2] = dims[3] = -1
        return _Shape(input_name, dims, [(d, d) for d in dims])
    option = "--input_shape" if request.input_shape is not None else "--input_shape_range"
    entries = [e for e in text.strip().rstrip(";").split(";") if e.strip()]
    if len(entries) != 1:
        raise InferKitError(f"{option} {text!r} names {len(entries)} inputs; the model has one ({input_name})",
                            hint=f'e.g. {option.replace("_", "-")} "{input_name}:1,3,224,224"')
    name, _, body = entries[0].strip().rpartition(":")
    if not name:
        raise InferKitError(f"{option} {text!r} is not NAME:dims", hint=f'e.g. "{input_name}:1,3,224,224"')
    if name != input_name:
        raise InferKitError(f"{option} names input {name!r} but the model's input is {input_name!r}",
                            hint=f'e.g. "{input_name}:{body}"')
    if option == "--input_shape_range":
        if not (body.startswith("[") and body.endswith("]")):
            raise InferKitError(f"--input_shape_range {text!r}: the dims go in brackets",
                                hint=f'e.g. "{input_name}:[1~8,3,224,224]"')
        body = body[1:-1]
    shape = _Shape(name, has_range=option == "--input_shape_range")
    for token in body.split(","):
        token = token.strip()
        match = re.fullmatch(r"(\d+)~(\d+)", token)
        if match:
            low, high = int(match.group(1)), int(match.group(2))
            if high < low:
                raise InferKitError(f"{option}: range {token} ends below its start", hint="write LOW~HIGH")
            shape.dims.append(-1)
            shape.ranges.append((low, high))
            shape.has_range = True
        elif re.fullmatch(r"-1|\d+", token):
            value = int(token)
            shape.dims.append(value)
            shape.ranges.append((0, None) if value == -1 else (value, value))
        else:
            raise InferKitError(f"{option} {text!r}: {token!r} is not a dimension",
                                hint="dims are integers, -1 (dynamic) or LOW~HIGH ranges")
    if len(shape.dims) != len(model_shape):
        raise InferKitError(f"{option} gives {len(shape.dims)} dims but input {input_name} has {len(model_shape)}",
                            hint="give N,C,H,W")
    for axis, (want, have) in enumerate(zip(shape.dims, model_shape, strict=True)):
        if have is not None and want not in (-1, have) and axis > 0:
            raise InferKitError(f"{option} sets axis {axis} of {input_name} to {want} but the model has {have}",
                                hint="only the batch axis and axes the ONNX model leaves open can change")
    return shape


def _gears(text: str, option: str, width: int | None, split: str) -> tuple[tuple[int, ...], ...]:
    gears = []
    for part in [p for p in text.split(split) if p.strip()]:
        if width is not None and len(part.split(",")) != width:  # ATC checks each gear's width first
            if option == "--dynamic_image_size":
                raise _atc("E10020", f"Value {text} for parameter --dynamic_image_size is invalid.",
                           hint='each gear is "H,W"; gears are separated by ";"')
            raise _atc("E10003", f"Value {text} for parameter --dynamic_dims is invalid. Reason: Each setting needs "
                       "to be consistent with the number of -1 in the input shape.")
        values = []
        for token in part.split(","):
            token = token.strip()
            if not token.isdigit():
                if option == "--dynamic_dims":
                    raise _atc("E10001", f"Value {token} for parameter --dynamic_dims is invalid. Reason: Dynamic dims "
                               "must be a positive integer.")
                raise _atc("E10003", f"Value {text} for parameter {option} is invalid.")
            if int(token) <= 0:
                raise _atc("E10038", f"Dimension size {token} is invalid. The value must be greater than 0.")
            values.append(int(token))
        gears.append(tuple(values))
    if len(gears) < MIN_GEARS:
        raise _atc("E10035", f"--dynamic_batch_size, --dynamic_image_size, or --dynamic_dims has {len(gears)} "
                   f"profiles, which is less than the minimum {MIN_GEARS}.", hint="give at least two gears")
    if len(gears) > MAX_GEARS:
        raise _atc("E10036", f"--dynamic_batch_size, --dynamic_image_size, or --dynamic_dims has {len(gears)} "
                   f"profiles, which is greater than the maximum {MAX_GEARS}.")
    sizes = {len(g) for g in gears}
    if len(sizes) > 1:
        a, b = sorted(sizes)[:2]
        raise _atc("E10037", "The profiles configured in --dynamic_batch_size, --dynamic_image_size, or "
                   f"--dynamic_dims have inconsistent dimension counts. A profile has {a} dimensions while another "
                   f"has {b} dimensions.")
    if len(set(gears)) != len(gears):
        raise _atc("E10039", "The --dynamic_batch_size, --dynamic_image_size, or --dynamic_dims argument has duplicate "
                   "profiles.")
    return tuple(gears)


def _dims_text(dims: Sequence[int]) -> str:
    return ",".join(str(d) for d in dims)


def _batch_plan(text: str, shape: _Shape) -> DynamicPlan:
    if not _BATCH_CHARS.match(text):
        raise _atc("E10003", f'Value {text} for parameter --dynamic_batch_size is invalid. Reason: It can only contain '
                   'digits and ",".')
    if shape.dims[0] != -1:
        raise _atc("E10031", "--dynamic_batch_size is included, but none of the nodes specified in --input_shape has a "
                   "batch size equaling -1.", hint="write N as -1")
    if -1 in shape.dims[1:]:
        raise _atc("E10018", f"Value {_dims_text(shape.dims)} for shape {shape.name} is invalid. When "
                   "--dynamic_batch_size is included, only batch size N can be -1 in --input_shape.")
    gears = _gears(text.rstrip(","), "--dynamic_batch_size", 1, ",")
    gears = tuple((g[0],) for g in gears)
    value = ",".join(str(g[0]) for g in gears)
    return DynamicPlan("batch", shape.name, tuple(shape.dims), gears, argv=(
        f"--input_shape={shape.name}:{_dims_text(shape.dims)}", f"--dynamic_batch_size={value}"),
        suffix="_dynbs", option="--dynamic_batch_size")


def _image_plan(text: str, shape: _Shape, batch_sizes: Sequence[int], request: DynamicRequest) -> DynamicPlan:
    if not _IMAGE_CHARS.match(text):
        raise _atc("E10003", f'Value {text} for parameter --dynamic_image_size is invalid. Reason: It can only contain '
                   'digits, ",", " " and ";".')
    dims = list(shape.dims)
    if request.input_shape is None:
        if len(batch_sizes) != 1:
            raise InferKitError("--dynamic-image-size compiles one batch size: give one --batch",
                                hint="e.g. --batch 8, or --input-shape \"NAME:8,3,-1,-1\"")
        dims[0] = batch_sizes[0]
    if len(dims) != 4 or dims[2] != -1 or dims[3] != -1 or -1 in (dims[0], dims[1]):
        raise _atc("E10019", "When --dynamic_image_size is included, only the height and width axes can be -1 in "
                   "--input_shape.", hint="write the input shape as N,C,-1,-1 (NCHW)")
    gears = _gears(text.strip().rstrip(";"), "--dynamic_image_size", 2, ";")
    value = ";".join(f"{h},{w}" for h, w in gears)
    return DynamicPlan("image_size", shape.name, tuple(dims), gears, argv=(
        f"--input_shape={shape.name}:{_dims_text(dims)}", f"--dynamic_image_size={value}"),
        suffix=f"_bs{dims[0]}_dynhw", option="--dynamic_image_size")


def _dims_plan(text: str, shape: _Shape) -> DynamicPlan:
    count = shape.dims.count(-1)
    if count == 0:
        raise _atc("E10001", "Value 0 for parameter --input_shape's dynamic dim num is invalid. Reason: At least one "
                   "dim should be -1 when dynamic_dims is set.")
    gears = _gears(text.strip().rstrip(";"), "--dynamic_dims", count, ";")
    value = ";".join(",".join(str(v) for v in g) for g in gears)
    return DynamicPlan("dims", shape.name, tuple(shape.dims), gears, argv=(
        f"--input_shape={shape.name}:{_dims_text(shape.dims)}", f"--dynamic_dims={value}"),
        input_format="ND", suffix="_dyndims", option="--dynamic_dims")


def _range_or_fixed_plan(shape: _Shape, request: DynamicRequest, batch_sizes: Sequence[int]) -> DynamicPlan:
    if -1 not in shape.dims:  # a fixed --input_shape: the batch (and H, W) it names
        if batch_sizes and list(batch_sizes) != [shape.dims[0]]:
            raise InferKitError(f"--batch {','.join(map(str, batch_sizes))} disagrees with --input-shape N "
                                f"{shape.dims[0]}", hint="give one of them")
        return DynamicPlan(None, shape.name, tuple(shape.dims),
                           argv=(f"--input_shape={shape.name}:{_dims_text(shape.dims)}",))
    if batch_sizes:
        raise InferKitError("--batch cannot be combined with a shape range", hint="put N's range in --input-shape")
    if request.input_shape_range is not None:
        body = ",".join(f"{lo}~{hi}" if d == -1 and hi is not None and (lo, hi) != (0, None) else
                        ("-1" if d == -1 else str(d)) for d, (lo, hi) in zip(shape.dims, shape.ranges, strict=True))
        token = f"--input_shape_range={shape.name}:[{body}]"
    else:
        body = ",".join(f"{lo}~{hi}" if d == -1 and hi is not None else ("-1" if d == -1 else str(d))
                        for d, (lo, hi) in zip(shape.dims, shape.ranges, strict=True))
        token = f"--input_shape={shape.name}:{body}"
    return DynamicPlan("shape_range", shape.name, tuple(shape.dims), ranges=tuple(shape.ranges), argv=(token,),
                       input_format="ND" if shape.dims[1] == -1 else "NCHW", suffix="_dynshape",
                       option="--input_shape")
