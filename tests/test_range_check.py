"""The overflow/underflow check of the float16/bfloat16 modes: planted faults are reported with their nodes,
in compile_om's artifacts and manifests and in ``infer-kit atc``'s output."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from precision_support import residual_net
from test_atc_support import tiny_classifier

from infer_kit.artifacts import read_artifact_manifest
from infer_kit.converter import compile_om
from infer_kit.converter.precision import held_formats
from infer_kit.converter.range_check import range_report, scan_ranges
from infer_kit.converter.rounding import fold_batchnorm
from infer_kit.converter.samples import random_samples


def _scaled(model: onnx.ModelProto, factors: dict[str, float]) -> onnx.ModelProto:
    out = onnx.ModelProto.FromString(model.SerializeToString())
    for init in out.graph.initializer:
        if init.name in factors:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * factors[init.name], init.name))
    return out


def test_planted_overflow_and_underflow_are_named_by_node():
    rng = np.random.default_rng(0)
    model, _ = residual_net(rng)
    planted, _ = fold_batchnorm(_scaled(model, {"w2": 1e5, "wfc": 1e-12}))
    samples = random_samples(6, (3, 16, 16), None)
    stats = scan_ranges(planted, "x", (b for b in samples.batches(2)))
    report = range_report(stats, held_formats(planted, "force_fp16"), mode="force_fp16", samples=samples)
    kinds = {(f.kind, f.node) for f in report.findings}
    assert ("overflow", "conv2") in kinds and ("underflow", "fc") in kinds
    assert report.findings[0].kind == "overflow" and report.findings[0].max_abs > 65504
    assert "conv2 (Conv)" in report.summary() and "flush to 0" in report.summary()
    # bfloat16 has float32's range: the same tensors are fine there
    bf16 = range_report(stats, held_formats(planted, "allow_fp32_to_bf16"), mode="allow_fp32_to_bf16",
                        samples=samples)
    assert bf16.format == "bf16" and not bf16.overflows
    # a mode that keeps the overflowing operator in float32 does not hold that tensor in float16
    kept = range_report(stats, held_formats(planted, "allow_fp32_to_fp16"), mode="allow_fp32_to_fp16",
                        samples=samples)
    assert ("overflow", "conv2") in {(f.kind, f.node) for f in kept.findings}  # conv2 is a Cube op: float16
    assert range_report(stats, held_formats(planted, "must_keep_origin_dtype"), mode="must_keep_origin_dtype",
                        samples=samples) is None


def test_atc_warns_naming_the_node_and_the_manifest_records_it(tmp_path, cli):
    path, _ = tiny_classifier(tmp_path)
    model = onnx.load(str(path))
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    onnx.save(_scaled(model, {gemm.input[1]: 1e6}), str(path))
    result = cli("atc", "-m", path, "--soc", "Ascend910B3", "-b", "2", "--precision-mode", "force_fp16,"
                 "allow_fp32_to_bf16")
    assert result.exit_code == 0, result.stderr
    assert "warning: range check force_fp16: " in result.stderr and f"{gemm.name} (Gemm)" in result.stderr
    assert "random image(s) (random inputs are a weak proxy" in result.stderr
    assert "allow_fp32_to_bf16: 0 overflow" not in result.stdout and "none overflows" in result.stdout
    manifest = read_artifact_manifest(tmp_path / "tiny_bs2_force_fp16.manifest.json")
    finding = manifest["range_check"]["findings"][0]
    assert (finding["kind"], finding["node"]) == ("overflow", gemm.name) and finding["max_abs"] > 65504
    assert manifest["range_check"]["samples"]["kind"] == "random"
    again = cli("atc", "-m", path, "--soc", "Ascend910B3", "-b", "2", "--precision-mode", "force_fp16,"
                "allow_fp32_to_bf16")
    assert "(up to date)" in again.stdout and f"{gemm.name} (Gemm)" in again.stderr  # repeated when reused


@pytest.mark.parametrize("layout", ["float", "aipp"])
def test_the_check_reads_a_preprocessed_folder(tmp_path, layout):
    from test_atc_support import TINY_SPEC

    from infer_kit.aipp import emulate_aipp, generate_op
    from infer_kit.artifacts import write_folder_manifest
    from infer_kit.converter.samples import folder_samples

    rng = np.random.default_rng(0)
    folder = tmp_path / layout
    folder.mkdir()
    sources = rng.integers(0, 256, (5, 40, 40, 3), dtype=np.uint8)
    op = generate_op(TINY_SPEC)
    floats = emulate_aipp(op, sources).astype(np.float32)
    for i in range(5):
        (sources[i] if layout == "aipp" else floats[i]).tofile(folder / f"img{i}.bin")
    sample = TINY_SPEC.sample_shape(layout)
    write_folder_manifest(folder, {"spec": TINY_SPEC.to_dict(), "layout": layout, "dtype": TINY_SPEC.sample_dtype(
        layout), "shape": list(sample), "bytes_per_file": TINY_SPEC.sample_nbytes(layout), "count": 5})
    samples = folder_samples(folder, chw=(3, 32, 32), spec=TINY_SPEC, op=op, limit=4)
    batches = list(samples.batches(3))
    assert samples.count == 4 and [len(b) for b in batches] == [3, 1]
    np.testing.assert_array_equal(np.concatenate(batches), floats[:4])  # aipp sources go through AIPP
    path, _ = tiny_classifier(tmp_path)
    [artifact] = compile_om(path, soc="Ascend910A", batch_sizes=[2], emulate=True, calibration=folder, samples=4)
    assert artifact.range_check["samples"] == samples.to_dict()
    assert f"4 image(s) from {folder}" in artifact.range_check["summary"]
