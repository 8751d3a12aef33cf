"""INT8: static post-training quantization with ONNX Runtime (QDQ), calibrated on preprocessed images.

The scheme (what Ascend's AMCT produces, and what runs fast on this CPU):

* **weights** int8, per output channel, symmetric (zero point 0): AMCT's ``channel_wise`` ARQ
  weights use the same grid;
* **activations** uint8, per tensor, asymmetric (zero point from calibration): AMCT quantizes
  activations asymmetrically to int8 (``activation_offset``); uint8 with zero point ``z + 128``
  is the same grid as int8 with zero point ``z`` (``q_u8 = q_s8 + 128``), so the values the
  network sees are the same; ONNX Runtime has fast VNNI kernels only for uint8 activations with
  int8 weights (int8 activations run no faster than float32 here);
* QDQ format (QuantizeLinear/DequantizeLinear around every quantized tensor; ONNX Runtime fuses
  them into QLinearConv, QLinearAdd... at session creation), every operator type ORT quantizes,
  ``reduce_range`` off, opset raised to 13 (per-channel DequantizeLinear needs ``axis``), the
  graph prepared with ORT's ``quant_pre_process`` (shape inference, constant folding).

Calibration (:func:`calibrate`) runs ORT's calibrator directly: ``quantize_static`` does not
pass ``num_bins`` on, so its Entropy method runs with 128 bins and 128 quantized bins, which
leaves one candidate threshold and makes it MinMax bit for bit (ORT 1.32). ``minmax`` (default)
takes the observed range; ``percentile`` clips at the 99.999th percentile of |x| (asymmetric);
``entropy`` minimises the KL divergence (2048 bins). AMCT's own search (IFMR) is none of these;
the calibration algorithms are what differs from the device, not the grid.

The spec and provenance of the float model are carried into the output's metadata, plus
``infer_kit.quantization``: the scheme, method, sample count and source, the float model's sha256.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer_kit.console import log
from infer_kit.errors import InferKitError
from infer_kit.fsutil import check_output_file, sha256_file, write_bytes_atomic

if TYPE_CHECKING:
    import onnx

    from infer_kit.converter.samples import SampleSet

QUANTIZATION_KEY = "infer_kit.quantization"
METHODS = ("minmax", "entropy", "percentile")
DEFAULT_SAMPLES = 128
SCHEME = {"format": "QDQ", "activations": "uint8 per tensor, asymmetric",
          "weights": "int8 per channel, symmetric", "reduce_range": False}


@dataclass(frozen=True)
class QuantizeResult:
    path: Path
    method: str
    per_channel: bool
    samples: dict[str, Any]
    samples_text: str
    quantized_tensors: int
    seconds: float


def is_quantized(model: onnx.ModelProto) -> bool:
    """True when the graph already holds quantization nodes (QDQ or QLinear operators)."""
    return any(node.op_type in ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul")
               for node in model.graph.node)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise InferKitError(f"unknown calibration method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    return method


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over a :class:`SampleSet` (``get_next``/``rewind``)."""

    def __init__(self, samples: SampleSet, input_name: str, batch: int | None) -> None:
        self.samples, self.input_name, self.batch = samples, input_name, batch
        self._it = self._feeds()

    def _feeds(self) -> Iterator[dict[str, Any]]:
        import numpy as np

        for arrays in self.samples.batches(self.batch or 8):
            if self.batch and len(arrays) < self.batch:  # a static batch: pad with copies (ranges are unchanged)
                arrays = np.concatenate([arrays, np.repeat(arrays[:1], self.batch - len(arrays), axis=0)])
            yield {self.input_name: arrays}

    def get_next(self) -> dict[str, Any] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = self._feeds()

    def __len__(self) -> int:
        return self.samples.count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._feeds()


def _reader(samples: SampleSet, input_name: str, batch: int | None) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(_Reader, CalibrationDataReader):
        pass

    return Reader(samples, input_name, batch)


def prepare_float_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """Opset 13 or more, then ORT's ``quant_pre_process`` (ONNX shape inference, basic graph optimizations)."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from infer_kit.converter.graphs import at_least_opset

    proto = at_least_opset(model, 13)
    with tempfile.TemporaryDirectory() as tmp:
        source, prepared = os.path.join(tmp, "float.onnx"), os.path.join(tmp, "prepared.onnx")
        onnx.save(proto, source)
        try:
            quant_pre_process(source, prepared, skip_symbolic_shape=True)
        except Exception as exc:  # ORT raises plain exceptions for graphs it cannot optimize
            log.warning("quant_pre_process failed (%s): quantizing the graph as it is", _first_line(exc))
            return proto
        return onnx.load(prepared)


def calibrate(prepared: onnx.ModelProto, reader: Any, cache_path: str | os.PathLike[str], *,
              method: str = "minmax", percentile: float = 99.999, num_bins: int = 2048,
              num_quantized_bins: int = 128) -> None:
    """Activation ranges of ``prepared`` over ``reader``, written as ORT's calibration cache (JSON)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    extra: dict[str, Any] = {"symmetric": False}
    if method == "entropy":
        extra.update(num_bins=num_bins, num_quantized_bins=num_quantized_bins)
    elif method == "percentile":
        extra.update(num_bins=num_bins, percentile=percentile)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "prepared.onnx")
        onnx.save(prepared, path)
        calibrator = create_calibrator(path, None, augmented_model_path=os.path.join(tmp, "augmented.onnx"),
                                       calibrate_method=methods[method], extra_options=extra)
        reader.rewind()
        with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print their progress
            calibrator.collect_data(reader)
            ranges = calibrator.compute_data()
        save_tensors_data(ranges, str(cache_path))


def quantize_proto(model: onnx.ModelProto, samples: SampleSet, *, method: str = "minmax",
                   per_channel: bool = True) -> onnx.ModelProto:
    """The INT8 (QDQ) model of the float32 ``model``, calibrated on ``samples``."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from infer_kit.converter.emulate import model_input

    check_method(method)
    if is_quantized(model):
        raise InferKitError("the model is already quantized", hint="give the float32 model")
    source = model_input(model)
    prepared = prepare_float_model(model)
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    with tempfile.TemporaryDirectory() as tmp:
        src, out, cache = (os.path.join(tmp, name) for name in ("prepared.onnx", "int8.onnx", "ranges.json"))
        onnx.save(prepared, src)
        # the histogram methods stack each tensor's per-feed outputs: every feed must have one shape, so a
        # dynamic-batch model is fed one image at a time (same histogram); minmax takes any batch
        feed_batch = source.batch or (None if method == "minmax" else 1)
        calibrate(prepared, _reader(samples, source.name, feed_batch), cache, method=method)
        try:
            quantize_static(src, out, None, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            reduce_range=False, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=methods[method], calibration_cache_path=cache,
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        except InferKitError:
            raise
        except Exception as exc:  # onnxruntime.quantization raises plain exceptions for graphs it cannot handle
            raise InferKitError(f"ONNX Runtime cannot quantize this model: {_first_line(exc)}") from None
        quantized = onnx.load(out)
    del quantized.metadata_props[:]
    for prop in model.metadata_props:
        quantized.metadata_props.add(key=prop.key, value=prop.value)
    return quantized


def quantized_tensors(model: onnx.ModelProto) -> int:
    return sum(1 for node in model.graph.node if node.op_type == "QuantizeLinear")


def stamp_quantization(model: onnx.ModelProto, record: dict[str, Any]) -> None:
    props = {p.key: p.value for p in model.metadata_props}
    props[QUANTIZATION_KEY] = json.dumps(record, sort_keys=True)
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)


def quantize_onnx(model: str | os.PathLike[str], calibration: str | os.PathLike[str], *,
                  output: str | os.PathLike[str] | None = None, samples: int | None = None, method: str = "minmax",
                  per_channel: bool = True, spec: Any = None) -> QuantizeResult:
    """``infer-kit quantize``: MODEL.onnx + a preprocessed folder -> MODEL.int8.onnx (QDQ, spec kept).

    The folder holds ``float`` tensors (the network's input) or ``aipp`` sources, which go
    through the AIPP config generated from the model's spec first. ``samples``: the first N
    files (default :data:`DEFAULT_SAMPLES`, or all when fewer); asking for more than the folder
    holds is an error.
    """
    from infer_kit.aipp import generate_op
    from infer_kit.artifacts import EMULATED_SUFFIX
    from infer_kit.converter.emulate import model_input, resolve_input_hw
    from infer_kit.converter.samples import folder_samples
    from infer_kit.metadata import load_onnx, read_model_info

    check_method(method)
    if samples is not None and samples < 1:
        raise InferKitError(f"--samples must be at least 1, got {samples}")
    model_path = Path(model)
    out = Path(output) if output else model_path.with_name(model_path.stem + ".int8.onnx")
    check_output_file(out, what="quantized model", keep={"the float32 model": model_path})
    where = model_path.name
    if where.endswith(EMULATED_SUFFIX):  # its AIPP front and rounding casts are no network to quantize
        raise InferKitError(f"{where} is an emulated artifact (precision mode and AIPP applied)",
                            hint="quantize the float32 ONNX model; 'infer-kit atc --precision-mode int8' puts AIPP "
                                 "in front of the INT8 network")
    proto = load_onnx(model_path)
    if is_quantized(proto):  # before the calibration folder is read
        raise InferKitError(f"{where} is already quantized", hint="give the float32 model")
    source = model_input(proto, where)
    if source.dtype != "float32":
        raise InferKitError(f"{where} takes {source.dtype} input; INT8 calibration feeds float32 tensors",
                            hint="quantize the float32 ONNX model")
    spec = spec or read_model_info(proto, path=str(model_path)).spec
    hw = resolve_input_hw(source, (spec.crop, spec.crop) if spec else None, where)
    chw = (source.channels or 3, *hw)
    op = generate_op(spec) if spec is not None else None
    sample_set = folder_samples(calibration, chw=chw, spec=spec, op=op, limit=samples or DEFAULT_SAMPLES,
                                strict_limit=samples is not None)
    started = time.perf_counter()
    log.info("calibrating %s on %s (%s)", where, sample_set.describe(), method)
    quantized = quantize_proto(proto, sample_set, method=method, per_channel=per_channel)
    record = {**SCHEME, "method": method, "per_channel": per_channel, "samples": sample_set.to_dict(),
              "source_onnx": model_path.name, "source_onnx_sha256": sha256_file(model_path),
              "onnxruntime": _ort_version()}
    stamp_quantization(quantized, record)
    write_bytes_atomic(out, quantized.SerializeToString())
    return QuantizeResult(out, method, per_channel, sample_set.to_dict(), sample_set.describe(),
                          quantized_tensors(quantized), time.perf_counter() - started)


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
