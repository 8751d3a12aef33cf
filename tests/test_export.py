"""`infer-kit export`: checkpoint shapes, strict loading, safety, verification, metadata."""

from __future__ import annotations

import fractions
import re

import numpy as np
import onnx
import pytest
import torch

from infer_kit.converter import export as export_module
from infer_kit.converter import verify as verify_module
from infer_kit.converter.checkpoint import load_checkpoint_model
from infer_kit.converter.export import export_onnx
from infer_kit.converter.verify import VerificationReport
from infer_kit.errors import InferKitError
from infer_kit.metadata import read_model_info
from infer_kit.registry import SEED_MODELS, create_model

SMALL = {"resize": 72, "crop": 64}  # a small input keeps exports of test models fast


@pytest.fixture(scope="module")
def resnet18_weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return create_model("resnet18", num_classes=5).state_dict()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SEED_MODELS))
def test_every_seed_arch_exports_verifies_and_stamps_its_spec(tmp_path, name):
    entry = SEED_MODELS[name]
    checkpoint = tmp_path / "weights.pth"
    torch.save(create_model(entry, num_classes=10).state_dict(), checkpoint)
    result = export_onnx(name, checkpoint, tmp_path / f"{name}.onnx")
    assert result.verification is not None and result.verification.passed
    assert result.verification.top1_agreement == 1.0
    assert result.num_classes == 10
    assert result.inputs[0].shape == (None, 3, entry.spec.crop, entry.spec.crop)
    assert result.outputs[0].shape == (None, 10)
    info = read_model_info(result.path)
    assert info.spec == entry.spec
    assert (info.arch, info.num_classes) == (name, 10)
    assert info.provenance["opset"] == "11"


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"epoch": 3, "arch": "resnet18", "best_acc1": 1.0, "optimizer": {},
                    "state_dict": {f"module.{k}": v for k, v in sd.items()}},
        lambda sd: {"model": sd},
        lambda sd: {"state_dict_ema": sd},
        lambda sd: {f"_orig_mod.{k}": v for k, v in sd.items()},
    ],
    ids=["bare", "pytorch-examples+module", "model", "state_dict_ema", "torch.compile"],
)
def test_accepted_checkpoint_shapes_load_the_same_weights(tmp_path, resnet18_weights, wrap):
    path = tmp_path / "ckpt.pth"
    torch.save(wrap(resnet18_weights), path)
    model, info = load_checkpoint_model("resnet18", path)
    assert info.num_classes == 5
    for key, value in model.state_dict().items():
        assert torch.equal(value, resnet18_weights[key]), key


@pytest.mark.parametrize("classes", [1001, 3])
def test_class_count_comes_from_the_head(tmp_path, classes):
    path = tmp_path / "ckpt.pth"
    torch.save(create_model("resnet18", num_classes=classes).state_dict(), path)
    result = export_onnx("resnet18", path, tmp_path / "m.onnx", spec_overrides=SMALL)
    assert result.outputs[0].shape == (None, classes)
    assert read_model_info(result.path).num_classes == classes


def test_checkpoint_of_another_arch_is_refused_naming_keys(tmp_path, resnet18_weights):
    path = tmp_path / "ckpt.pth"
    torch.save(resnet18_weights, path)
    with pytest.raises(InferKitError) as err:
        load_checkpoint_model("resnet50", path)
    message = err.value.one_line()
    assert "does not fit resnet50" in message
    assert "missing key(s) (layer1.0.conv3.weight" in message and "mis-shaped" in message


def test_one_missing_key_is_an_error_not_random_weights(tmp_path, resnet18_weights):
    weights = dict(resnet18_weights)
    del weights["layer4.1.bn2.weight"]
    path = tmp_path / "ckpt.pth"
    torch.save(weights, path)
    with pytest.raises(InferKitError, match=r"1 missing key\(s\) \(layer4.1.bn2.weight\)"):
        load_checkpoint_model("resnet18", path)


def test_pickle_with_custom_objects_is_refused_unless_trusted(tmp_path, resnet18_weights):
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": resnet18_weights, "note": fractions.Fraction(1, 3)}, path)
    with pytest.raises(InferKitError, match="needs arbitrary code to load.*Fraction.*--trust-checkpoint"):
        load_checkpoint_model("resnet18", path)
    model, info = load_checkpoint_model("resnet18", path, trust=True)
    assert info.num_classes == 5


def test_trainer_checkpoint_supplies_arch_and_spec(tmp_path, resnet18_weights):
    spec = {"resize": 36, "crop": 32, "interpolation": "bilinear", "mean": [0.3, 0.3, 0.3], "std": [0.4, 0.4, 0.4],
            "channel_order": "RGB", "long_side": "floor"}
    path = tmp_path / "model_best.pth"
    torch.save({"epoch": 1, "arch": "resnet18", "state_dict": resnet18_weights, "best_acc1": 50.0,
                "preprocess_spec": spec, "classes": list("abcde")}, path)
    result = export_onnx(None, path, tmp_path / "m.onnx")
    info = read_model_info(result.path)
    assert info.spec is not None and info.spec.to_dict() == spec
    assert info.arch == "resnet18" and info.provenance["classes"] == '["a", "b", "c", "d", "e"]'
    assert info.provenance["checkpoint_sha256"] == result.checkpoint.sha256


def test_spec_overrides_and_fixed_batch_round_trip_through_metadata(tmp_path, resnet18_weights):
    path = tmp_path / "w.pth"
    torch.save(resnet18_weights, path)
    overrides = {**SMALL, "channel_order": "BGR"}
    result = export_onnx("resnet18", path, tmp_path / "m.onnx", batch=4, spec_overrides=overrides)
    model = onnx.load(str(result.path))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [4, 3, 64, 64]
    assert read_model_info(result.path).spec == result.spec
    assert result.spec.channel_order == "BGR" and result.spec.crop == 64


def test_verification_on_real_images(tmp_path, resnet18_weights, photo_dir):
    path = tmp_path / "w.pth"
    torch.save(resnet18_weights, path)
    result = export_onnx("resnet18", path, tmp_path / "m.onnx", spec_overrides=SMALL, verify_images=photo_dir)
    report = result.verification
    assert report.images == len(list(photo_dir.glob("*.jpg")))
    assert report.samples == 3 * 2 + report.images  # padding of the last image batch is not counted
    assert report.passed and report.min_cosine > 0.9999


def test_failed_verification_goes_beside_and_never_replaces_a_good_model(tmp_path, resnet18_weights, monkeypatch):
    path = tmp_path / "w.pth"
    torch.save(resnet18_weights, path)
    failing = VerificationReport(6, 3, 0, 0.5, 0.1, 0.9, 0.5, 1e-4, False)
    monkeypatch.setattr(export_module, "verify_onnx", lambda *a, **k: failing)
    with pytest.raises(InferKitError, match="verification failed.*max \\|diff\\| 5.00e-01.*written to .*m.failed.onnx"):
        export_onnx("resnet18", path, tmp_path / "m.onnx", spec_overrides=SMALL)
    assert (tmp_path / "m.failed.onnx").is_file() and not (tmp_path / "m.onnx").exists()

    good = b"a good model, exported earlier"
    (tmp_path / "m.onnx").write_bytes(good)
    with pytest.raises(InferKitError, match="m.onnx was left as it was"):
        export_onnx("resnet18", path, tmp_path / "m.onnx", spec_overrides=SMALL)
    assert (tmp_path / "m.onnx").read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.failed.onnx", "m.onnx", "w.pth"]  # no temporary left


def test_report_flags_disagreement():
    ref = np.array([[1.0, 2.0], [3.0, 1.0]], dtype=np.float32)
    report = verify_module._report(ref, ref[:, ::-1].copy(), 1, 0, 1e-4, 1e-3)
    assert not report.passed and report.top1_agreement == 0.0


def test_cli_export_prints_a_summary(tmp_path, cli, resnet18_weights):
    path = tmp_path / "w.pth"
    torch.save({"epoch": 1, "arch": "resnet18", "state_dict": resnet18_weights}, path)
    out = tmp_path / "r18.onnx"
    result = cli("export", "--checkpoint", path, "-o", out, "--resize", "72", "--crop", "64", "--batch", "2")
    assert result.exit_code == 0, result.stderr
    assert f"exported resnet18 -> {out}" in result.stdout
    assert "actual_input_1 float32[2x3x64x64]" in result.stdout
    assert "output1 float32[2x5]" in result.stdout
    assert "top-1 agreement 100.0 %" in result.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--arch", "resnet5O", "--random-init"], "unknown model 'resnet5O'"),
        (["--arch", "resnet18", "--checkpoint", "missing.pth"], "checkpoint not found: missing.pth"),
        (["--arch", "resnet18", "--random-init", "--opset", "10"], "Invalid value for '--opset'"),
        (["--arch", "resnet18"], "no --checkpoint given"),
        (["--arch", "resnet18", "--random-init", "-o", "m.txt"], "must end in .onnx"),
        (["--arch", "resnet18", "--random-init", "--batch", "2", "--dynamic-batch"], "exclude each other"),
        (["--arch", "resnet18", "--random-init", "--from", "mindspore"], "--random-init reads no checkpoint"),
        (["--arch", "resnet18", "--random-init", "--ema"], "--random-init reads no checkpoint: drop --ema"),
    ],
)
def test_bad_arguments_give_one_line_errors(tmp_path, cli, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    result = cli("export", *args)
    assert result.exit_code != 0
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("infer-kit: error: ")


@pytest.mark.parametrize("folder, verify, fragment", [
    ("missing", True, "--verify-images: {} is not a folder of images"),
    ("empty", True, "--verify-images: no images"),
    ("empty", False, "--verify-images and --no-verify exclude each other"),
])
def test_verify_images_is_checked_before_the_model_is_loaded(tmp_path, monkeypatch, folder, verify, fragment):
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(export_module, "_build", lambda *a, **k: pytest.fail("loaded before --verify-images checks"))
    with pytest.raises(InferKitError, match=re.escape(fragment.format(tmp_path / folder))):
        export_onnx("resnet18", None, tmp_path / "m.onnx", random_init=True, verify=verify,
                    verify_images=tmp_path / folder)


def test_empty_or_corrupt_checkpoint_is_a_user_error(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(InferKitError, match="is empty"):
        load_checkpoint_model("resnet18", empty)
    for content in (b"PK\x03\x04 not really a zip", b"root:x:0:0:root:/root:/bin/bash\n", bytes(range(256))):
        corrupt = tmp_path / "corrupt.pth"
        corrupt.write_bytes(content)
        with pytest.raises(InferKitError, match="not a readable torch file"):
            load_checkpoint_model("resnet18", corrupt)
