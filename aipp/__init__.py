"""AIPP configs: fields, parse/write/validate, generation from a spec, numpy and ONNX emulation.

The light API is re-exported here (nothing below imports numpy or onnx at import time):

* :func:`read_config` / :func:`parse_config` -> :class:`AippConfig` of :class:`AippOp` blocks;
  :func:`render_config` writes one back;
* :func:`validate_config` (ATC's rejections) and :func:`lint_config` (silent accuracy mistakes),
  both as :class:`Issue` lists; :func:`check_aipp` does both for a file (``infer-kit aipp check``);
* :func:`generate_op` turns a `PreprocessSpec` into the static config that does its preprocessing.

The emulation lives in :mod:`infer_kit.aipp.reference` (numpy, ``emulate_aipp``) and
:mod:`infer_kit.aipp.onnx_graph` (``aipp_subgraph``, ``aipp_model``); its UNVERIFIED choices in
:mod:`infer_kit.aipp.assumptions`.
"""

from infer_kit.aipp.check import CheckReport, check_aipp
from infer_kit.aipp.config import AippConfig, AippOp
from infer_kit.aipp.generate import generate_op
from infer_kit.aipp.lint import lint_config
from infer_kit.aipp.parse import AippConfigError, parse_config, read_config
from infer_kit.aipp.validate import Issue, validate_config
from infer_kit.aipp.write import render_config

__all__ = [
    "AippConfig", "AippConfigError", "AippOp", "CheckReport", "Issue", "check_aipp", "generate_op", "lint_config",
    "parse_config", "read_config", "render_config", "validate_config",
]
