"""`infer-kit dataset`: real labelled sets written as ImageNet-layout trees."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from infer_kit.errors import InferKitError
from infer_kit.labels import read_class_index, read_val_labels
from infer_kit.trainer.datasets import (
    FASHION_MNIST_SOURCE,
    IN_PROGRESS,
    MARKER,
    class_folder_names,
    load_fashion_mnist,
    read_idx,
    write_digits,
)

HAS_FASHION_MNIST = (FASHION_MNIST_SOURCE / "t10k-labels-idx1-ubyte.gz").is_file()


def _tree(root: Path, split: str) -> dict[str, list[str]]:
    return {d.name: sorted(p.name for p in d.iterdir()) for d in sorted((root / split).iterdir())}


def test_digits_tree_is_consistent_in_every_view(tmp_path: Path) -> None:
    root = tmp_path / "digits"
    result = write_digits(root, size=16, limit_train=60, limit_val=40)
    train, val = _tree(root, "train"), _tree(root, "val")
    assert list(train) == list(val) == result.classes and len(result.classes) == 10
    assert sorted(result.classes) == result.classes  # folder order is label order
    assert sum(map(len, train.values())) == 60 and sum(map(len, val.values())) == 40
    labels = read_val_labels(root / "val_label.txt")
    flat = sorted(p.name for p in (root / "val_flat").iterdir())
    assert len(flat) == 40 and {name.split(".")[0] for name in flat} == set(labels)
    for index, folder in enumerate(result.classes):
        for name in val[folder]:
            assert labels[name.split(".")[0]] == index
            assert (root / "val_flat" / name).read_bytes() == (root / "val" / folder / name).read_bytes()
    assert [folder for folder, _ in read_class_index(root / "class_index.json")] == result.classes
    with Image.open(root / "val_flat" / flat[0]) as image:
        assert image.size == (16, 16)


def test_rerun_is_a_noop_and_other_params_are_refused(tmp_path: Path, cli) -> None:
    root = tmp_path / "d"
    first = write_digits(root, size=12, limit_train=30, limit_val=20)
    stamp = (root / MARKER).stat().st_mtime_ns
    again = write_digits(root, size=12, limit_train=30, limit_val=20)
    assert first.written == 50 + 20 and again.written == 0 and again.already_complete
    assert (root / MARKER).stat().st_mtime_ns == stamp
    r = cli("dataset", "digits", root, "--size", "12", "--limit-train", "31", "--limit-val", "20")
    assert r.exit_code == 1 and "already holds a different dataset" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_interrupted_write_is_finished_by_a_rerun(tmp_path: Path) -> None:
    root = tmp_path / "d"
    write_digits(root, size=12, limit_train=30, limit_val=20)
    victims = sorted((root / "train").rglob("*.png"))[:7] + sorted((root / "val_flat").glob("*.png"))[:3]
    for path in victims:
        path.unlink()
    (root / MARKER).unlink()
    (root / IN_PROGRESS).write_text(json.dumps({"name": "digits",
                                                "params": {"size": 12, "limit_train": 30, "limit_val": 20}}))
    again = write_digits(root, size=12, limit_train=30, limit_val=20)
    assert again.written == 10 and not again.already_complete
    assert all(path.is_file() for path in victims)
    assert (root / MARKER).is_file() and not (root / IN_PROGRESS).exists()


def test_files_deleted_from_a_finished_dataset_are_written_again(tmp_path: Path) -> None:
    """The marker says "finished"; a rerun still checks that every file it records is there."""
    root = tmp_path / "d"
    write_digits(root, size=12, limit_train=30, limit_val=20)
    victims = sorted((root / "val").rglob("*.png"))[:2] + sorted((root / "val_flat").glob("*.png"))[-1:]
    before = {path: path.read_bytes() for path in victims}
    for path in victims:
        path.unlink()
    (root / "val_label.txt").unlink()
    again = write_digits(root, size=12, limit_train=30, limit_val=20)
    assert not again.already_complete and again.written == 3
    assert all(path.read_bytes() == data for path, data in before.items())
    assert len(read_val_labels(root / "val_label.txt")) == 20 and not (root / IN_PROGRESS).exists()
    assert write_digits(root, size=12, limit_train=30, limit_val=20).already_complete


def test_foreign_folder_is_not_written_into(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(InferKitError, match="not empty"):
        write_digits(tmp_path, size=8, limit_train=30, limit_val=20)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_limits_that_drop_a_class_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InferKitError, match="no images of class"):
        write_digits(tmp_path / "d", size=8, limit_train=30, limit_val=5)


def test_class_folder_names_sort_in_label_order() -> None:
    names = class_folder_names(["T-shirt/top", "Trouser", "Ankle boot"])
    assert names == ["0_tshirt_top", "1_trouser", "2_ankle_boot"]
    many = class_folder_names([f"c{i}" for i in range(12)])
    assert sorted(many) == many and many[10] == "10_c10"


def _idx(path: Path, array: np.ndarray, code: int = 0x08) -> None:
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(">u1" if code == 0x08 else ">i4").tobytes())


def test_read_idx_parses_limits_and_rejects_damage(tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 256, (5, 3, 4), dtype=np.uint8)
    _idx(tmp_path / "a.gz", data)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), data)
    assert np.array_equal(read_idx(tmp_path / "a.gz", limit=2), data[:2])
    wide = np.arange(-3, 3, dtype=np.int32)
    _idx(tmp_path / "w.gz", wide, code=0x0C)
    assert read_idx(tmp_path / "w.gz").tolist() == wide.tolist()
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x12\x34\x56\x78" + bytes(20)))
    with pytest.raises(InferKitError, match="not an IDX file"):
        read_idx(tmp_path / "bad.gz")
    (tmp_path / "short.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + bytes(4)))
    with pytest.raises(InferKitError, match="truncated"):
        read_idx(tmp_path / "short.gz")


def test_missing_source_names_the_debian_package(tmp_path: Path, cli) -> None:
    r = cli("dataset", "fashion-mnist", tmp_path / "out", "--source", tmp_path / "nowhere")
    assert r.exit_code == 1
    assert "apt-get install dataset-fashion-mnist" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not HAS_FASHION_MNIST, reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_pngs_hold_the_source_pixels_and_labels(tmp_path: Path, cli) -> None:
    root = tmp_path / "fm"
    r = cli("dataset", "fashion-mnist", root, "--limit-train", "200", "--limit-val", "100")
    assert r.exit_code == 0, r.stderr
    splits, names = load_fashion_mnist(limit_train=200, limit_val=100)
    assert names[0] == "T-shirt/top" and len(names) == 10
    folders = json.loads((root / MARKER).read_text())["classes"]
    labels = read_val_labels(root / "val_label.txt")
    for index in (0, 37, 99):
        key = f"val_{index + 1:08d}"
        assert labels[key] == splits["val"].labels[index]
        with Image.open(root / "val" / folders[labels[key]] / f"{key}.png") as image:
            assert image.mode == "L" and np.array_equal(np.asarray(image), splits["val"].images[index])
    train_counts = {folder: len(files) for folder, files in _tree(root, "train").items()}
    assert train_counts == {folders[c]: int((splits["train"].labels == c).sum()) for c in range(10)}
