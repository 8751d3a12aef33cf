"""Model outputs -> files, byte for byte as ais_bench writes them.

Each output of a batch is split along the batch axis into one piece per input file, and
piece j of output i is written to ``{key}_{i}.{ext}``, ``key`` being input 0's file name up
to its first ``.``:

* ``BIN``: the raw array bytes in its own dtype (``ndarray.tofile``);
* ``NPY``: ``np.save`` of the piece (its batch axis kept, e.g. ``(1, 1000)``);
* ``TXT``: ``reshape(-1, shape[-1])``, one line per row, every value formatted ``%f`` for
  floating dtypes and ``%d`` otherwise, each followed by one space (so a line ends
  ``"... 0.123456 \\n"``), exactly what ais_bench's ``np.savetxt(..., newline=" ")`` gives.

Files are written under a temporary name and renamed, on a writer thread fed through a
bounded queue, so compute never waits for the disk and an interrupted run leaves complete
files or none.
"""

from __future__ import annotations

import io
import os
import queue
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer_kit.errors import InferKitError
from infer_kit.fsutil import TMP_SUFFIX, atomic_write
from infer_kit.result_files import output_filename

if TYPE_CHECKING:
    import numpy as np

    from infer_kit.runtime.inputs import Batch

def txt_format(array: np.ndarray) -> str:
    import numpy as np

    return "%f" if array.dtype in (np.float16, np.float32, np.float64) else "%d"


def encode_txt(array: np.ndarray) -> bytes:
    """ais_bench's TXT bytes (see the module docstring); equal to its ``np.savetxt`` loop."""
    rows = array.reshape(-1, array.shape[-1])
    fmt = txt_format(rows)
    width = rows.shape[1]
    template = (fmt + " ") * width + "\n"
    return "".join(template % tuple(row) for row in rows.tolist()).encode("latin1")


def encode(array: np.ndarray, outfmt: str) -> bytes:
    import numpy as np

    if outfmt == "BIN":
        return np.ascontiguousarray(array).tobytes()
    if outfmt == "NPY":
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()
    return encode_txt(array)


def write_output(path: str | os.PathLike[str], array: np.ndarray, outfmt: str) -> int:
    """Write one output file atomically; return its size."""
    data = encode(array, outfmt)
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    return len(data)


def split_batch(array: np.ndarray, slots: int, *, output_index: int, axis: int = 0) -> list[np.ndarray]:
    """One piece per input slot along ``axis`` (ais_bench's ``--output_batchsize_axis``, 0 by default)."""
    import numpy as np

    check_split(tuple(array.shape), slots, output_index=output_index, axis=axis)
    return np.array_split(array, slots, axis=axis) if slots > 1 else [array]


def check_split(shape: Sequence[int | None], slots: int, *, output_index: int, axis: int = 0) -> None:
    """Refuse an output of ``shape`` that cannot be cut into ``slots`` per-file pieces (a dim None: not known yet)."""
    if axis >= len(shape):
        raise InferKitError(
            f"error i:{output_index} ndata.shape:{tuple(shape)} len:{len(shape)} <= "
            f"output_batchsize_axis:{axis}  is invalid",
            hint=f"output {output_index} has {len(shape)} axes: give a smaller --output_batchsize_axis",
        )
    size = shape[axis]
    if slots > 1 and size is not None and size % slots:
        raise InferKitError(
            f"save out files error array shape:{tuple(shape)} of output {output_index} "
            f"does not split into {slots} input files along axis {axis}",
            hint="the model's outputs must carry the batch on that axis (--output_batchsize_axis), and each input "
                 "file must hold whole samples",
        )


def existing_outputs(folder: Path) -> set[str]:
    """Names of complete output files in ``folder`` (temporary files excluded)."""
    if not folder.is_dir():
        return set()
    return {e.name for e in os.scandir(folder) if not e.name.endswith(TMP_SUFFIX) and e.is_file()}


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


class OutputWriter:
    """Writes batches' outputs on a thread; ``submit`` blocks only when ``depth`` batches wait."""

    def __init__(self, folder: Path, outfmt: str, depth: int = 4, *, axis: int = 0, shown: str | None = None) -> None:
        self.folder = folder
        self.outfmt = outfmt
        self.axis = axis
        self.shown = shown if shown is not None else str(folder)  # the folder as filesinfo names it
        self.files_written = 0
        self.bytes_written = 0
        self.filesinfo: dict[int, dict[str, list[str]]] = {}
        self._error: BaseException | None = None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._thread = threading.Thread(target=self._work, name="infer-kit-writer", daemon=True)
        self._thread.start()

    def submit(self, batch: Batch, outputs: Sequence[np.ndarray]) -> None:
        self._raise_pending()
        self._queue.put((batch, list(outputs)))

    def close(self) -> None:
        """Wait for every queued file; raise the writer's error, if any."""
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()
        self._raise_pending()

    def abort(self) -> None:
        """Stop without waiting for queued batches (their files are simply not written)."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is not None:
                continue
            try:
                self._write_batch(*item)
            except BaseException as exc:  # raised again in the producer's thread
                self._error = exc

    def _write_batch(self, batch: Batch, outputs: list[np.ndarray]) -> None:
        pieces = [split_batch(out, batch.size, output_index=i, axis=self.axis) for i, out in enumerate(outputs)]
        for slot in range(batch.real):
            sample_id = batch.index * batch.size + slot
            infiles = [batch.shown_name(j, slot) for j in range(len(batch.files))]
            outfiles = []
            for i, parts in enumerate(pieces):
                name = output_filename(batch.files[0][slot], i, self.outfmt)
                path = self.folder / name
                try:
                    self.bytes_written += write_output(path, parts[slot], self.outfmt)
                except OSError as exc:
                    raise InferKitError(f"cannot write output file {path}: {exc.strerror}") from None
                self.files_written += 1
                outfiles.append(os.path.join(self.shown, name))
            self.filesinfo[sample_id] = {"infiles": infiles, "outfiles": outfiles}
