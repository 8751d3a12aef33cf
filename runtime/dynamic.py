"""Run-side dynamic shapes, as ais_bench's ``--dymBatch/--dymHW/--dymDims/--dymShape`` and auto modes do them.

The model's compiled profile (``ModelDescription.dynamic``, written by ``atc``) says which
shapes it takes; a request must name one of them, as the device demands:

* ``--dymBatch N``: one of the batch gears; inputs with a dynamic N take N samples;
* ``--dymHW H,W``: one of the image-size gears (height first);
* ``--dymDims "a:1,3,224,224;b:1,5"``: the listed dims, concatenated, are one gear's dims;
* ``--dymShape "a:...;b:..."``: every input named, each shape inside the compiled range;
  ``--outputSize`` gives the output buffers' bytes;
* ``--auto_set_dymshape_mode`` / ``--auto_set_dymdims_mode``: one ``.npy`` file per inference,
  its own shape (a dims gear in the second mode);
* no request: a dynamic image size runs at its largest gear; a dynamic batch, dims or range
  refuses (``dynamic batch om model detected, but dymbatch, dymdims or dymshape not set!``).

A request that misses the profile is refused with ais_bench's own wording. ais_bench takes the
first of dymBatch, dymHW, dymDims, dymShape that is set; so does this.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infer_kit.artifacts import ModelDescription
from infer_kit.console import log
from infer_kit.dynamic_shapes import DynamicProfile
from infer_kit.errors import InferKitError
from infer_kit.fsutil import read_text

_DYM_CHARS = re.compile(r"^[_A-Za-z0-9,;:/.\-]*$")  # ais_bench's check_dym_string whitelist
_DYM_ITEM = re.compile(r"^[_A-Za-z0-9/.\-]+:[1-9]\d{0,4}(,[1-9]\d{0,4}){0,6}$")
_RANGE_DIM = re.compile(r"^([1-9]\d{0,4})(~[1-9]\d{0,4}){0,2}$|^[1-9]\d{0,4}(-[1-9]\d{0,4})+$")
MAX_OUTPUT_SIZE = 16 * 1024 ** 3
MAX_RANGE_SHAPES = 256


@dataclass(frozen=True)
class DymRequest:
    """The run's dynamic-shape flags, as ais_bench takes them (``batch`` 0 = not set)."""

    batch: int = 0
    hw: str | None = None
    dims: str | None = None
    shape: str | None = None
    output_size: str | None = None
    auto_shape: bool = False
    auto_dims: bool = False

    @property
    def auto(self) -> str | None:
        return "shape" if self.auto_shape else "dims" if self.auto_dims else None

    @property
    def given(self) -> bool:
        return self.active() is not None or self.auto is not None

    def active(self) -> str | None:
        """The one flag ais_bench acts on: dymBatch (when not 0), then dymHW, dymDims, dymShape (when given at all:
        an empty ``--dymHW ""`` is refused as malformed, as ais_bench refuses it, not taken for no flag)."""
        if self.batch:
            return "batch"
        for name, value in (("hw", self.hw), ("dims", self.dims), ("shape", self.shape)):
            if value is not None:
                return name
        return None


@dataclass(frozen=True)
class RunShapes:
    """What a request resolves to for one run."""

    input_shapes: tuple[tuple[int, ...], ...] | None  # every input's shape; None: the runner's own
    throughput_batch: int | None  # ais_bench's derived batch (None: dim 0 of input 0)
    per_file: str | None = None  # "shape" | "dims"
    output_sizes: tuple[int, ...] | None = None
    note: str | None = None  # what was chosen, for the summary


def parse_dym_string(text: str, flag: str) -> list[tuple[str, tuple[int, ...]]]:
    """``"a:1,3,224,224;b:1,5"`` -> ``[("a", (1, 3, 224, 224)), ("b", (1, 5))]`` with ais_bench's checks."""
    if not _DYM_CHARS.match(text):
        raise InferKitError(f'{flag}: dym string "{text}" is not a legal string')
    items = [item for item in text.split(";") if item]
    if not items or len(items) > 1024:
        raise InferKitError(f"{flag}: dymshape range string's format is illegal! ({text})",
                            hint='e.g. "actual_input_1:1,3,224,224"')
    out = []
    for item in items:
        if not _DYM_ITEM.match(item):
            raise InferKitError(f"{flag}: dymshape range string's format is illegal! ({item})",
                                hint="NAME:d,d,... with 1-7 positive dims of up to 5 digits")
        name, _, dims = item.rpartition(":")
        out.append((name, tuple(int(d) for d in dims.split(","))))
    return out


def parse_hw(text: str) -> tuple[int, int]:
    if not _DYM_CHARS.match(text):
        raise InferKitError(f'--dymHW: dym string "{text}" is not a legal string')
    parts = text.split(",")
    if len(parts) != 2 or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise InferKitError('--dymHW: int count not match, legal format of dymHW string is "int,int"',
                            hint="height first: --dymHW 224,224")
    return int(parts[0]), int(parts[1])


def parse_output_size(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    if not re.fullmatch(r"[0-9,]*", text) or len(text) > 50000:
        raise InferKitError(f"--outputSize {text!r}: number list is contain illegal char!",
                            hint="bytes per output, comma-separated")
    values = tuple(int(v) for v in text.split(",") if v)
    if not values or len(values) > 256:
        raise InferKitError(f"--outputSize {text!r}: give 1 to 256 sizes")
    for i, value in enumerate(values):
        if value == 0:
            raise InferKitError(f"--outputSize: out i:{i} size is zero")
        if value > MAX_OUTPUT_SIZE:
            raise InferKitError(f"--outputSize: {value} bytes for output {i} is over 16 GiB")
    return values


def resolve_shapes(description: ModelDescription, request: DymRequest, batchsize: int | None) -> RunShapes:
    """Check ``request`` against the model's compiled profile; the shapes to run with."""
    profile = description.dynamic
    inputs = description.inputs
    sizes = parse_output_size(request.output_size)
    active = request.active()
    plain = description.kind in ("onnx", "torch") and profile is None
    if request.auto:
        return _auto(description, profile, request.auto, sizes)
    if active is None:
        return _no_request(description, profile, sizes)
    if plain and any(d is None for t in inputs for d in t.shape):  # symbolic axes: any size the graph takes
        return _plain_onnx(description, request, active, sizes)
    if active == "batch":
        if profile is None or profile.kind != "batch":
            raise InferKitError("the dynamic_batch_size parameter is not specified for model conversion",
                                hint=f"{description.path.name} was not compiled with --dynamic-batch: leave out "
                                     "--dymBatch")
        if (request.batch,) not in profile.gears:
            raise InferKitError(f"the dymBatch parameter is not correct: model has dynamic batch size:"
                                f"{{{profile.gear_text()}}}, please set correct dynamic batch size",
                                hint="use one of the gears it was compiled with")
        shapes = profile.gear_shapes((request.batch,))
        return RunShapes(_ordered(profile, shapes), request.batch, None, sizes, f"dymBatch {request.batch}")
    if active == "hw":
        h, w = parse_hw(request.hw or "")
        if profile is None or profile.kind != "image_size":
            raise InferKitError("the dynamic_image_size parameter is not specified for model conversion",
                                hint=f"{description.path.name} was not compiled with --dynamic-image-size")
        if (h, w) not in profile.gears:
            raise InferKitError(f"the dymHW parameter is not correct: model has dynamic image size "
                                f"{profile.gear_text()} (H,W)", hint="use one of the compiled gears, height first")
        shapes = profile.gear_shapes((h, w))
        return RunShapes(_ordered(profile, shapes), None, None, sizes, f"dymHW {h},{w}")
    if active == "dims":
        return _dims(description, profile, request.dims or "", sizes)
    return _shape(description, profile, request.shape or "", sizes)


def _ordered(profile: DynamicProfile, shapes: dict[str, tuple[int, ...]]) -> tuple[tuple[int, ...], ...]:
    return tuple(shapes[name] for name in profile.names)


def _no_request(description: ModelDescription, profile: DynamicProfile | None,
                sizes: tuple[int, ...] | None) -> RunShapes:
    if profile is None:
        return RunShapes(None, None, None, sizes)
    if profile.kind == "image_size":  # the device runs the largest gear when none is set
        gear = profile.max_gear
        assert gear is not None
        shapes = profile.gear_shapes(gear)
        return RunShapes(_ordered(profile, shapes), None, None, sizes,
                         f"largest gear {','.join(map(str, gear))} (no --dymHW)")
    first = profile.input_shapes[0][1]
    if profile.kind == "dims" and -1 not in first[:1]:
        gear = profile.max_gear
        assert gear is not None
        return RunShapes(_ordered(profile, profile.gear_shapes(gear)), None, None, sizes,
                         f"largest gear {','.join(map(str, gear))} (no --dymDims)")
    hint = {"batch": f"add --dymBatch N with N one of {profile.gear_text()}",
            "dims": "add --dymDims NAME:dims (one of the compiled gears)",
            "shape_range": "add --dymShape NAME:dims (or --dymShape_range, --auto_set_dymshape_mode 1)"}
    raise InferKitError("dynamic batch om model detected, but dymbatch, dymdims or dymshape not set!",
                        hint=hint.get(profile.kind))


def _dims(description: ModelDescription, profile: DynamicProfile | None, text: str,
          sizes: tuple[int, ...] | None) -> RunShapes:
    given = parse_dym_string(text, "--dymDims")
    if profile is None or profile.kind != "dims":
        raise InferKitError("the dynamic_dims parameter is not specified for model conversion",
                            hint=f"{description.path.name} was not compiled with --dynamic-dims")
    names = set(profile.names)
    for name, _ in given:
        if name not in names:
            log.warning(f"[WARN] find no in names:{name}")
    concat = [d for name, dims in given if name in names for d in dims]
    gears = {g: [d for name in profile.names for d in profile.gear_shapes(g)[name]] for g in profile.gears}
    match = next((g for g, full in gears.items() if full == concat), None)
    if match is None:
        listed = " ".join(f"dims[{i}]:" + "".join(f"[{d}]" for d in full) for i, full in enumerate(gears.values()))
        raise InferKitError(f"the dynamic_dims parameter is not correct: model has {len(gears)} gear of dims "
                            f"{listed}; check dynamic dims failed, please set correct dymDims paramenter",
                            hint="give every dynamic input's dims of one compiled gear")
    shapes = profile.gear_shapes(match)
    batch = _named_batch(given, profile.names[0])
    return RunShapes(_ordered(profile, shapes), batch, None, sizes, f"dymDims {text}")


def _shape(description: ModelDescription, profile: DynamicProfile | None, text: str,
           sizes: tuple[int, ...] | None) -> RunShapes:
    given = parse_dym_string(text, "--dymShape")
    if profile is None or profile.kind != "shape_range":
        raise InferKitError("--dymShape sets the shape of a shape-range model, and "
                            f"{description.path.name} is not one",
                            hint="compile with --input-shape \"NAME:1~8,3,224,224\", or use its gear flag")
    if len(given) != len(profile.names):
        raise InferKitError(f"om model has {len(profile.names)} input, but dymShape parametet give {len(given)}",
                            hint=f"name every input: {', '.join(profile.names)}")
    table = dict(given)
    if set(table) != set(profile.names):
        raise InferKitError("the dymShape parameter set error, please check input name",
                            hint=f"the model's inputs: {', '.join(profile.names)}")
    for name in profile.names:
        if not profile.in_range(name, table[name]):
            limits = dict(profile.ranges)[name]
            shown = ",".join(str(lo) if lo == hi else f"{lo}~{'' if hi is None else hi}" for lo, hi in limits)
            raise InferKitError(f"--dymShape {name}:{','.join(map(str, table[name]))} is outside the compiled "
                                f"range {name}:[{shown}]", hint="the device refuses shapes outside the range")
    return RunShapes(tuple(table[name] for name in profile.names), _named_batch(given, profile.names[0]), None, sizes,
                     f"dymShape {text}")


def _plain_onnx(description: ModelDescription, request: DymRequest, active: str,
                sizes: tuple[int, ...] | None) -> RunShapes:
    """An ONNX model with symbolic axes (no ATC profile): the request fixes them, any size the graph takes."""
    inputs = description.inputs
    if active == "batch":
        if all(t.shape and t.shape[0] is not None for t in inputs):
            raise InferKitError("the dynamic_batch_size parameter is not specified for model conversion",
                                hint=f"{description.path.name} has a fixed batch: leave out --dymBatch")
        shapes = [tuple(request.batch if d is None and axis == 0 else d for axis, d in enumerate(t.shape))
                  for t in inputs]
        batch: int | None = request.batch
    elif active == "hw":
        if not any(d is None for t in inputs for d in t.shape[1:]):
            raise InferKitError("the dynamic_image_size parameter is not specified for model conversion",
                                hint=f"{description.path.name} has a fixed image size: leave out --dymHW")
        h, w = parse_hw(request.hw or "")
        shapes = [_fill_hw(t.shape, h, w) for t in inputs]
        batch = None
    else:
        given = dict(parse_dym_string(request.dims or request.shape or "",
                                      "--dymDims" if active == "dims" else "--dymShape"))
        missing = [t.name for t in inputs if t.name not in given and None in t.shape]
        if missing:
            raise InferKitError(f"input {missing[0]} has dynamic axes and no shape in --dym{active.title()}")
        shapes = [given.get(t.name, t.shape) for t in inputs]  # type: ignore[misc]
        batch = shapes[0][0] if shapes and shapes[0] else None
    if any(d is None for s in shapes for d in s):
        raise InferKitError(f"{description.path.name} still has dynamic axes with this request",
                            hint="give the full shape with --dymShape NAME:dims")
    return RunShapes(tuple(tuple(int(d) for d in s) for s in shapes), batch, None, sizes)  # type: ignore[arg-type]


def _fill_hw(shape: Sequence[int | None], h: int, w: int) -> tuple[int | None, ...]:
    values = [h, w]
    out = []
    for axis, d in enumerate(shape):
        out.append(values.pop(0) if d is None and axis > 0 and values else d)
    return tuple(out)


def _auto(description: ModelDescription, profile: DynamicProfile | None, mode: str,
          sizes: tuple[int, ...] | None) -> RunShapes:
    want = "shape_range" if mode == "shape" else "dims"
    fits = profile.kind == want if profile is not None else description.kind in ("onnx", "torch", "om")
    if not fits:
        flag = "--auto_set_dymshape_mode" if mode == "shape" else "--auto_set_dymdims_mode"
        what = "a shape range" if mode == "shape" else "--dynamic-dims gears"
        raise InferKitError(f"{flag} sets each file's shape on a model compiled with {what}, and "
                            f"{description.path.name} was not", hint=f"leave out {flag}")
    return RunShapes(None, None, mode, sizes, f"auto_set_dym{mode}_mode")


def _named_batch(given: list[tuple[str, tuple[int, ...]]], first_input: str) -> int | None:
    """ais_bench's batch for the throughput: dim 0 of the entry naming the model's input 0."""
    batch = None
    for name, dims in given:
        if name == first_input and dims:
            batch = dims[0]
    return batch


def check_file_shapes(profile: DynamicProfile | None, names: Sequence[str], shapes: Sequence[tuple[int, ...]],
                      mode: str, where: str) -> None:
    """One inference's own shapes in an auto mode: a compiled gear (dims) or inside the range (shape)."""
    if profile is None:
        return
    table = dict(zip(names, shapes, strict=False))
    if mode == "dims":
        full = [d for name in profile.names for d in table.get(name, ())]
        if not any(full == [d for n in profile.names for d in profile.gear_shapes(g)[n]] for g in profile.gears):
            text = ";".join(f"{n}:{','.join(map(str, table.get(n, ())))}" for n in profile.names)
            raise InferKitError(f"the dynamic_dims parameter is not correct: {where} has shape {text}, which is not "
                                f"one of the model's {len(profile.gears)} gears",
                                hint="auto_set_dymdims_mode needs every file to have a compiled gear's shape")
    else:
        for name in profile.names:
            if name in table and not profile.in_range(name, table[name]):
                raise InferKitError(f"{where}: shape {','.join(map(str, table[name]))} of {name} is outside the "
                                    "compiled range")


def check_output_sizes(outputs: Sequence[object], sizes: tuple[int, ...] | None) -> None:
    """``--outputSize`` buffers must hold what the model wrote (the device fails otherwise)."""
    if not sizes:
        return
    for i, (array, size) in enumerate(zip(outputs, sizes, strict=False)):
        nbytes = int(getattr(array, "nbytes", 0))
        if nbytes > size:
            raise InferKitError(f"output {i} holds {nbytes} bytes but --outputSize gives {size}",
                                hint="raise that output's --outputSize")


# ---- --dymShape_range -------------------------------------------------------------------------------------

def expand_shape_range(value: str) -> list[str]:
    """ais_bench's ``--dymShape_range``: a range string, or a ``.info`` file of them, -> every ``--dymShape``."""
    lines = []
    path = Path(value)
    if os.path.isfile(value):
        if path.suffix != ".info":
            raise InferKitError(f"--dymShape_range {value}: file contain dymShape range is not a legal path",
                                hint="a range file ends in .info")
        text = read_text(path, what="--dymShape_range file")
        lines = [line for line in text.splitlines()[:MAX_RANGE_SHAPES] if line.strip()]
    else:
        lines = [value]
    shapes: list[str] = []
    for line in lines:
        shapes.extend(_expand_one(line))
    if len(shapes) > MAX_RANGE_SHAPES:
        raise InferKitError(f"dymshape range run do not support more than {MAX_RANGE_SHAPES} dymshape type!",
                            hint="narrow the ranges")
    return shapes


def _expand_one(text: str) -> list[str]:
    per_input = []
    for item in [i for i in text.split(";") if i]:
        name, _, body = item.rpartition(":")
        if not name or not body:
            raise InferKitError(f"--dymShape_range: dym range string is not a legal format string ({item})",
                                hint='e.g. "x:1~4,3,224,224"')
        dims = body.split(",")
        if len(dims) > 7:
            raise InferKitError("--dymShape_range: dym range string is not a legal format string (more than 7 dims)")
        choices = []
        for dim in dims:
            if not _RANGE_DIM.match(dim):
                raise InferKitError(f"--dymShape_range: dym range string is not a legal format string ({dim})",
                                    hint="each dim is N, N~M, N~M~STEP or A-B-C")
            if "~" in dim:
                parts = [int(p) for p in dim.split("~")]
                step = parts[2] if len(parts) == 3 else 1
                end = parts[1] if len(parts) > 1 else parts[0]
                values = [str(v) for v in range(parts[0], end + 1, step)]
            elif "-" in dim:
                values = dim.split("-")
            else:
                values = [dim]
            if not values:
                raise InferKitError("sub range in dymshape range should not be empty!")
            choices.append(values)
        if math.prod(len(c) for c in choices) > MAX_RANGE_SHAPES:
            raise InferKitError(f"dymshape range run do not support more than {MAX_RANGE_SHAPES} dymshape type!")
        per_input.append([f"{name}:{','.join(combo)}" for combo in itertools.product(*choices)])
    if not per_input:
        raise InferKitError("can not get a legal dymshape range from dymshape range string!")
    return [";".join(combo) for combo in itertools.product(*per_input)]
