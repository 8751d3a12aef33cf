"""Stage: runners (ONNX Runtime, Ascend/ais_bench, torch) and the ais_bench-compatible `run`."""
