"""The whole chain in one cached command: [train ->] export -> atc -> preprocess -> run -> evaluate -> report."""

from infer_kit.pipeline.config import PipelineConfig, config_from_dict, load_config, read_toml
from infer_kit.pipeline.rows import REFERENCE_ROW, TORCH_ROW, Row
from infer_kit.pipeline.runner import PipelineResult, run_pipeline

__all__ = ["REFERENCE_ROW", "TORCH_ROW", "PipelineConfig", "PipelineResult", "Row", "config_from_dict", "load_config",
           "read_toml", "run_pipeline"]
