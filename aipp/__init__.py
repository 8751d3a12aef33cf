"""AIPP configs: fields, parse/write/check, generation from a spec, numpy and ONNX emulation.

The public surface (nothing here imports onnx or torch at import time; numpy only):

* :func:`read_config` / :func:`parse_config` -> :class:`AippConfig` of :class:`AippOp` blocks;
  :func:`render_config` writes one back;
* :func:`validate_config` (ATC's rejections) and :func:`lint_config` (silent accuracy mistakes),
  both as :class:`Issue` lists; :func:`check_aipp` does both for a file (``infer-kit aipp check``);
* :func:`generate_op` turns a `PreprocessSpec` into the static config that does its preprocessing;
* the emulation: :func:`emulate_aipp` (numpy reference), :func:`aipp_subgraph` (ONNX), the
  geometry they share (:func:`resolve_geometry`, :func:`source_shape`), and the UNVERIFIED
  choices they make (:class:`Assumptions`).
"""

from infer_kit.aipp.accuracy_lint import lint_config
from infer_kit.aipp.ais_config import read_ais_aipp_config, source_bytes
from infer_kit.aipp.assumptions import DEFAULT_ASSUMPTIONS, Assumptions, parse_assumptions
from infer_kit.aipp.atc_checks import validate_config
from infer_kit.aipp.check_report import CheckReport, check_aipp, read_model_shape
from infer_kit.aipp.config import AippConfig, AippOp
from infer_kit.aipp.generate import describe_generated, generate_op
from infer_kit.aipp.geometry import resolve_geometry, source_shape
from infer_kit.aipp.issues import Issue, errors, raise_for_errors
from infer_kit.aipp.onnx_graph import aipp_model, aipp_subgraph
from infer_kit.aipp.parse import AippConfigError, parse_config, read_config
from infer_kit.aipp.reference import emulate_aipp
from infer_kit.aipp.source import load_source
from infer_kit.aipp.write import render_config

__all__ = [
    "DEFAULT_ASSUMPTIONS", "AippConfig", "AippConfigError", "AippOp", "Assumptions", "CheckReport", "Issue",
    "aipp_model", "aipp_subgraph", "check_aipp", "describe_generated", "emulate_aipp", "errors", "generate_op",
    "lint_config", "load_source", "parse_assumptions", "parse_config", "raise_for_errors", "read_config",
    "read_ais_aipp_config", "read_model_shape", "render_config", "resolve_geometry", "source_bytes", "source_shape",
    "validate_config",
]
