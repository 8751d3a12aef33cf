"""Input files -> model input batches, the way ais_bench maps them.

* A folder contributes only ``*.bin|*.BIN|*.npy|*.NPY`` files, naturally sorted
  (``img2`` before ``img10``, case-insensitive), one folder per model input; or ``--input``
  is a comma list of files, split into one consecutive chunk per model input.
* Files per batch = model input bytes / file bytes; when that is not a whole number the
  run stops with ais_bench's ``arg0 tensorsize: ... filesize: ... not match``.
* A ``.bin`` is raw bytes (its dtype is never interpreted); a ``.npy`` contributes its
  array's bytes. A short last batch is padded with copies of that batch's first file, and
  outputs of padded slots are not written.

A reader thread prefetches the next batches into a bounded queue, so compute never waits
for disk and memory stays bounded whatever the folder size.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer_kit.artifacts import TensorDesc
from infer_kit.errors import InferKitError
from infer_kit.npy import read_npy_header
from infer_kit.result_files import natural_sort

if TYPE_CHECKING:
    import numpy as np

INPUT_SUFFIXES = (".bin", ".BIN", ".npy", ".NPY")
PURE_INFER_NAME = "pure_infer_data"


def list_input_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The input files of one folder, naturally sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InferKitError(f"input folder not found: {folder}")
    try:
        names = [entry.name for entry in os.scandir(folder) if entry.name.endswith(INPUT_SUFFIXES)]
    except OSError as exc:
        raise InferKitError(f"cannot list input folder {folder}: {exc.strerror}") from None
    if not names:
        raise InferKitError(
            f"{folder} holds no input files (valid: *.bin *.BIN *.npy *.NPY)",
            hint="point --input at the folder 'infer-kit preprocess' wrote",
        )
    return [folder / name for name in natural_sort(sorted(names))]


def split_input_arg(value: str | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """``--input`` as paths: a comma list, one path, or a sequence of them."""
    paths = [Path(item) for item in typed_inputs(value)]
    if not paths:
        raise InferKitError("--input is empty", hint="give a folder (or one per model input, comma-separated)")
    return paths


def resolve_input_files(value: str | Sequence[str | os.PathLike[str]], n_inputs: int) -> list[list[Path]]:
    """One naturally sorted file list per model input, from folders or a comma list of files."""
    paths = split_input_arg(value)
    if paths[0].is_dir():
        if len(paths) != n_inputs:
            raise InferKitError(
                f"--input names {len(paths)} folder(s) but the model has {n_inputs} input(s)",
                hint="give one folder per model input, comma-separated, in the model's input order",
            )
        lists = [list_input_files(p) for p in paths]
    elif paths[0].is_file():
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise InferKitError(f"input file not found: {missing[0]}")
        if len(paths) % n_inputs:
            raise InferKitError(
                f"--input lists {len(paths)} files, not a multiple of the model's {n_inputs} inputs"
            )
        chunk = len(paths) // n_inputs
        lists = [paths[i * chunk:(i + 1) * chunk] for i in range(n_inputs)]
    else:
        raise InferKitError(f"input not found: {paths[0]}", hint="give an existing folder or file")
    counts = {len(files) for files in lists}
    if len(counts) > 1:
        detail = ", ".join(f"{files[0].parent}: {len(files)}" for files in lists)
        raise InferKitError(f"the input folders hold different numbers of files ({detail})",
                            hint="each model input needs one file per sample")
    return lists


def file_nbytes(path: Path) -> int:
    """Bytes a file contributes to a batch: its size for raw files, the array's bytes for .npy."""
    try:
        if path.suffix in (".npy", ".NPY"):
            return _npy_nbytes(path)
        return path.stat().st_size
    except OSError as exc:
        raise InferKitError(f"cannot read input file {path}: {exc.strerror}") from None


def _npy_nbytes(path: Path) -> int:
    import math

    try:
        with open(path, "rb") as handle:
            dtype, shape = read_npy_header(handle, str(path))
    except ValueError as exc:
        raise InferKitError(f"input file {path} is not a valid .npy file ({exc})") from None
    return math.prod(shape) * dtype.itemsize


def files_per_batch(tensor_nbytes: int, file_bytes: int, *, index: int = 0) -> int:
    """How many files fill one model input of ``tensor_nbytes`` (ais_bench's rule)."""
    if file_bytes == 0 or tensor_nbytes % file_bytes != 0:
        raise InferKitError(
            f"arg{index} tensorsize: {tensor_nbytes} filesize: {file_bytes} not match",
            hint="the model input must hold a whole number of input files; preprocess the images for this model "
                 "('infer-kit preprocess --for MODEL')",
        )
    return tensor_nbytes // file_bytes


def check_file_sizes(lists: list[list[Path]], inputs: Sequence[TensorDesc]) -> int:
    """Refuse files whose size does not fit the model inputs; return files per batch."""
    per_batch = None
    for index, (files, desc) in enumerate(zip(lists, inputs, strict=True)):
        tensor_nbytes = desc.nbytes
        assert tensor_nbytes is not None
        first = file_nbytes(files[0])
        count = files_per_batch(tensor_nbytes, first, index=index)
        if per_batch is None:
            per_batch = count
        elif count != per_batch:
            raise InferKitError(
                f"input {index} ({desc.name}) takes {count} files per batch but input 0 takes {per_batch}",
                hint="every model input needs one file per sample",
            )
        for path in files[1:]:
            size = file_nbytes(path)
            if size != first:
                raise InferKitError(
                    f"input file {path} is {size} bytes but {files[0].name} is {first} "
                    f"(arg{index} tensorsize: {tensor_nbytes})",
                    hint="all files of one input must have the size the model takes; remove or regenerate it",
                )
    assert per_batch is not None
    return per_batch


@dataclass(frozen=True)
class Batch:
    """One model call: ``files[j]`` are the real files of input j; ``size`` slots in all.

    ``shown`` holds the same files as the user named them (``./prep/x.bin``, the folder as typed
    joined with the name, as ais_bench writes them into the summary's ``filesinfo``).
    """

    index: int
    files: tuple[tuple[Path, ...], ...]
    size: int
    shown: tuple[tuple[str, ...], ...] = ()

    def shown_name(self, input_index: int, slot: int) -> str:
        if self.shown:
            return self.shown[input_index][slot]
        return str(self.files[input_index][slot])

    @property
    def real(self) -> int:
        return len(self.files[0])

    @property
    def padded(self) -> int:
        return self.size - self.real

    @property
    def keys(self) -> list[Path]:
        """The files naming the outputs: input 0's file of each real slot."""
        return list(self.files[0])


def plan_batches(lists: list[list[Path]], per_batch: int, shown: list[list[str]] | None = None) -> list[Batch]:
    """Consecutive groups of ``per_batch`` files per input; the last may be short (padded at read)."""
    total = len(lists[0])
    return [
        Batch(n, tuple(tuple(files[start:start + per_batch]) for files in lists), per_batch,
              tuple(tuple(names[start:start + per_batch]) for names in shown) if shown else ())
        for n, start in enumerate(range(0, total, per_batch))
    ]


def typed_inputs(value: str | Sequence[str | os.PathLike[str]]) -> list[str]:
    """``--input`` as the user typed its entries (stripped), for the names ais_bench records."""
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, os.PathLike):
        items = [value]
    else:
        items = list(value)
    return [os.fspath(item).strip() for item in items if os.fspath(item).strip()]


def shown_lists(value: str | Sequence[str | os.PathLike[str]], lists: list[list[Path]]) -> list[list[str]]:
    """Each file as ais_bench names it: ``os.path.join(<folder as typed>, name)``, or the file as typed."""
    typed = typed_inputs(value)
    if typed and Path(typed[0]).is_dir():
        return [[os.path.join(folder, path.name) for path in files] for folder, files in zip(typed, lists, strict=True)]
    chunk = len(lists[0]) if lists else 0
    return [typed[i * chunk:(i + 1) * chunk] for i in range(len(lists))]


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``K/N`` (1 <= K <= N) -> (K, N)."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match:
        raise InferKitError(f"--shard {text!r} is not K/N", hint="e.g. --shard 1/4 ... --shard 4/4")
    k, n = int(match.group(1)), int(match.group(2))
    if n < 1 or not 1 <= k <= n:
        raise InferKitError(f"--shard {text}: K must be between 1 and N", hint="e.g. --shard 1/4 ... --shard 4/4")
    return k, n


def shard_range(total: int, shard: tuple[int, int] | None) -> tuple[int, int]:
    """The contiguous slice [start, stop) of ``total`` naturally sorted samples that shard K/N takes."""
    if shard is None:
        return 0, total
    k, n = shard
    return (k - 1) * total // n, k * total // n


def split_contiguous(total: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous, nearly equal slices of ``range(total)``."""
    return [(i * total // parts, (i + 1) * total // parts) for i in range(parts)]


def pure_feeds(inputs: Sequence[TensorDesc], kind: str = "zero", seed: int = 0) -> list[np.ndarray]:
    """ais_bench's generated data: zero bytes, or random bytes 0..255, viewed as each input."""
    import numpy as np

    if kind not in ("zero", "random"):
        raise InferKitError(f"unknown --pure-data-type {kind!r}", hint="use zero or random")
    rng = np.random.default_rng(seed)
    feeds = []
    for desc in inputs:
        nbytes = desc.nbytes
        assert nbytes is not None
        raw = np.zeros(nbytes, np.uint8) if kind == "zero" else rng.integers(0, 256, nbytes, dtype=np.uint8)
        feeds.append(raw.view(desc.dtype).reshape(desc.shape))
    return feeds


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


class BatchReader:
    """Reads batches on a thread, ``depth`` batches ahead; iterate for ``(batch, feeds)``."""

    def __init__(self, batches: Sequence[Batch], inputs: Sequence[TensorDesc], depth: int = 4) -> None:
        self._batches = batches
        self._inputs = list(inputs)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="infer-kit-reader", daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[tuple[Batch, list[np.ndarray]]]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for batch in self._batches:
                if self._stop.is_set():
                    return
                feeds = [read_batch_input(files, desc, batch.size) for files, desc in zip(
                    batch.files, self._inputs, strict=True)]
                if not self._put((batch, feeds)):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(_Failure(exc))


def read_batch_input(files: Sequence[Path], desc: TensorDesc, slots: int) -> np.ndarray:
    """Concatenate the bytes of ``files`` (padded to ``slots`` with the first) into one input array."""
    import numpy as np

    nbytes = desc.nbytes
    assert nbytes is not None
    buffer = np.empty(nbytes, dtype=np.uint8)
    per_file = nbytes // slots
    view = memoryview(buffer)
    for slot, path in enumerate(files):
        _read_into(path, view[slot * per_file:(slot + 1) * per_file], per_file)
    first = buffer[:per_file]
    for slot in range(len(files), slots):
        buffer[slot * per_file:(slot + 1) * per_file] = first
    return buffer.view(desc.dtype).reshape(desc.shape)


def _read_into(path: Path, target: memoryview, nbytes: int) -> None:
    import numpy as np

    try:
        if path.suffix in (".npy", ".NPY"):
            data = np.ascontiguousarray(np.load(path, allow_pickle=False)).reshape(-1).view(np.uint8)
            if data.nbytes != nbytes:
                raise InferKitError(f"input file {path} holds {data.nbytes} bytes, expected {nbytes}")
            np.frombuffer(target, dtype=np.uint8)[:] = data
            return
        with open(path, "rb", buffering=0) as handle:
            got = 0
            while got < nbytes:
                count = handle.readinto(target[got:])
                if not count:
                    break
                got += count
            if got != nbytes or handle.read(1):
                raise InferKitError(f"input file {path} changed size while running (expected {nbytes} bytes)")
    except OSError as exc:
        raise InferKitError(f"cannot read input file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise InferKitError(f"input file {path} is not a valid .npy file ({exc})") from None
