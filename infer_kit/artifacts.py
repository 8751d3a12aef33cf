"""The data contracts between stages: tensor descriptions, manifests, compatibility checks.

Two kinds of manifest travel with infer-kit's files:

* **artifact manifest** ``<base>.manifest.json`` beside a compiled ``<base>.om`` or an
  emulated ``<base>.emu.onnx`` (written by ``atc``): kind, soc, batch, precision mode, input
  layout, `PreprocessSpec`, AIPP config text, input/output tensors, the ATC argv, the
  source ONNX and its sha256.
* **folder manifest** ``DIR/manifest.json`` in a folder of preprocessed tensors (written by
  ``preprocess``): spec, layout, dtype, per-file shape and bytes, count, source, skipped files.

:func:`describe_model` turns any model path (plain ONNX, emulated artifact, ``.om``) into a
:class:`ModelDescription`; :func:`check_folder_matches_model` refuses a folder whose
tensors the model cannot take, naming both sides, before any compute starts.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infer_kit.dynamic_shapes import DynamicAipp, DynamicProfile
from infer_kit.errors import InferKitError
from infer_kit.fsutil import read_json, write_json_atomic
from infer_kit.spec import LAYOUTS, PreprocessSpec

ARTIFACT_FORMAT = "infer-kit/artifact"
FOLDER_FORMAT = "infer-kit/preprocessed"
MANIFEST_VERSION = 1
EMULATED_SUFFIX = ".emu.onnx"
MANIFEST_SUFFIX = ".manifest.json"
FOLDER_MANIFEST = "manifest.json"

_ONNX_DTYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16",
}


@dataclass(frozen=True)
class TensorDesc:
    """A model input or output: name, shape (None for a dynamic axis), numpy dtype, format."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    format: str = "ND"

    @property
    def nbytes(self) -> int | None:
        if any(d is None for d in self.shape):
            return None
        import numpy as np

        return math.prod(self.shape) * np.dtype(self.dtype).itemsize  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "format": self.format}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorDesc:
        return cls(
            name=str(data["name"]),
            shape=tuple(None if d is None else int(d) for d in data["shape"]),
            dtype=str(data["dtype"]),
            format=str(data.get("format", "ND")),
        )

    def describe(self) -> str:
        dims = "x".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name} {self.dtype}[{dims}]"


@dataclass(frozen=True)
class ArtifactPaths:
    """Where ``atc`` puts the files of one output base name."""

    base: Path

    @property
    def om(self) -> Path:
        return self.base.with_name(self.base.name + ".om")

    @property
    def emulated(self) -> Path:
        return self.base.with_name(self.base.name + EMULATED_SUFFIX)

    @property
    def manifest(self) -> Path:
        return self.base.with_name(self.base.name + MANIFEST_SUFFIX)

    @property
    def atc_script(self) -> Path:
        return self.base.with_name(self.base.name + ".atc.sh")


def artifact_paths(path: str | os.PathLike[str]) -> ArtifactPaths:
    """The artifact files for an output base, or for any one of those files."""
    name = os.fspath(path)
    for suffix in (MANIFEST_SUFFIX, EMULATED_SUFFIX, ".om"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return ArtifactPaths(Path(name))


@dataclass(frozen=True)
class ModelDescription:
    """What a runnable model expects and produces, from its manifest or ONNX metadata."""

    kind: str  # "onnx" | "emulated-om" | "om"
    path: Path
    spec: PreprocessSpec | None
    layout: str | None  # "aipp" | "float" | None (a foreign model: unknown)
    batch: int | None
    inputs: tuple[TensorDesc, ...]
    outputs: tuple[TensorDesc, ...]
    manifest: dict[str, Any] | None = None
    manifest_path: Path | None = None
    dynamic: DynamicProfile | None = None  # the compiled gears or ranges (infer_kit.dynamic_shapes)
    dynamic_aipp: DynamicAipp | None = None  # an input compiled with aipp_mode: dynamic

    def expected_sample(self) -> tuple[str, tuple[int, ...], int] | None:
        """(dtype, shape, bytes) of one preprocessed image, when the spec and layout are known."""
        if self.spec is None or self.layout is None:
            return None
        return (
            self.spec.sample_dtype(self.layout),
            self.spec.sample_shape(self.layout),
            self.spec.sample_nbytes(self.layout),
        )


def write_artifact_manifest(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Write an artifact manifest (adds the format tag, version and creation time)."""
    from infer_kit import __version__

    body = {"format": ARTIFACT_FORMAT, "version": MANIFEST_VERSION, **data}
    body.setdefault("tool_version", __version__)
    body.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    write_json_atomic(path, body)


def read_artifact_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    data = read_json(path, what="artifact manifest")
    if not isinstance(data, dict) or data.get("format") != ARTIFACT_FORMAT:
        raise InferKitError(f"{path} is not an infer-kit artifact manifest", hint="rebuild it with 'infer-kit atc'")
    return data


def describe_model(path: str | os.PathLike[str]) -> ModelDescription:
    """Describe a plain ONNX model, an emulated artifact, an ``.om``, or an artifact manifest."""
    path = Path(path)
    paths = artifact_paths(path)
    is_artifact = path.name.endswith((MANIFEST_SUFFIX, EMULATED_SUFFIX, ".om"))
    if is_artifact and paths.manifest.is_file():
        return _describe_artifact(paths)
    if path.suffix == ".om":
        if not path.is_file():
            raise InferKitError(f"model not found: {path}")
        return ModelDescription("om", path, None, None, None, (), ())
    if path.name.endswith(MANIFEST_SUFFIX):
        raise InferKitError(f"artifact manifest not found: {path}")
    if path.suffix != ".onnx":
        raise InferKitError(
            f"unsupported model file {path}", hint="give an .onnx model, an emulated .emu.onnx artifact or an .om"
        )
    return _describe_onnx(path)


def _describe_onnx(path: Path) -> ModelDescription:
    from infer_kit.metadata import load_onnx, read_model_info

    model = load_onnx(path)
    info = read_model_info(model, path=str(path))
    inputs, outputs = onnx_io(model)
    batch = inputs[0].shape[0] if inputs and inputs[0].shape else None
    layout = "float" if info.spec is not None else None
    return ModelDescription("onnx", path, info.spec, layout, batch, inputs, outputs)


def _describe_artifact(paths: ArtifactPaths) -> ModelDescription:
    data = read_artifact_manifest(paths.manifest)
    where = str(paths.manifest)
    try:
        kind = str(data["kind"])
        model_file = paths.manifest.parent / str(data["model_file"])
        spec = PreprocessSpec.from_dict(data["spec"], where=f"spec in {where}") if data.get("spec") else None
        layout = data.get("layout")
        inputs = tuple(TensorDesc.from_dict(t) for t in data.get("inputs", []))
        outputs = tuple(TensorDesc.from_dict(t) for t in data.get("outputs", []))
        batch = int(data["batch"]) if data.get("batch") is not None else None
        dynamic = DynamicProfile.from_dict(data["dynamic"], where=where) if data.get("dynamic") else None
        dynamic_aipp = DynamicAipp.from_dict(data["dynamic_aipp"], where=where) if data.get("dynamic_aipp") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise InferKitError(
            f"artifact manifest {where} is malformed ({exc})", hint="rebuild it with 'infer-kit atc'"
        ) from None
    if layout is not None and layout not in LAYOUTS:
        raise InferKitError(f"artifact manifest {where}: unknown layout {layout!r}")
    if not model_file.is_file():
        raise InferKitError(f"artifact manifest {where} names {model_file.name}, which is missing")
    return ModelDescription(kind, model_file, spec, layout, batch, inputs, outputs, data, paths.manifest, dynamic,
                            dynamic_aipp)


def onnx_io(model: Any) -> tuple[tuple[TensorDesc, ...], tuple[TensorDesc, ...]]:
    """Inputs (initializers excluded) and outputs of an ONNX graph as TensorDescs."""
    initializers = {init.name for init in model.graph.initializer}

    def desc(value: Any) -> TensorDesc:
        ttype = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim)
        dtype = _ONNX_DTYPES.get(ttype.elem_type, f"onnx:{ttype.elem_type}")
        fmt = "NCHW" if len(dims) == 4 and dims[1] in (1, 3) else ("NHWC" if len(dims) == 4 else "ND")
        return TensorDesc(value.name, dims, dtype, fmt)

    inputs = tuple(desc(v) for v in model.graph.input if v.name not in initializers)
    outputs = tuple(desc(v) for v in model.graph.output)
    return inputs, outputs


@dataclass(frozen=True)
class FolderManifest:
    """The manifest ``preprocess`` writes into a folder of tensor files."""

    path: Path
    spec: PreprocessSpec
    layout: str
    dtype: str
    shape: tuple[int, ...]
    bytes_per_file: int
    count: int
    raw: dict[str, Any]


def write_folder_manifest(folder: str | os.PathLike[str], data: dict[str, Any]) -> None:
    from infer_kit import __version__

    body = {"format": FOLDER_FORMAT, "version": MANIFEST_VERSION, **data}
    body.setdefault("tool_version", __version__)
    write_json_atomic(Path(folder) / FOLDER_MANIFEST, body)


def read_folder_manifest(folder: str | os.PathLike[str]) -> FolderManifest | None:
    """The folder's manifest, or None when the folder has none (e.g. bins from another tool)."""
    path = Path(folder) / FOLDER_MANIFEST
    if not path.is_file():
        return None
    data = read_json(path, what="folder manifest")
    if not isinstance(data, dict) or data.get("format") != FOLDER_FORMAT:
        return None
    try:
        return FolderManifest(
            path=path,
            spec=PreprocessSpec.from_dict(data["spec"], where=f"spec in {path}"),
            layout=str(data["layout"]),
            dtype=str(data["dtype"]),
            shape=tuple(int(d) for d in data["shape"]),
            bytes_per_file=int(data["bytes_per_file"]),
            count=int(data["count"]),
            raw=data,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InferKitError(
            f"folder manifest {path} is malformed ({exc})", hint="rerun 'infer-kit preprocess'"
        ) from None


def check_folder_matches_model(folder: FolderManifest, model: ModelDescription) -> None:
    """Refuse tensors the model cannot take (layout, dtype, size, spec), naming both sides."""
    expected = model.expected_sample()
    if expected is None:
        return
    dtype, shape, nbytes = expected
    have = f"{folder.layout} tensors ({folder.dtype} {_dims(folder.shape)}, {folder.bytes_per_file} bytes)"
    want = f"{model.layout} tensors ({dtype} {_dims(shape)}, {nbytes} bytes)"
    fix = f"rerun 'infer-kit preprocess SRC DST --for {model.manifest_path or model.path}'"
    have_key = (folder.layout, folder.dtype, tuple(folder.shape), folder.bytes_per_file)
    if have_key != (model.layout, dtype, shape, nbytes):
        raise InferKitError(
            f"input folder {folder.path.parent} holds {have} but model {model.path.name} expects {want}", hint=fix
        )
    assert model.spec is not None
    diffs = folder.spec.differences(model.spec, layout=folder.layout)
    if diffs:
        raise InferKitError(
            f"input folder {folder.path.parent} was preprocessed with another spec than model {model.path.name} "
            f"expects (folder vs model: {'; '.join(diffs)})",
            hint=fix,
        )


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)
