"""Read and write infer-kit's keys in an ONNX model's ``metadata_props``.

``export`` stamps the `PreprocessSpec` and provenance into the model; every later stage
reads them back with :func:`read_model_info`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer_kit.errors import InferKitError
from infer_kit.spec import PreprocessSpec

if TYPE_CHECKING:
    import onnx

PREFIX = "infer_kit."
SPEC_KEY = PREFIX + "preprocess_spec"


@dataclass(frozen=True)
class ModelInfo:
    """What infer-kit recorded in an ONNX file (empty for a foreign model)."""

    path: Path
    spec: PreprocessSpec | None
    arch: str | None = None
    num_classes: int | None = None
    provenance: dict[str, str] = field(default_factory=dict)


def stamp(model: onnx.ModelProto, spec: PreprocessSpec | None, **provenance: Any) -> None:
    """Write the spec and provenance (``arch``, ``num_classes``, ...) into ``model``."""
    values: dict[str, str] = {}
    if spec is not None:
        values[SPEC_KEY] = spec.to_json()
    for key, value in provenance.items():
        if value is not None:
            values[PREFIX + key] = str(value)
    kept = [p for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    for prop in kept:
        model.metadata_props.add(key=prop.key, value=prop.value)
    for key, value in values.items():
        model.metadata_props.add(key=key, value=value)


def read_metadata(model: onnx.ModelProto | str | os.PathLike[str]) -> dict[str, str]:
    """All ``metadata_props`` of a model (path or loaded proto)."""
    if not hasattr(model, "metadata_props"):
        model = load_onnx(model)
    return {p.key: p.value for p in model.metadata_props}


def read_model_info(model: onnx.ModelProto | str | os.PathLike[str], *, path: str | None = None) -> ModelInfo:
    """The spec and provenance infer-kit stamped into an ONNX model."""
    if hasattr(model, "metadata_props"):
        where = path or "ONNX model"
    else:
        where = str(model)
        model = load_onnx(model)
    props = read_metadata(model)
    spec = None
    if SPEC_KEY in props:
        spec = PreprocessSpec.from_json(props[SPEC_KEY], where=f"preprocess spec in {where}")
    provenance = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX) and k != SPEC_KEY}
    num_classes = provenance.get("num_classes")
    return ModelInfo(
        path=Path(where),
        spec=spec,
        arch=provenance.get("arch"),
        num_classes=int(num_classes) if num_classes and num_classes.isdigit() else None,
        provenance=provenance,
    )


def load_onnx(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Load an ONNX file, turning a missing or corrupt file into a one-line error."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise InferKitError(f"ONNX model not found: {path}")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for corrupt files
        raise InferKitError(
            f"{path} is not a readable ONNX model ({type(exc).__name__})",
            hint="re-export it with 'infer-kit export'",
        ) from None
