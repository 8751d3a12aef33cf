"""Output files exactly as ais_bench writes them (BIN, NPY, TXT) and the writer thread."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from infer_kit.errors import InferKitError
from infer_kit.result_files import output_filename
from infer_kit.runtime.inputs import Batch
from infer_kit.runtime.output_writer import (
    OutputWriter,
    encode,
    encode_txt,
    existing_outputs,
    split_batch,
    write_output,
)


def _ais_bench_txt(ndata: np.ndarray) -> bytes:
    """ais_bench utils.save_data_to_files for .txt, restated with np.savetxt."""
    outdata = ndata.reshape(-1, ndata.shape[-1])
    fmt = "%f" if outdata.dtype in (np.float32, np.float16, np.float64) else "%d"
    buffer = io.BytesIO()
    for i in range(outdata.shape[0]):
        np.savetxt(buffer, np.c_[outdata[i]], fmt=fmt, newline=" ")
        buffer.write(b"\n")
    return buffer.getvalue()


@pytest.mark.parametrize("array", [
    np.random.default_rng(0).standard_normal((1, 1000)).astype(np.float32) * 50,
    np.random.default_rng(1).standard_normal((2, 3, 5)).astype(np.float16),
    np.array([[1e10, -0.0, 1e-7, np.nan, np.inf]], np.float64),
    np.arange(-6, 6, dtype=np.int64).reshape(1, 12),
    np.array([[3, 200, 7]], np.uint8),
    np.array([[True, False]]),
], ids=["f32-logits", "f16-3d", "f64-specials", "int64", "uint8", "bool"])
def test_txt_is_byte_identical_to_ais_bench(array):
    assert encode_txt(array) == _ais_bench_txt(array)


def test_txt_layout_one_line_per_row_trailing_space():
    text = encode_txt(np.array([[1.5, -2.0], [0.25, 3.0]], np.float32)).decode()
    assert text == "1.500000 -2.000000 \n0.250000 3.000000 \n"


def test_bin_and_npy_hold_the_array(tmp_path):
    array = np.random.default_rng(2).standard_normal((1, 10)).astype(np.float32)
    write_output(tmp_path / "a_0.bin", array, "BIN")
    array.tofile(tmp_path / "ref.bin")
    assert (tmp_path / "a_0.bin").read_bytes() == (tmp_path / "ref.bin").read_bytes()
    write_output(tmp_path / "a_0.npy", array, "NPY")
    loaded = np.load(tmp_path / "a_0.npy")
    assert loaded.shape == (1, 10) and loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, array)
    assert encode(array, "NPY") == (tmp_path / "a_0.npy").read_bytes()


@pytest.mark.parametrize("name, index, fmt, expected", [
    ("ILSVRC2012_val_00000001.bin", 0, "TXT", "ILSVRC2012_val_00000001_0.txt"),
    ("/data/a.b.c.npy", 2, "BIN", "a_2.bin"),
    ("196608-3.BIN", 1, "NPY", "196608-3_1.npy"),
])
def test_output_names_follow_ais_bench(name, index, fmt, expected):
    assert output_filename(name, index, fmt) == expected


def test_split_batch_refuses_outputs_without_the_batch_axis():
    assert [p.shape for p in split_batch(np.zeros((4, 10)), 4, output_index=0)] == [(1, 10)] * 4
    assert [p.shape for p in split_batch(np.zeros((4, 10)), 2, output_index=0)] == [(2, 10)] * 2
    with pytest.raises(InferKitError, match=r"save out files error array shape:\(3, 10\)"):
        split_batch(np.zeros((3, 10)), 2, output_index=0)


def test_writer_writes_real_slots_only_and_records_filesinfo(tmp_path):
    files = tuple(Path(f"/in/s{i}.bin") for i in range(3))
    batch = Batch(1, (files,), 4)
    logits = np.arange(40, dtype=np.float32).reshape(4, 10)
    writer = OutputWriter(tmp_path, "BIN")
    writer.submit(batch, [logits, logits[:, :2].copy()])
    writer.close()
    assert sorted(existing_outputs(tmp_path)) == sorted(f"s{i}_{k}.bin" for i in range(3) for k in range(2))
    np.testing.assert_array_equal(np.fromfile(tmp_path / "s2_0.bin", np.float32), logits[2])
    np.testing.assert_array_equal(np.fromfile(tmp_path / "s1_1.bin", np.float32), logits[1, :2])
    assert writer.filesinfo[5] == {"infiles": ["/in/s1.bin"],
                                   "outfiles": [str(tmp_path / "s1_0.bin"), str(tmp_path / "s1_1.bin")]}
    assert writer.files_written == 6 and not list(tmp_path.glob(".*partial"))


def test_writer_error_reaches_the_producer(tmp_path):
    writer = OutputWriter(tmp_path, "BIN", depth=1)
    bad = Batch(0, ((Path("a.bin"), Path("b.bin")),), 2)
    writer.submit(bad, [np.zeros((3, 4), np.float32)])
    with pytest.raises(InferKitError, match="save out files error"):
        writer.close()
