"""``infer-kit aipp check``: ATC's rejections and the accuracy lints of one config, in one report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from infer_kit.aipp.accuracy_lint import SPEC_TOLERANCE, lint_config, spec_deviation
from infer_kit.aipp.atc_checks import validate_config
from infer_kit.aipp.config import AippConfig
from infer_kit.aipp.issues import Issue
from infer_kit.aipp.parse import read_config
from infer_kit.errors import InferKitError
from infer_kit.spec import PreprocessSpec


@dataclass(frozen=True)
class ModelShape:
    """What a check needs from a model: each input's (C, H, W) and its stamped spec."""

    inputs: list[tuple[int | None, int | None, int | None]]
    spec: PreprocessSpec | None
    name: str


@dataclass(frozen=True)
class CheckReport:
    config: AippConfig
    issues: list[Issue] = field(default_factory=list)
    spec: PreprocessSpec | None = None
    deviation: float | None = None  # max |AIPP - float preprocessing| on a test image, when comparable

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    def lines(self) -> list[str]:
        out = [issue.format(self.config.where) for issue in self.issues]
        summary = f"{self.config.where}: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        if self.deviation is not None:
            verdict = "matches" if self.deviation <= SPEC_TOLERANCE else "does NOT match"
            summary += (f"; {verdict} the spec's float preprocessing on a test image "
                        f"(max difference {self.deviation:.3g})")
        out.append(summary)
        return out


def read_model_shape(path: str | os.PathLike[str]) -> ModelShape:
    """Input dims and spec of an ONNX model (NCHW inputs; None for dynamic dims)."""
    from infer_kit.artifacts import onnx_io
    from infer_kit.metadata import load_onnx, read_model_info

    model = load_onnx(path)
    inputs, _ = onnx_io(model)
    dims = []
    for tensor in inputs:
        if len(tensor.shape) != 4:
            raise InferKitError(f"{path}: input {tensor.describe()} is not 4-D NCHW")
        dims.append((tensor.shape[1], tensor.shape[2], tensor.shape[3]))
    return ModelShape(dims, read_model_info(model, path=str(path)).spec, Path(path).name)


def check_aipp(config_path: str | os.PathLike[str], *, model: str | os.PathLike[str] | None = None,
               spec: PreprocessSpec | None = None, soc: str | None = None) -> CheckReport:
    """Validate (ATC's checks, against the model's input size when a model is given) and lint a config.

    ``spec`` wins over the model's stamped spec; a model with a dynamic H/W takes the spec's crop.
    """
    config = read_config(config_path)
    inputs = None
    if model is not None:
        shape = read_model_shape(model)
        spec = spec or shape.spec
        inputs = [(c, h if h is not None else _crop(spec), w if w is not None else _crop(spec))
                  for c, h, w in shape.inputs]
    elif spec is not None:
        inputs = [(3, spec.crop, spec.crop)]
    issues = validate_config(config, inputs=inputs, soc=soc)
    issues += lint_config(config, spec=spec)
    deviation = None
    op = config.op_for_input(0)
    if spec is not None and op is not None and op.mode == "static" and not any(i.severity == "error" for i in issues):
        deviation = spec_deviation(op, spec)
    issues.sort(key=lambda issue: (issue.line or 0, issue.severity != "error"))
    return CheckReport(config, issues, spec, deviation)


def _crop(spec: PreprocessSpec | None) -> int | None:
    return spec.crop if spec is not None else None
