"""Runner registry, backend choice, and the ONNX Runtime and torch runners."""

from __future__ import annotations

import numpy as np
import pytest
from test_run_support import SPEC, emulated_artifact, float_folder, float_model, weights

from infer_kit.artifacts import TensorDesc, describe_model
from infer_kit.errors import InferKitError
from infer_kit.runtime.base import choose_backend, list_runners, open_runner, with_batch
from infer_kit.runtime.onnxrt import choose_providers
from infer_kit.runtime.stage import run


def test_registry_lists_every_runner_with_a_reason():
    statuses = {s.name: s for s in list_runners()}
    assert set(statuses) == {"onnxruntime", "ascend", "torch"}
    assert statuses["onnxruntime"].available and statuses["torch"].available
    assert all(s.reason for s in statuses.values())


def test_auto_backend_goes_by_model_kind(tmp_path):
    assert choose_backend("auto", describe_model(emulated_artifact(tmp_path))) == "onnxruntime"
    assert choose_backend("auto", describe_model(float_model(tmp_path / "m.onnx"))) == "onnxruntime"
    from test_run_support import om_model

    (tmp_path / "om").mkdir()
    assert choose_backend("auto", describe_model(om_model(tmp_path / "om", batch=3))) == "ascend"


def test_only_the_batch_axis_may_be_dynamic():
    assert with_batch(TensorDesc("x", (None, 3, 8, 8), "float32"), 5).shape == (5, 3, 8, 8)
    with pytest.raises(InferKitError, match="dynamic dimensions besides the batch"):
        with_batch(TensorDesc("x", (None, 3, None, 8), "float32"), 5)


def test_gpu_providers_come_first_and_bind_the_device():
    chosen = choose_providers(["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"], 1)
    assert chosen == [("TensorrtExecutionProvider", {"device_id": 1}), ("CUDAExecutionProvider", {"device_id": 1}),
                      "CPUExecutionProvider"]
    assert choose_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_onnxruntime_runner_fixes_a_dynamic_batch_and_honours_threads(tmp_path):
    runner = open_runner("onnxruntime", float_model(tmp_path / "m.onnx", batch=None), batch=3, threads=1)
    assert runner.batch == 3 and runner.threads == 1 and runner.provider == "CPUExecutionProvider"
    assert runner.inputs[0].shape == (3, 3, SPEC.crop, SPEC.crop) and runner.outputs[0].shape == (3, 10)
    data = np.random.default_rng(0).standard_normal((3, 3, SPEC.crop, SPEC.crop)).astype(np.float32)
    w, b = weights()
    np.testing.assert_allclose(runner.infer([data])[0], data.mean(axis=(2, 3)) @ w + b, rtol=1e-4, atol=1e-5)


def test_a_corrupt_model_is_one_line(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(InferKitError, match="bad.onnx"):
        open_runner("onnxruntime", path)


def _tiny_module():
    import torch

    w, b = weights()

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 10)
            with torch.no_grad():
                self.fc.weight.copy_(torch.from_numpy(w.T))
                self.fc.bias.copy_(torch.from_numpy(b))

        def forward(self, x):
            return self.fc(x.mean(dim=(2, 3)))

    return Tiny()


def test_torch_runner_agrees_with_onnxruntime_on_the_same_model(tmp_path):
    from infer_kit.runtime.torch_runner import TorchRunner

    torch_runner = TorchRunner(_tiny_module(), (2, 3, SPEC.crop, SPEC.crop), threads=1)
    ort_runner = open_runner("onnxruntime", float_model(tmp_path / "m.onnx", batch=2))
    data = np.random.default_rng(1).standard_normal((2, 3, SPEC.crop, SPEC.crop)).astype(np.float32)
    np.testing.assert_allclose(torch_runner.infer([data])[0], ort_runner.infer([data])[0], rtol=1e-4, atol=1e-5)
    assert torch_runner.outputs[0].shape == (2, 10) and torch_runner.outputs[0].dtype == "float32"


def test_run_with_a_torch_checkpoint_matches_the_module(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("infer_kit.converter.checkpoint")
    from infer_kit.registry import create_model, get_model

    module = create_model("resnet18", num_classes=4).eval()
    checkpoint = tmp_path / "r18.pth"
    torch.save(module.state_dict(), checkpoint)
    spec = get_model("resnet18").spec
    folder = float_folder(tmp_path / "prep", 2, spec=spec)
    result = run(checkpoint, folder, tmp_path / "out", output_dirname="r", backend="torch", arch="resnet18",
                 warmup_count=0)
    assert result.summary["infer_kit"]["backend"] == "torch"
    sample = np.fromfile(folder / "img_1.bin", np.float32).reshape(1, *spec.sample_shape("float"))
    with torch.inference_mode():
        expected = module(torch.from_numpy(sample)).numpy()[0]
    np.testing.assert_allclose(np.fromfile(result.result_dir / "img_1_0.bin", np.float32), expected,
                               rtol=1e-4, atol=1e-4)


def test_torch_backend_refuses_an_onnx_model(tmp_path):
    with pytest.raises(InferKitError, match="the torch backend runs a checkpoint"):
        run(float_model(tmp_path / "m.onnx"), backend="torch")


def test_a_runner_refuses_an_option_it_does_not_take_and_closes_as_a_context_manager(tmp_path):
    model = float_model(tmp_path / "m.onnx", batch=2)
    with pytest.raises(InferKitError, match="the onnxruntime backend does not take arch"):
        open_runner("onnxruntime", model, arch="resnet18")
    with open_runner("onnxruntime", model, threads=1) as runner:
        data = np.zeros((2, 3, SPEC.crop, SPEC.crop), np.float32)
        runner.infer([data])
        runner.infer([data])
        assert len(runner.timings().host_compute_ms) == 2 and runner.timings().device_compute_ms is None
        runner.reset_timings()
        assert runner.timings().compute_ms == []
    assert runner._session is None  # closed on leaving the block
