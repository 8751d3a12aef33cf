"""Which preprocessing spec applies: one resolver for every command and the pipeline.

A spec comes from exactly one source (a model file, a registry architecture, a ModelZoo
preset, or a spec given from Python), plus overrides of single fields:

* a model file is an exported ``.onnx`` (the spec stamped in its metadata; it takes float
  tensors) or a compiled/emulated artifact (``.om``, ``.emu.onnx``, ``.manifest.json``: the
  spec and input layout its manifest records);
* without any source, overrides holding both ``resize`` and ``crop`` make a spec of their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infer_kit.artifacts import ModelDescription, describe_model
from infer_kit.errors import InferKitError
from infer_kit.presets import get_preset
from infer_kit.registry import get_model
from infer_kit.spec import PreprocessSpec

# How each source is spelled on the command line (commands may rename, e.g. preprocess's --for).
FLAGS = {"model": "--model", "arch": "--arch", "preset": "--preset", "spec": "spec"}


@dataclass(frozen=True)
class ResolvedSpec:
    """The spec (None: a model file without one), where it came from, and for a model file what it takes."""

    spec: PreprocessSpec | None
    source: str
    layout: str | None = None
    model: ModelDescription | None = None


def resolve_spec(
    *,
    model: str | os.PathLike[str] | None = None,
    arch: str | None = None,
    preset: str | None = None,
    spec: PreprocessSpec | None = None,
    overrides: Mapping[str, Any] | None = None,
    flags: Mapping[str, str] | None = None,
) -> ResolvedSpec | None:
    """The spec of the one given source with ``overrides`` applied; None when there is nothing to build one from.

    A model file that carries no spec (a foreign ONNX) counts as no source: ``resize`` and
    ``crop`` overrides can still make one. The caller decides whether None is an error; the
    model's description is returned either way.
    """
    names = {**FLAGS, **(flags or {})}
    given = [names[key] for key, value in (("model", model), ("arch", arch), ("preset", preset), ("spec", spec))
             if value is not None]
    if len(given) > 1:
        raise InferKitError(f"give only one of {' / '.join(given)}: each decides the preprocessing spec")
    changes = {k: v for k, v in (overrides or {}).items() if v is not None}
    description = describe_model(Path(model)) if model is not None else None
    layout = None
    if description is not None and description.spec is not None:
        base, source, layout = description.spec, f"{description.kind} model {model}", description.layout
    elif arch is not None:
        entry = get_model(arch)
        base, source = entry.spec, f"model {entry.name!r} ({entry.spec_source})"
    elif preset is not None:
        base, source = get_preset(preset), f"preset {preset!r}"
    elif spec is not None:
        base, source = spec, "the given spec"
    elif {"resize", "crop"} <= set(changes):
        base, source = PreprocessSpec(resize=changes.pop("resize"), crop=changes.pop("crop")), "--resize and --crop"
    else:
        return None if description is None else ResolvedSpec(None, f"model {model}", None, description)
    if changes:
        base = base.with_overrides(**changes)
        source += " with overrides " + ", ".join(f"{k}={v}" for k, v in changes.items())
    return ResolvedSpec(base, source, layout, description)
