"""`infer-kit train` end to end on a tiny real dataset (sklearn digits at 16 px, resnet10t)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from infer_kit.labels import read_val_labels
from infer_kit.spec import PreprocessSpec
from infer_kit.trainer.config import TrainConfig
from infer_kit.trainer.datasets import write_digits
from infer_kit.trainer.training import train

ARCH = "resnet10t"
SPEC = {"resize": 16, "crop": 16, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "interpolation": "bilinear"}
# One thread: on a shared 2-core machine OpenMP spinning makes 2 threads ~5x slower than 1 under load.
SPEC_ARGS = ("--resize", "16", "--crop", "16", "--mean", "0.5", "--std", "0.5", "--interpolation", "bilinear",
             "--threads", "1")


def _config(data: Path, output: Path, **changes: object) -> TrainConfig:
    values: dict = {"data": data, "arch": ARCH, "output": output, "epochs": 3, "batch_size": 32, "lr": 0.1,
                    "weight_decay": 5e-4, "augment": "none", "workers": 0, "print_freq": 100, "threads": 1,
                    "spec_overrides": dict(SPEC)}
    return TrainConfig(**(values | changes))


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("digits")
    write_digits(root, size=16, limit_train=320, limit_val=120)
    return root


@pytest.fixture(scope="module")
def trained(digits: Path, tmp_path_factory: pytest.TempPathFactory):
    return train(_config(digits, tmp_path_factory.mktemp("run")))


def test_training_learns_and_writes_export_ready_checkpoints(trained, digits: Path) -> None:
    history = trained.history
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["loss"] < 0.6 * history[0]["loss"]
    assert trained.best_acc1 > 60.0  # 10 classes: chance is 10 %
    state = torch.load(trained.output / "checkpoint.pth", weights_only=True)
    assert {"epoch", "arch", "state_dict", "best_acc1", "optimizer", "scaler", "scheduler", "preprocess_spec",
            "classes", "num_classes"} <= set(state)
    assert state["epoch"] == 3 and state["arch"] == ARCH and state["num_classes"] == 10
    assert state["classes"] == sorted(p.name for p in (digits / "train").iterdir())
    assert not any(key.startswith("module.") for key in state["state_dict"])
    assert PreprocessSpec.from_dict(state["preprocess_spec"]) == PreprocessSpec(**SPEC)
    assert state["scheduler"]["last_epoch"] == 3 * 10  # 320 images / 32 per step
    best = torch.load(trained.output / "model_best.pth", weights_only=True)
    assert best["best_acc1"] == pytest.approx(trained.best_acc1)
    assert best["best_acc1"] == pytest.approx(max(h["acc1"] for h in history))
    assert re.fullmatch(r"\| 1p-CPU \| \d+\.\d\d \| \d+\.\d \| 3 \| fp32 \| [\d.]+ \|", trained.table_row())


def test_exported_checkpoint_scores_the_trainers_accuracy_through_onnx(trained, digits: Path, cli,
                                                                      tmp_path: Path) -> None:
    import onnxruntime as ort

    from infer_kit.preprocess.transforms import float_tensor, load_rgb

    best = trained.output / "model_best.pth"
    onnx_path = tmp_path / "model.onnx"
    r = cli("export", "--checkpoint", best, "-o", onnx_path)
    assert r.exit_code == 0, r.stderr
    spec = PreprocessSpec.from_dict(torch.load(best, weights_only=True)["preprocess_spec"])
    labels = read_val_labels(digits / "val_label.txt")
    names = sorted(labels)
    batch = np.stack([float_tensor(load_rgb(digits / "val_flat" / f"{name}.png"), spec) for name in names])
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: batch})[0]
    top1 = 100.0 * np.mean(logits.argmax(axis=1) == np.array([labels[n] for n in names]))
    assert top1 == pytest.approx(trained.best_acc1, abs=1e-9)


def test_evaluate_mode_reproduces_the_checkpoint_accuracy(trained, digits: Path, cli) -> None:
    best = trained.output / "model_best.pth"
    r = cli("train", "--data", digits, "--resume", best, "--evaluate", "-b", "64", "--workers", "0", "--threads", "1")
    assert r.exit_code == 0, r.stderr
    row = r.stdout.strip().splitlines()[1]
    acc = float(row.split("|")[2])
    assert acc == pytest.approx(torch.load(best, weights_only=True)["best_acc1"], abs=0.006)


def test_resume_continues_exactly_where_an_interrupted_run_stopped(digits: Path, tmp_path: Path, monkeypatch) -> None:
    import infer_kit.trainer.training as stage

    changes = {"epochs": 2, "augment": "light", "workers": 1, "warmup_epochs": 0.5}
    whole = train(_config(digits, tmp_path / "whole", **changes))

    real_save = stage.save_checkpoint

    def save_then_interrupt(*args: object, **kwargs: object) -> Path:
        real_save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(stage, "save_checkpoint", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(_config(digits, tmp_path / "cut", **changes))
    monkeypatch.setattr(stage, "save_checkpoint", real_save)
    assert torch.load(tmp_path / "cut" / "checkpoint.pth", weights_only=True)["epoch"] == 1

    resumed = train(_config(digits, tmp_path / "cut", resume=Path("auto"), **changes))
    assert [h["epoch"] for h in resumed.history] == [2]
    assert resumed.history[0]["first_loss"] == whole.history[1]["first_loss"]
    assert resumed.history[0]["loss"] == whole.history[1]["loss"]
    ours, theirs = resumed.model.state_dict(), whole.model.state_dict()
    assert all(torch.equal(ours[key], theirs[key]) for key in theirs)

    again = train(_config(digits, tmp_path / "cut", resume=Path("auto"), **changes))
    assert again.epochs_run == 0 and again.acc1 == pytest.approx(resumed.acc1)


def test_amp_bf16_trains_on_cpu_with_fp32_master_weights(digits: Path, tmp_path: Path, monkeypatch) -> None:
    import infer_kit.trainer.training as stage

    head_dtypes: set[torch.dtype] = set()
    real_create = stage.create_model

    def create_and_watch(*args: object, **kwargs: object) -> torch.nn.Module:
        model = real_create(*args, **kwargs)
        model.get_classifier().register_forward_hook(lambda m, i, out: head_dtypes.add(out.dtype))
        return model

    monkeypatch.setattr(stage, "create_model", create_and_watch)
    result = train(_config(digits, tmp_path / "amp", epochs=2, amp=True, lr=0.05))
    assert result.precision == "bf16" and "| bf16 |" in result.table_row()
    assert head_dtypes == {torch.bfloat16}  # autocast was on in training and evaluation
    state = torch.load(tmp_path / "amp" / "checkpoint.pth", weights_only=True)
    floats = [t for t in state["state_dict"].values() if t.is_floating_point()]
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in floats)
    assert state["scaler"] == {}  # bf16 needs no loss scaling
    assert all(np.isfinite(h["loss"]) and np.isfinite(h["acc1"]) for h in result.history)
    # On this 2-core VM bf16 kernels give spurious NaN gradients when the thread is preempted (plain torch
    # reproduces it; fp32 does not): such steps are dropped, so learning is only required when none was.
    if not any(h["skipped"] for h in result.history):
        assert result.history[1]["loss"] < result.history[0]["loss"] and result.best_acc1 > 30.0


def test_performance_mode_reports_fps_only(digits: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "perf"
    r = cli("train", "--arch", ARCH, "--data", digits, "--performance", "--steps", "12", "-b", "32",
            "--workers", "0", "-o", out, *SPEC_ARGS)
    assert r.exit_code == 0, r.stderr
    name, acc, fps, epochs, amp = (cell.strip() for cell in r.stdout.strip().splitlines()[1].split("|")[1:6])
    assert (name, acc, epochs, amp) == ("1p-CPU", "-", "1", "fp32") and float(fps) > 0
    assert len(re.findall(r"Epoch: \[0\]\[\s*\d+/12\]", r.stderr)) >= 2
    assert not out.exists() or not any(out.iterdir())


def _tree(root: Path, layout: dict[str, list[str]]) -> Path:
    from PIL import Image

    for split, classes in layout.items():
        for cls in classes:
            (root / split / cls).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (16, 16), (40 * i, 0, 0)).save(root / split / cls / f"{i}.png")
    return root


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"train": ["a", "b"]}, "val split not found"),
        ({"train": ["a"], "val": ["a"]}, "has only one class (a)"),
        ({"train": ["a", "b"], "val": ["a", "c"]}, "only in train: b; only in val: c"),
        ({"train": [], "val": ["a", "b"]}, "has no class folders"),
    ],
)
def test_bad_data_gives_one_line_errors(tmp_path: Path, cli, layout: dict, message: str) -> None:
    data = _tree(tmp_path / "data", layout)
    (data / "train").mkdir(exist_ok=True)
    r = cli("train", "--arch", ARCH, "--data", data, "-o", tmp_path / "out", "--workers", "0", *SPEC_ARGS)
    assert r.exit_code == 1 and message in r.stderr, r.stderr
    assert r.stderr.startswith("infer-kit: error:") and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_resume_and_overwrite_give_one_line_errors(trained, digits: Path, tmp_path: Path, cli) -> None:
    ckpt = trained.output / "checkpoint.pth"
    cases = [
        (("--arch", "resnet18", "--resume", ckpt), "is for arch 'resnet10t', not 'resnet18'"),
        (("--arch", ARCH, "--resume", ckpt, "--crop", "12"), "trained with a different preprocessing (crop 16 vs 12)"),
        (("--arch", ARCH, "-o", trained.output), "checkpoint.pth already exists"),
        (("--arch", ARCH, "--evaluate"), "--evaluate needs a checkpoint"),
        (("--arch", ARCH, "--resume", tmp_path / "none.pth"), "checkpoint not found"),
    ]
    for args, message in cases:
        r = cli("train", "--data", digits, "--workers", "0", "--threads", "1", *args)
        assert r.exit_code == 1 and message in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1


def test_result_travels_without_the_model(trained) -> None:
    plain = replace(trained, model=None).to_dict()
    assert "model" not in plain and plain["table_row"] == trained.table_row()
    assert plain["checkpoint"].endswith("checkpoint.pth")
