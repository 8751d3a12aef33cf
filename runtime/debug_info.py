"""``--debug``: the model description ais_bench prints, for the model as run.

ais_bench's C++ session prints, at load (``PrintDesc``): ``[DEBUG] start print model description``,
``NumInputs``/``NumOutputs``, per input and output its size, its dims (a line of numbers, -1 on
dynamic axes, each followed by a space), name, ACL format and data type enums, the dynamic batch
and HW gears, ``end print model description``; then Python logs ``session info:<Model>`` with the
device and one line per tensor: ``  #0    NAME  (1, 3, 224, 224)  float32  SIZE  REALSIZE``. The
same lines are printed here from the model's description and the runner's tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from infer_kit.artifacts import ModelDescription, TensorDesc

# aclFormat and aclDataType values (acl_base.h)
ACL_FORMATS = {"NCHW": 0, "NHWC": 1, "ND": 2}
ACL_DTYPES = {"float32": 0, "float16": 1, "int8": 2, "int32": 3, "uint8": 4, "int16": 6, "uint16": 7, "uint32": 8,
              "int64": 9, "uint64": 10, "float64": 11, "bool": 12}
# aclruntime's dtype names in the session description
SESSION_DTYPES = {"float64": "double64"}


def _itemsize(dtype: str) -> int:
    import numpy as np

    try:
        return int(np.dtype(dtype).itemsize)
    except TypeError:
        return 0


def _dims(desc: TensorDesc) -> list[int]:
    return [-1 if d is None else int(d) for d in desc.shape]


def _max_size(desc: TensorDesc, description: ModelDescription) -> int:
    """``aclmdlGetInputSizeByIndex``: the bytes of the largest shape the model takes."""
    profile = description.dynamic
    if desc.nbytes is not None:
        return desc.nbytes
    if profile is not None and desc.name in profile.names:
        if profile.gears:
            return max(math.prod(profile.gear_shapes(g)[desc.name]) for g in profile.gears) * _itemsize(desc.dtype)
        limits = dict(profile.ranges).get(desc.name, ())
        if limits and all(hi is not None for _, hi in limits):
            return math.prod(int(hi) for _, hi in limits) * _itemsize(desc.dtype)  # type: ignore[misc]
    return 0


def description_lines(description: ModelDescription, inputs: Sequence[TensorDesc], outputs: Sequence[TensorDesc],
                      device: int) -> list[str]:
    """The ``[DEBUG]`` lines ais_bench prints for this model (``inputs``/``outputs``: the runner's, as run)."""
    model_inputs = list(description.inputs) or list(inputs)
    model_outputs = list(description.outputs) or list(outputs)
    lines = ["[DEBUG] start print model description", f"[DEBUG] NumInputs: {len(model_inputs)}",
             f"[DEBUG] NumOutputs: {len(model_outputs)}"]
    for kind, tensors in (("input", model_inputs), ("output", model_outputs)):
        for i, desc in enumerate(tensors):
            lines += [f"[DEBUG] the size of {i} {kind}: {_max_size(desc, description)}",
                      f"[DEBUG] the dims of {i} {kind}:", "".join(f"{d} " for d in _dims(desc)),
                      f"[DEBUG] the name of {i} {kind}: {desc.name}",
                      f"[DEBUG] the Format of {i} {kind}: {ACL_FORMATS.get(desc.format, 2)}",
                      f"[DEBUG] the DataType of {i} {kind}: {ACL_DTYPES.get(desc.dtype, 0)}"]
    profile = description.dynamic
    if profile is not None and profile.kind == "batch":
        lines += ["[DEBUG] DynamicBatch:", "".join(f"{g[0]} " for g in profile.gears)]
    if profile is not None and profile.kind == "image_size":
        lines += ["[DEBUG] DynamicHW:", "".join(f"{h},{w} " for h, w in profile.gears)]
    lines.append("[DEBUG] end print model description")
    lines.append(f"[DEBUG] session info:<Model>\ndevice:\t{device}")
    for kind, tensors, model_side in (("input", inputs, model_inputs), ("output", outputs, model_outputs)):
        lines.append(f"{kind}:")
        for i, desc in enumerate(tensors):
            full = model_side[i] if i < len(model_side) else desc
            shape = "(" + ", ".join(str(d) for d in _dims(full)) + ")"
            real = desc.nbytes if desc.nbytes is not None else _max_size(full, description)
            dtype = SESSION_DTYPES.get(desc.dtype, desc.dtype)
            lines.append(f"  #{i}    {desc.name}  {shape}  {dtype}  {_max_size(full, description)}  {real}")
    return lines
