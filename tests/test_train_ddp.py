"""Two-process DistributedDataParallel on CPU (gloo), started the way `--nproc 2` starts it."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from infer_kit.trainer.config import TrainConfig
from infer_kit.trainer.datasets import write_digits
from infer_kit.trainer.distributed import launch
from infer_kit.trainer.training import TrainResult, train_worker


def _train_and_keep_weights(config: TrainConfig) -> TrainResult:
    """Runs in each spawned rank: train, then save this rank's final weights for the parent to compare."""
    result = train_worker(config)
    torch.save(result.model.state_dict(), config.output / f"rank{os.environ['RANK']}.pt")
    return replace(result, model=None)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Path]:
    data = tmp_path_factory.mktemp("digits")
    write_digits(data, size=16, limit_train=256, limit_val=80)
    output = tmp_path_factory.mktemp("ddp")
    config = TrainConfig(data=data, arch="resnet10t", output=output, epochs=3, batch_size=16, lr=0.1,
                         weight_decay=5e-4, augment="light", workers=0, print_freq=100, nproc=2,
                         spec_overrides={"resize": 16, "crop": 16, "mean": (0.5,) * 3, "std": (0.5,) * 3})
    output.mkdir(exist_ok=True)
    return launch(_train_and_keep_weights, config), output


def test_two_ranks_learn_together_and_end_identical(ddp_run: tuple[TrainResult, Path]) -> None:
    result, output = ddp_run
    assert result.world_size == 2 and result.rank == 0
    assert result.table_row().startswith("| 2p-CPU |")
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.7 * losses[0]
    rank0 = torch.load(output / "rank0.pt", weights_only=True)
    rank1 = torch.load(output / "rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[key], rank1[key]) for key in rank0)  # parameters and BatchNorm buffers
    saved = torch.load(output / "checkpoint.pth", weights_only=True)["state_dict"]
    assert all(torch.equal(saved[key], rank0[key]) for key in rank0)


def test_each_rank_trains_on_its_own_half_of_every_epoch(ddp_run: tuple[TrainResult, Path]) -> None:
    result, output = ddp_run
    state = torch.load(output / "checkpoint.pth", weights_only=True)
    assert state["scheduler"]["last_epoch"] == 3 * (256 // 2 // 16)  # 8 steps per epoch per rank, not 16
    assert state["train_config"]["nproc"] == 2


def test_a_user_error_in_a_rank_comes_back_as_one_line(tmp_path: Path) -> None:
    config = TrainConfig(data=tmp_path / "missing", arch="resnet10t", output=tmp_path / "out", nproc=2)
    from infer_kit.errors import InferKitError

    with pytest.raises(InferKitError, match=r"^rank \d: data folder not found"):
        launch(train_worker, config)
