"""Done-when of issue 3: ``infer-kit atc --soc Ascend910A`` turns an exported seed model into emulated
batch-1 and batch-64 artifacts that ONNX Runtime runs, with top-1 on real photos identical to torch.

Random weights, but not a degenerate classifier: a randomly initialised network sends every photo
to the same class, so the head is replaced by one prototype per photo (the photo's centred
feature vector), which gives each photo its own class with a clear margin. The backbone keeps its
random weights; torch and the emulated artifact (AIPP in uint8 -> float16, force_fp16) must agree.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from test_atc_support import export_model, float_preprocess, source_images, tiny_torch_model

from infer_kit.artifacts import describe_model
from infer_kit.registry import create_model, get_model
from infer_kit.spec import PreprocessSpec


def prototype_head(linear: torch.nn.Linear, features: torch.Tensor) -> None:
    """Class k <- photo k: weight = its centred feature (unit length), bias centres the features."""
    with torch.no_grad():
        mean = features.mean(0)
        centred = features - mean
        weight = torch.zeros_like(linear.weight)
        weight[: len(features)] = centred / centred.norm(dim=1, keepdim=True)
        linear.weight.copy_(weight)
        linear.bias.copy_(-weight @ mean)


def top1_and_margin(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ordered = np.sort(logits, axis=1)
    return logits.argmax(1), ordered[:, -1] - ordered[:, -2]


def run_artifact(path, sources: np.ndarray, batch: int) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: sources[i:i + batch]})[0] for i in range(0, len(sources), batch)])


@pytest.mark.slow
def test_seed_resnet50_emulated_at_batch_1_keeps_torch_top1(photos, tmp_path, cli):
    spec = get_model("resnet50").spec
    sources = source_images(photos, spec.resize)
    torch.manual_seed(0)
    model = create_model("resnet50", 1000).eval()
    inputs = torch.from_numpy(float_preprocess(sources, spec))
    with torch.no_grad():
        features = model.forward_head(model.forward_features(inputs), pre_logits=True)
        prototype_head(model.fc, features)
        expected = model.fc(features).numpy()  # = model(inputs), without a second forward pass
    torch.save(model.state_dict(), tmp_path / "resnet50.pth")

    exported = cli("export", "--arch", "resnet50", "--checkpoint", tmp_path / "resnet50.pth",
                   "-o", tmp_path / "resnet50.onnx", "--no-verify", "--no-simplify")
    assert exported.exit_code == 0, exported.stderr
    result = cli("atc", "--model", tmp_path / "resnet50.onnx", "--soc", "Ascend910A", "--batch", "1")
    assert result.exit_code == 0, result.stderr
    described = describe_model(tmp_path / "resnet50_bs1.emu.onnx")
    assert (described.kind, described.layout, described.batch) == ("emulated-om", "aipp", 1)
    assert described.manifest["precision_mode"] == "force_fp16"

    logits = run_artifact(described.path, sources, 1)
    want, margin = top1_and_margin(expected)
    got, _ = top1_and_margin(logits)
    assert list(want) == list(range(len(photos)))  # each photo its own class: the check is not vacuous
    assert np.array_equal(got, want)
    # float16 compute and the AIPP float16 input stay well inside the top-1 margins
    assert np.abs(logits - expected).max() < 0.25 * margin.min()


def test_small_model_emulated_at_batch_64_keeps_torch_top1(photos, tmp_path, cli):
    spec = PreprocessSpec(resize=72, crop=64)
    sources = source_images(photos, spec.resize)
    batch = np.resize(sources, (64, *sources.shape[1:]))  # 64 sources: the photos repeated
    model = tiny_torch_model(classes=10)
    inputs = torch.from_numpy(float_preprocess(batch, spec))
    with torch.no_grad():
        prototype_head(model[-1], model[:-1](inputs[: len(sources)]))
        expected = model(inputs).numpy()
    path = export_model(model, tmp_path / "small.onnx", spec)

    result = cli("atc", "--model", path, "--soc", "Ascend910A", "--batch", "1,64")
    assert result.exit_code == 0, result.stderr
    for size in (1, 64):
        described = describe_model(tmp_path / f"small_bs{size}.emu.onnx")
        assert described.batch == size and described.inputs[0].shape == (size, 72, 72, 3)
    logits = run_artifact(tmp_path / "small_bs64.emu.onnx", batch, 64)
    want, margin = top1_and_margin(expected)
    got, _ = top1_and_margin(logits)
    assert len(set(want[: len(sources)])) == len(sources)
    assert np.array_equal(got, want)
    assert np.abs(logits - expected).max() < 0.25 * margin.min()
    single = run_artifact(tmp_path / "small_bs1.emu.onnx", batch[:7], 1)
    np.testing.assert_array_equal(single.argmax(1), want[:7])
