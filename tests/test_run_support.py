"""Tiny models and tensor folders for the run tests, built with onnx.helper (no torch, no downloads).

* ``float_model``: what ``export`` writes: float32 NCHW ``[B, 3, crop, crop]`` -> ``[B, classes]``,
  the spec stamped in its metadata, batch static or dynamic.
* ``emulated_artifact``: what ``atc`` writes without an Ascend: ``<base>.emu.onnx`` taking uint8
  NHWC ``[N, resize, resize, 3]`` (the crop and normalisation in front) + ``<base>.manifest.json``.
* ``om_model``: an ``.om`` for the ais_bench test double (which runs ONNX bytes).

Every model is per-sample: output row k depends only on input sample k (mean pooling then a
matrix), so results can be checked against numpy.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from infer_kit.artifacts import TensorDesc, describe_model, write_artifact_manifest, write_folder_manifest
from infer_kit.metadata import stamp
from infer_kit.spec import PreprocessSpec

SPEC = PreprocessSpec(resize=10, crop=8)
CLASSES = 10
FAKE_AIS_BENCH = Path(__file__).parent / "fake_ais_bench"


def weights(classes: int = CLASSES) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.standard_normal((3, classes)).astype(np.float32), rng.standard_normal(classes).astype(np.float32)


def _head(nodes: list, inits: list, source: str, classes: int) -> None:
    w, b = weights(classes)
    inits += [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
              numpy_helper.from_array(np.array([2, 3], np.int64), "axes")]
    nodes += [helper.make_node("ReduceMean", [source, "axes"], ["pooled"], keepdims=0),
              helper.make_node("MatMul", ["pooled", "w"], ["logits"]),
              helper.make_node("Add", ["logits", "b"], ["output1"])]


def float_model(path: Path, *, batch: int | None = 1, spec: PreprocessSpec = SPEC, classes: int = CLASSES) -> Path:
    dim = batch if batch is not None else "batch"
    nodes: list = []
    inits: list = []
    _head(nodes, inits, "actual_input_1", classes)
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("actual_input_1", TensorProto.FLOAT, [dim, 3, spec.crop, spec.crop])],
        [helper.make_tensor_value_info("output1", TensorProto.FLOAT, [dim, classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    stamp(model, spec, arch="tiny", num_classes=classes)
    onnx.save(model, str(path))
    return path


def _aipp_graph(batch: int, spec: PreprocessSpec, classes: int) -> onnx.ModelProto:
    o, c = spec.crop_offset, spec.crop
    mean = (np.array(spec.mean, np.float32) * 255).reshape(1, 3, 1, 1)
    scale = (1 / (255 * np.array(spec.std, np.float32))).reshape(1, 3, 1, 1)
    inits = [numpy_helper.from_array(np.array([o, o], np.int64), "starts"),
             numpy_helper.from_array(np.array([o + c, o + c], np.int64), "ends"),
             numpy_helper.from_array(np.array([1, 2], np.int64), "slice_axes"),
             numpy_helper.from_array(mean, "mean"), numpy_helper.from_array(scale, "scale")]
    nodes = [helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Slice", ["f", "starts", "ends", "slice_axes"], ["cropped"]),
             helper.make_node("Transpose", ["cropped"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("Sub", ["nchw", "mean"], ["centred"]),
             helper.make_node("Mul", ["centred", "scale"], ["normed"])]
    _head(nodes, inits, "normed", classes)
    graph = helper.make_graph(
        nodes, "tiny_aipp",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, [batch, spec.resize, spec.resize, 3])],
        [helper.make_tensor_value_info("output1", TensorProto.FLOAT, [batch, classes])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


def emulated_artifact(folder: Path, *, batch: int = 4, spec: PreprocessSpec = SPEC, classes: int = CLASSES,
                      kind: str = "emulated-om") -> Path:
    """``<folder>/tiny_bs{batch}.emu.onnx`` (or ``.om`` for kind "om") + its manifest; returns the model file."""
    base = folder / f"tiny_bs{batch}"
    model_file = base.with_name(base.name + (".emu.onnx" if kind == "emulated-om" else ".om"))
    onnx.save(_aipp_graph(batch, spec, classes), str(model_file))
    write_artifact_manifest(base.with_name(base.name + ".manifest.json"), {
        "kind": kind, "model_file": model_file.name, "soc": "Ascend910A", "batch": batch,
        "precision_mode": "force_fp32", "layout": "aipp", "spec": spec.to_dict(), "aipp_config": None,
        "inputs": [TensorDesc("images", (batch, spec.resize, spec.resize, 3), "uint8", "NHWC").to_dict()],
        "outputs": [TensorDesc("output1", (batch, classes), "float32").to_dict()],
        "atc_argv": [], "source_onnx": "tiny.onnx", "source_onnx_sha256": "0" * 64,
    })
    return model_file


def om_model(folder: Path, *, batch: int = 4, with_manifest: bool = False) -> Path:
    """An ``.om`` the ais_bench test double can run (ONNX bytes inside)."""
    if with_manifest:
        return emulated_artifact(folder, batch=batch, kind="om")
    path = folder / f"tiny_bs{batch}.om"
    onnx.save(_aipp_graph(batch, SPEC, CLASSES), str(path))
    return path


def aipp_folder(folder: Path, count: int, *, spec: PreprocessSpec = SPEC, manifest: bool = True,
                names: list[str] | None = None, seed: int = 0) -> Path:
    """``count`` uint8 HWC images as .bin files (what ``preprocess`` writes for the aipp layout)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = names or [f"img_{i}" for i in range(count)]
    for name in names:
        rng.integers(0, 256, (spec.resize, spec.resize, 3), dtype=np.uint8).tofile(folder / f"{name}.bin")
    if manifest:
        _folder_manifest(folder, spec, "aipp", len(names))
    return folder


def float_folder(folder: Path, count: int, *, spec: PreprocessSpec = SPEC, manifest: bool = True,
                 seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        rng.standard_normal((3, spec.crop, spec.crop)).astype(np.float32).tofile(folder / f"img_{i}.bin")
    if manifest:
        _folder_manifest(folder, spec, "float", count)
    return folder


def _folder_manifest(folder: Path, spec: PreprocessSpec, layout: str, count: int) -> None:
    write_folder_manifest(folder, {
        "spec": spec.to_dict(), "layout": layout, "dtype": spec.sample_dtype(layout),
        "shape": list(spec.sample_shape(layout)), "bytes_per_file": spec.sample_nbytes(layout), "count": count,
        "source": "generated", "skipped": [], "labels": None,
    })


def expected_logits_aipp(image: np.ndarray, spec: PreprocessSpec = SPEC) -> np.ndarray:
    """The emulated artifact's output for one uint8 HWC image, in numpy."""
    o, c = spec.crop_offset, spec.crop
    crop = image[o:o + c, o:o + c].astype(np.float32).transpose(2, 0, 1)
    normed = (crop - np.array(spec.mean, np.float32)[:, None, None] * 255) / (
        255 * np.array(spec.std, np.float32)[:, None, None])
    w, b = weights()
    return normed.mean(axis=(1, 2)) @ w + b


def use_fake_ais_bench(monkeypatch) -> object:
    """Put the ais_bench test double on sys.path (and forget any earlier import of it)."""
    monkeypatch.syspath_prepend(str(FAKE_AIS_BENCH))
    for name in [m for m in sys.modules if m == "ais_bench" or m.startswith("ais_bench.")]:
        monkeypatch.delitem(sys.modules, name)
    import ais_bench.infer.interface as interface

    return interface


def test_support_models_describe_as_the_stages_write_them(tmp_path):
    emu = describe_model(emulated_artifact(tmp_path, batch=4))
    assert (emu.kind, emu.layout, emu.batch, emu.spec) == ("emulated-om", "aipp", 4, SPEC)
    plain = describe_model(float_model(tmp_path / "m.onnx", batch=None))
    assert (plain.kind, plain.layout, plain.batch, plain.spec) == ("onnx", "float", None, SPEC)
