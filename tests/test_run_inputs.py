"""Input mapping as ais_bench does it: file selection, natural sort, files per batch, padding, shards."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infer_kit.artifacts import TensorDesc
from infer_kit.errors import InferKitError
from infer_kit.result_files import natural_sort
from infer_kit.runtime.inputs import (
    BatchReader,
    check_file_sizes,
    files_per_batch,
    list_input_files,
    parse_shard,
    plan_batches,
    pure_feeds,
    read_batch_input,
    resolve_input_files,
    shard_range,
    split_contiguous,
)


def _ais_bench_natural_sort(items):
    """ais_bench utils.natural_sort, restated."""
    def key(text):
        return [int(c) if c.isdigit() else c.lower() for c in re.split("([0-9]+)", text)]
    return sorted(items, key=key)


def test_natural_sort_orders_numbers_by_value_and_ignores_case():
    names = ["img10.bin", "img2.bin", "IMG1.bin", "img1_b.bin", "a100.bin", "a20.bin"]
    assert natural_sort(names) == ["a20.bin", "a100.bin", "IMG1.bin", "img1_b.bin", "img2.bin", "img10.bin"]


@given(st.lists(st.from_regex(r"[A-Za-z_]{0,3}[0-9]{0,4}[a-z]{0,2}[0-9]{0,2}", fullmatch=True), max_size=30))
def test_natural_sort_matches_ais_bench(names):
    assert natural_sort(names) == _ais_bench_natural_sort(names)


def test_folder_listing_takes_only_bin_and_npy_in_natural_order(tmp_path):
    for name in ["s10.bin", "s9.BIN", "s1.npy", "s2.NPY", "manifest.json", "val_label.txt", "x.bin.txt", "s3.jpg"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_input_files(tmp_path)] == ["s1.npy", "s2.NPY", "s9.BIN", "s10.bin"]


def test_folder_without_input_files_is_an_error(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    with pytest.raises(InferKitError, match=r"holds no input files \(valid: \*\.bin \*\.BIN \*\.npy \*\.NPY\)"):
        list_input_files(tmp_path)
    with pytest.raises(InferKitError, match="input folder not found"):
        list_input_files(tmp_path / "missing")


@pytest.mark.parametrize("tensor, file, expected", [(3 * 196608, 196608, 3), (602112, 602112, 1), (64, 16, 4)])
def test_files_per_batch_is_tensor_bytes_over_file_bytes(tensor, file, expected):
    assert files_per_batch(tensor, file) == expected


@pytest.mark.parametrize("tensor, file", [(196608, 602112), (1000, 300), (100, 0)])
def test_files_per_batch_mismatch_uses_ais_bench_wording(tensor, file):
    with pytest.raises(InferKitError, match=f"arg0 tensorsize: {tensor} filesize: {file} not match"):
        files_per_batch(tensor, file)


def _bins(folder, sizes):
    folder.mkdir(exist_ok=True)
    paths = []
    for i, size in enumerate(sizes):
        path = folder / f"f{i}.bin"
        path.write_bytes(bytes([i % 256]) * size)
        paths.append(path)
    return paths


def test_one_file_of_the_wrong_size_is_refused_naming_it(tmp_path):
    _bins(tmp_path, [12, 12, 12])
    (tmp_path / "f2.bin").write_bytes(b"x" * 13)
    desc = TensorDesc("x", (2, 3), "float32")
    with pytest.raises(InferKitError, match=r"f2\.bin is 13 bytes but f0\.bin is 12"):
        check_file_sizes([list_input_files(tmp_path)], [desc])


def test_batches_pad_the_short_last_one_with_its_first_file(tmp_path):
    files = _bins(tmp_path, [4] * 7)
    desc = TensorDesc("x", (3, 4), "uint8")
    per_batch = check_file_sizes([files], [desc])
    batches = plan_batches([files], per_batch)
    assert [(b.real, b.padded) for b in batches] == [(3, 0), (3, 0), (1, 2)]
    assert [p.name for p in batches[2].keys] == ["f6.bin"]
    last = read_batch_input(batches[2].files[0], desc, batches[2].size)
    assert last.shape == (3, 4) and last.dtype == np.uint8
    assert last.tolist() == [[6] * 4] * 3
    middle = read_batch_input(batches[1].files[0], desc, 3)
    assert middle[:, 0].tolist() == [3, 4, 5]


def test_npy_files_contribute_their_array_bytes(tmp_path):
    arrays = [np.full((2, 2), i, np.float32) for i in range(3)]
    for i, a in enumerate(arrays):
        np.save(tmp_path / f"a{i}.npy", a)
    desc = TensorDesc("x", (2, 2, 2), "float32")
    files = list_input_files(tmp_path)
    assert check_file_sizes([files], [desc]) == 2
    batch = plan_batches([files], 2)[1]
    data = read_batch_input(batch.files[0], desc, 2)
    np.testing.assert_array_equal(data, np.stack([arrays[2], arrays[2]]))


def test_one_folder_per_model_input_and_counts_must_agree(tmp_path):
    a = tmp_path / "a"
    b = tmp_path / "b"
    _bins(a, [4, 4])
    _bins(b, [8, 8])
    lists = resolve_input_files(f"{a},{b}", 2)
    assert [[p.name for p in files] for files in lists] == [["f0.bin", "f1.bin"], ["f0.bin", "f1.bin"]]
    with pytest.raises(InferKitError, match=r"names 2 folder\(s\) but the model has 1 input"):
        resolve_input_files(f"{a},{b}", 1)
    (b / "f1.bin").unlink()
    with pytest.raises(InferKitError, match="different numbers of files"):
        resolve_input_files(f"{a},{b}", 2)


def test_a_comma_list_of_files_splits_into_one_chunk_per_input(tmp_path):
    files = _bins(tmp_path, [4] * 4)
    lists = resolve_input_files(",".join(str(f) for f in files), 2)
    assert [[p.name for p in chunk] for chunk in lists] == [["f0.bin", "f1.bin"], ["f2.bin", "f3.bin"]]


@given(st.integers(0, 500), st.integers(1, 12))
def test_shards_cover_every_file_once_in_order(total, n):
    ranges = [shard_range(total, (k, n)) for k in range(1, n + 1)]
    covered = [i for start, stop in ranges for i in range(start, stop)]
    assert covered == list(range(total))
    assert max(b - a for a, b in ranges) - min(b - a for a, b in ranges) <= 1
    assert split_contiguous(total, n) == ranges


@pytest.mark.parametrize("text", ["0/4", "5/4", "1-4", "a/b", "1/0"])
def test_bad_shard_specs_are_errors(text):
    with pytest.raises(InferKitError, match="--shard"):
        parse_shard(text)


def test_pure_data_is_zero_or_random_bytes_viewed_as_the_input():
    desc = TensorDesc("x", (2, 3), "uint8")
    assert not pure_feeds([desc], "zero")[0].any()
    random_feed = pure_feeds([desc], "random")[0]
    assert random_feed.shape == (2, 3) and random_feed.dtype == np.uint8
    assert pure_feeds([TensorDesc("f", (4,), "float32")], "zero")[0].dtype == np.float32


def test_reader_yields_every_batch_in_order_and_stays_bounded(tmp_path):
    files = _bins(tmp_path, [2] * 40)
    desc = TensorDesc("x", (4, 2), "uint8")
    batches = plan_batches([files], 4)
    reader = BatchReader(batches, [desc], depth=2)
    seen = []
    for batch, feeds in reader:
        assert reader._queue.qsize() <= 2
        seen.append((batch.index, feeds[0][:, 0].tolist()))
    assert seen == [(n, [(4 * n + k) % 256 for k in range(4)]) for n in range(10)]


def test_reader_hands_a_read_error_to_the_consumer(tmp_path):
    files = _bins(tmp_path, [2] * 8)
    batches = plan_batches([files], 2)
    files[5].write_bytes(b"abc")
    reader = BatchReader(batches, [TensorDesc("x", (2, 2), "uint8")], depth=1)
    with pytest.raises(InferKitError, match="f5.bin changed size"):
        list(reader)


def test_closing_a_reader_early_stops_its_thread(tmp_path):
    files = _bins(tmp_path, [2] * 50)
    reader = BatchReader(plan_batches([files], 1), [TensorDesc("x", (1, 2), "uint8")], depth=1)
    next(iter(reader))
    reader.close()
    assert not reader._thread.is_alive()


def test_listing_is_independent_of_creation_order(tmp_path):
    names = [f"ILSVRC2012_val_{i:08d}.bin" for i in range(1, 30)] + [f"x{i}.bin" for i in range(12)]
    shuffled = names[:]
    random.Random(3).shuffle(shuffled)
    for name in shuffled:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_input_files(tmp_path)] == _ais_bench_natural_sort(names)
