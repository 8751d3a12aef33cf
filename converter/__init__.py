"""Stage: checkpoint -> ONNX (`export`) and ONNX -> OM (`atc`, real or emulated)."""
