"""The trainer's parts: spec-driven transforms, split scanning, schedule, optimizer, checkpoints, precision."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from infer_kit.checkpoint import TrainingCheckpoint, read_training_checkpoint
from infer_kit.errors import InferKitError
from infer_kit.presets import get_preset
from infer_kit.spec import PreprocessSpec
from infer_kit.trainer.checkpoint import check_compatible, save_checkpoint
from infer_kit.trainer.config import TrainConfig
from infer_kit.trainer.data import ShardSampler, check_same_classes, eval_transform, scan_split, train_transform
from infer_kit.trainer.engine import resolve_precision, topk_correct
from infer_kit.trainer.schedule import build_scheduler, lr_factor
from infer_kit.trainer.training import build_optimizer

SPECS = {
    "resnet": get_preset("resnet"),
    "bgr": get_preset("efficientnetB3"),
    "round-bicubic": PreprocessSpec(resize=73, crop=64, interpolation="bicubic", long_side="round",
                                    mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3)),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_eval_transform_is_bit_identical_to_the_pipeline_preprocessing(name: str, photos) -> None:
    from infer_kit.preprocess.transforms import float_tensor

    spec = SPECS[name]
    transform = eval_transform(spec)
    for photo in list(photos.values())[:3]:
        ours = transform(photo)
        assert ours.dtype == torch.float32 and tuple(ours.shape) == spec.sample_shape("float")
        assert torch.equal(ours, torch.from_numpy(float_tensor(photo, spec)))


def test_bgr_spec_reverses_the_planes(photos) -> None:
    rgb = PreprocessSpec(resize=40, crop=32)
    photo = photos["chelsea"]
    bgr = eval_transform(rgb.with_overrides(channel_order="BGR"))(photo)
    assert torch.equal(bgr, eval_transform(rgb)(photo).flip(0))


@pytest.mark.parametrize("augment", ["standard", "light", "none"])
def test_train_transforms_end_in_the_model_input_format(augment: str, photos) -> None:
    spec = PreprocessSpec(resize=40, crop=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    torch.manual_seed(0)
    outputs = [train_transform(spec, augment)(photos["coffee"]) for _ in range(3)]
    assert all(tuple(o.shape) == (3, 32, 32) and o.dtype == torch.float32 for o in outputs)
    assert all(o.min() >= -2.0 - 1e-6 and o.max() <= 2.0 + 1e-6 for o in outputs)  # (x - .5) / .25 bounds
    identical = all(torch.equal(outputs[0], o) for o in outputs[1:])
    assert identical == (augment == "none")
    if augment == "none":
        assert torch.equal(outputs[0], eval_transform(spec)(photos["coffee"]))


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)


def test_scan_split_indexes_classes_in_sorted_order(tmp_path: Path) -> None:
    for cls, count in (("b_cat", 2), ("a_dog", 3)):
        for i in range(count):
            _image(tmp_path / "train" / cls / f"{i}.png")
    (tmp_path / "train" / "a_dog" / "notes.txt").write_text("not an image")
    split = scan_split(tmp_path, "train")
    assert split.classes == ["a_dog", "b_cat"]
    assert sorted(label for _, label in split.samples) == [0, 0, 0, 1, 1]
    assert all(split.classes[label] == path.parent.name for path, label in split.samples)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({}, "data folder not found"),
        ({"val/a/0.png": 1}, "train split not found"),
        ({"train/.hidden/0.png": 1}, "has no class folders"),
        ({"train/a/0.png": 1, "train/b/x.txt": 1}, "has no images"),
        ({"train/a/0.png": 1}, "only one class"),
    ],
)
def test_scan_split_errors(tmp_path: Path, layout: dict[str, int], message: str) -> None:
    root = tmp_path / "data"
    for relative in layout:
        target = root / relative
        if target.suffix == ".png":
            _image(target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("x")
    with pytest.raises(InferKitError, match=message):
        scan_split(root, "train")


def test_classes_that_differ_between_splits_are_named(tmp_path: Path) -> None:
    for relative in ("train/cat/0.png", "train/dog/0.png", "val/cat/0.png", "val/fox/0.png"):
        _image(tmp_path / relative)
    with pytest.raises(InferKitError, match=r"only in train: dog; only in val: fox"):
        check_same_classes(scan_split(tmp_path, "train"), scan_split(tmp_path, "val"))


def test_warmup_then_cosine_and_step_schedules() -> None:
    common = {"steps_per_epoch": 10, "epochs": 5, "warmup_epochs": 1.0}
    cosine = [lr_factor(s, kind="cosine", **common) for s in range(50)]
    assert cosine[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert cosine[10] == pytest.approx(1.0) and all(a >= b for a, b in zip(cosine[10:], cosine[11:], strict=False))
    assert cosine[49] < 0.01 and cosine[30] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    step = [lr_factor(s, kind="step", step_epochs=(2, 4), gamma=0.1, **common) for s in range(50)]
    assert step[10:20] == [1.0] * 10 and step[20] == pytest.approx(0.1) and step[45] == pytest.approx(0.01)
    no_warmup = lr_factor(0, steps_per_epoch=10, epochs=5, warmup_epochs=0, kind="cosine")
    assert no_warmup == 1.0


def test_scheduler_sets_the_factor_times_the_base_lr_every_step() -> None:
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.4)
    scheduler = build_scheduler(optimizer, steps_per_epoch=4, epochs=3, warmup_epochs=0.5, kind="cosine")
    seen = []
    for _ in range(12):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [0.4 * lr_factor(s, steps_per_epoch=4, epochs=3, warmup_epochs=0.5, kind="cosine") for s in range(12)]
    assert seen == pytest.approx(expected)


def test_optimizer_exempts_norm_and_bias_from_weight_decay() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.LazyLinear(2))
    model(torch.zeros(1, 3, 5, 5))
    optimizer = build_optimizer(model, lr=0.1, momentum=0.9, weight_decay=5e-4)
    by_decay = {group["weight_decay"]: group["params"] for group in optimizer.param_groups}
    assert {tuple(p.shape) for p in by_decay[5e-4]} == {(4, 3, 3, 3), (2, 36)}
    assert len(by_decay[0.0]) == 4 and all(p.ndim == 1 for p in by_decay[0.0])
    assert optimizer.param_groups[0]["momentum"] == 0.9


def test_topk_correct_counts_hits() -> None:
    output = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.2], [0.3, 0.2, 0.5]])
    target = torch.tensor([1, 2, 1])
    assert topk_correct(output, target, ks=(1, 2, 5)) == [1, 2, 3]


def test_shards_cover_every_image_once() -> None:
    shards = [list(ShardSampler(11, rank, 3)) for rank in range(3)]
    assert sorted(i for shard in shards for i in shard) == list(range(11))


def test_amp_on_cpu_autocasts_to_bfloat16() -> None:
    precision = resolve_precision("cpu", amp=True)
    assert precision.label == "bf16" and not precision.grad_scaler().is_enabled()
    with precision.autocast():
        out = torch.nn.Linear(8, 4)(torch.randn(2, 8))
    assert out.dtype == torch.bfloat16
    assert resolve_precision("cpu", amp=False).label == "fp32"
    with pytest.raises(InferKitError, match="fp16 is not supported on cpu"):
        resolve_precision("cpu", amp=True, amp_dtype="fp16")


def _state(arch: str = "resnet10t", epoch: int = 1) -> TrainingCheckpoint:
    return TrainingCheckpoint(epoch=epoch, arch=arch, state_dict={"w": torch.ones(2)}, best_acc1=50.0, optimizer={},
                              scaler={}, scheduler={"last_epoch": 3}, spec=PreprocessSpec(8, 8), classes=["a", "b"],
                              train_config={"lr_step_epochs": (30,), "data": Path("d")})


def test_checkpoints_are_atomic_and_load_weights_only(tmp_path: Path) -> None:
    save_checkpoint(_state(), tmp_path, is_best=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth", "model_best.pth"]
    for name in ("checkpoint.pth", "model_best.pth"):
        state = torch.load(tmp_path / name, weights_only=True)
        assert state["classes"] == ["a", "b"] and torch.equal(state["state_dict"]["w"], torch.ones(2))
    save_checkpoint(_state(epoch=2), tmp_path, is_best=False)
    assert read_training_checkpoint(tmp_path / "checkpoint.pth").epoch == 2
    restored = read_training_checkpoint(tmp_path / "model_best.pth")
    assert (restored.epoch, restored.arch, restored.classes, restored.spec) == (1, "resnet10t", ["a", "b"],
                                                                               PreprocessSpec(8, 8))
    assert restored.train_config == {"lr_step_epochs": [30], "data": "d"}  # plain types: loads weights-only


def test_foreign_or_broken_checkpoints_are_refused(tmp_path: Path) -> None:
    torch.save({"w": torch.ones(1)}, tmp_path / "bare.pth")
    with pytest.raises(InferKitError, match="not an infer-kit training checkpoint"):
        read_training_checkpoint(tmp_path / "bare.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InferKitError, match="is not a readable torch file"):
        read_training_checkpoint(tmp_path / "junk.pth")
    with pytest.raises(InferKitError, match="is for arch 'resnet10t', not 'resnet18'"):
        check_compatible(_state(), "c.pth", arch="resnet18", classes=["a", "b"])
    with pytest.raises(InferKitError, match="trained on 2 classes"):
        check_compatible(_state(), "c.pth", arch=None, classes=["a", "b", "c"])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"arch": None}, "no model given"),
        ({"evaluate": True}, "--evaluate needs a checkpoint"),
        ({"warmup_epochs": 5, "epochs": 5}, "leaves no epoch after warmup"),
        ({"nproc": 4, "device_list": (0, 1)}, "needs 4 devices"),
        ({"lr_scheduler": "linear"}, "unknown value 'linear'"),
    ],
)
def test_config_rejects_unusable_values(changes: dict, message: str) -> None:
    values = {"data": Path("d"), "arch": "resnet10t"} | changes
    with pytest.raises(InferKitError, match=message):
        TrainConfig(**values)


def test_seeded_epochs_replay_identically() -> None:
    from infer_kit.trainer.training import seed_everything

    seed_everything(3, 2, 0)
    first = (torch.rand(3), np.random.rand())
    seed_everything(3, 2, 1)
    other_rank = torch.rand(3)
    seed_everything(3, 2, 0)
    assert torch.equal(first[0], torch.rand(3)) and first[1] == np.random.rand()
    assert not torch.equal(first[0], other_rank)


def test_bf16_steps_with_non_finite_gradients_are_dropped_cleanly() -> None:
    from infer_kit.trainer.distributed import DistEnv
    from infer_kit.trainer.engine import train_one_epoch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 3))
    batches = [(torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])) for _ in range(3)]
    batches[1][0][0, 0, 0, 0] = float("inf")  # poisons the gradients and BatchNorm's statistics
    optimizer = build_optimizer(model, lr=0.1, momentum=0.9, weight_decay=0.0)
    scheduler = build_scheduler(optimizer, steps_per_epoch=3, epochs=1, warmup_epochs=0, kind="cosine")
    precision = resolve_precision("cpu", amp=True)
    env = DistEnv(0, 1, 0, torch.device("cpu"), None)
    stats = train_one_epoch(model, batches, criterion=torch.nn.CrossEntropyLoss(), optimizer=optimizer,
                            scheduler=scheduler, scaler=precision.grad_scaler(), precision=precision, env=env,
                            epoch=0, steps=3, print_freq=10, batch_size=4)
    assert stats.skipped == 1 and stats.steps == 3 and math.isfinite(stats.loss)
    assert all(torch.isfinite(t).all() for t in [*model.parameters(), *model.buffers()])
    assert int(model[1].num_batches_tracked) == 2 and scheduler.last_epoch == 3
