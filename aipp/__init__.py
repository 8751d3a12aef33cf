"""AIPP configs: fields, parse/write/validate, generation from a spec, numpy and ONNX emulation."""
