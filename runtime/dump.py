"""``--dump`` / ``--dump_npy`` on the emulation: every operator's tensors of every inference, in ais_bench's layout.

On the device ais_bench writes ``OUTPUT/acl.json`` (``{"dump": {"dump_list": [{"model_name": M}],
"dump_mode": "all", "dump_path": "OUTPUT/dump"}}``) and the runtime dumps, per inference (warm-up
included), one binary file per operator execution into
``OUTPUT/dump/<YYYYMMDDHHMMSS>/<device>/<model name>/<model id>/<iteration>/``; ``--dump_npy``
then converts them with msaccucmp into ``OUTPUT/dump/<timestamp>_npy/<same path>/`` as
``{op_type}.{op_name}.{task_id}.{stream_id}.{timestamp}.{input|output}.{index}.{shape}.npy``.

The emulated graph can expose every intermediate tensor, so the same folders are written with
each operator's inputs and outputs as ``.npy`` files of those names: into ``<timestamp>_npy/``
with ``--dump_npy`` (exactly where msaccucmp puts them), into ``<timestamp>/`` without it. The
CANN binary dump format itself is not imitated: its files would be fakes. Operator names are
the ONNX node names ('/' written as '_'), the task id is the node's position, the stream 0.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer_kit.console import log
from infer_kit.errors import InferKitError
from infer_kit.fsutil import write_bytes_atomic, write_text_atomic

if TYPE_CHECKING:
    import onnx

MODEL_ID = 1


@dataclass(frozen=True)
class DumpJob:
    """Where one worker dumps (picklable): the iteration folder's parent and the model graph to name tensors."""

    root: str  # OUTPUT/dump/<timestamp>[_npy]/<device>/<model name>/<model id>
    model: str  # the ONNX file whose nodes are named


def acl_json(output: str | os.PathLike[str], model_name: str) -> dict[str, Any]:
    """The acl.json ais_bench writes for ``--dump`` (``model_name``: the .om name without its extension)."""
    return {"dump": {"dump_list": [{"model_name": model_name}], "dump_mode": "all",
                     "dump_path": os.path.join(os.fspath(output), "dump")}}


def prepare_dump(output: str | os.PathLike[str], model_file: str | os.PathLike[str], device: int, *,
                 npy: bool, om_name: str) -> DumpJob:
    """Write ``OUTPUT/acl.json`` as ais_bench does and make the dump folder; the job for one device."""
    output = os.fspath(output)
    stamp = time.strftime("%Y%m%d%H%M%S")
    model_name = om_name.rsplit(".", 1)[0] if "." in om_name else om_name
    if model_name.endswith(".emu"):
        model_name = model_name[: -len(".emu")]
    write_text_atomic(Path(output) / "acl.json", json.dumps(acl_json(output, model_name), indent=4,
                                                          separators=(", ", ": "), sort_keys=True))
    folder = f"{stamp}_npy" if npy else stamp
    root = Path(output) / "dump" / folder / str(device) / model_name / str(MODEL_ID)
    root.mkdir(parents=True, exist_ok=True)
    return DumpJob(str(root), os.fspath(model_file))


def expose_all(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose every node output is also a graph output (types from shape inference)."""
    import onnx

    out = onnx.ModelProto.FromString(model.SerializeToString())
    try:
        inferred = onnx.shape_inference.infer_shapes(out)
    except Exception:  # a graph shape inference cannot read still runs; its types come from the outputs
        inferred = out
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    present = {o.name for o in out.graph.output}
    for node in out.graph.node:
        for name in node.output:
            if not name or name in present:
                continue
            value = known.get(name)
            if value is None or not value.type.HasField("tensor_type"):
                continue
            added = out.graph.output.add()
            added.CopyFrom(value)
            present.add(name)
    return out


class DumpWriter:
    """Writes one iteration folder per inference: each node's inputs and outputs as msaccucmp-named .npy."""

    def __init__(self, job: DumpJob) -> None:
        import numpy as np
        from onnx import numpy_helper

        from infer_kit.metadata import load_onnx

        self.root = Path(job.root)
        graph = load_onnx(Path(job.model)).graph
        self._nodes = [(n.op_type, (n.name or f"{n.op_type}_{i}").replace("/", "_"), list(n.input), list(n.output))
                       for i, n in enumerate(graph.node)]
        self._constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
        self._np = np
        self.iteration = 0
        self.files = 0

    def write(self, tensors: dict[str, Any] | None) -> None:
        if tensors is None:
            raise InferKitError("--dump: the runner did not expose its intermediate tensors",
                                hint="--dump works with the onnxruntime backend")
        np = self._np
        folder = self.root / str(self.iteration)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = int(time.time() * 1_000_000)
        for task, (op_type, name, inputs, outputs) in enumerate(self._nodes):
            for kind, names in (("input", inputs), ("output", outputs)):
                for index, tensor in enumerate(names):
                    value = tensors.get(tensor) if tensor in tensors else self._constants.get(tensor)
                    if value is None:
                        continue
                    array = np.asarray(value)
                    shape = "x".join(str(d) for d in array.shape) or "1"
                    path = folder / f"{op_type}.{name}.{task}.0.{stamp}.{kind}.{index}.{shape}.npy"
                    write_bytes_atomic(path, _npy_bytes(array))
                    self.files += 1
        self.iteration += 1

    def close(self) -> None:
        log.info(f"dump: {self.iteration} inference(s), {self.files} tensor file(s) in {self.root}")


def _npy_bytes(array: Any) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
