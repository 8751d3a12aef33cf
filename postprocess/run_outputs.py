"""Finding and reading the output files of a run, the way ais_bench names them.

ais_bench (and ``infer-kit run``) writes one file per sample and output:
``{image_key}_{i}.{txt|npy|bin}`` in a result folder, and a ``<folder>_summary.json``
BESIDE the folder. Only output 0 is scored. Several folders (shards of one run) merge into
one set of outputs; an image found twice is an error.

Formats:

* TXT: one line per row, ``%f`` values separated by single spaces (trailing space);
* NPY: ``np.save`` of the sample, shape ``(W,)`` or ``(1, W)``;
* BIN: raw values; the dtype and width come from the run summary's ``infer_kit.outputs``
  block (per-sample shape), or from the caller (``--dtype/--width``).

Files that are not outputs (a stray ``sumary.json`` as ais_infer wrote it, notes, hidden
files) are ignored with one warning; sub-folders likewise. Reading a file never raises for
bad content: it raises :class:`OutputProblem`, which the scorer collects so that the user
gets every problem at once, with counts and the first few names.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infer_kit.console import log
from infer_kit.errors import InferKitError
from infer_kit.npy import read_npy_header
from infer_kit.result_files import natural_key, parse_output_name
from infer_kit.run_summary import run_info, summary_path

_FIRST = 3


class OutputProblem(Exception):
    """One output file that cannot be scored; ``kind`` groups it with others like it."""

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind}: {detail}")


@dataclass(frozen=True)
class OutputFile:
    """Output ``index`` of image ``key``, stored at ``path`` in format ``fmt``."""

    key: str
    index: int
    path: str
    fmt: str

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


@dataclass(frozen=True)
class BinLayout:
    """How to decode a BIN output: numpy dtype, values per row, rows per sample."""

    dtype: str
    width: int
    rows: int = 1

    @property
    def elements(self) -> int:
        return self.width * self.rows


@dataclass
class RunOutputs:
    """Output 0 of every image in one run (one or more shard folders), sorted by image key."""

    folders: tuple[Path, ...]
    files: list[OutputFile]
    bin_layout: BinLayout | None
    known_width: int | None  # from --width or the run summary
    other_outputs: int = 0
    ignored: list[str] = field(default_factory=list)
    width_source: str = ""

    @property
    def keys(self) -> list[str]:
        return [f.key for f in self.files]

    @property
    def formats(self) -> dict[str, int]:
        return dict(sorted(Counter(f.fmt for f in self.files).items()))

    def describe(self) -> str:
        folders = ", ".join(str(f) for f in self.folders)
        kinds = ", ".join(f"{n} {fmt.upper()}" for fmt, n in self.formats.items())
        return f"{len(self.files)} outputs ({kinds}) in {folders}"


def split_folders(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Folders from a path, a comma-separated list of paths, or several of either."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    folders: list[Path] = []
    for item in items:
        for part in os.fspath(item).split(","):
            if part.strip():
                folders.append(Path(part.strip()))
    if not folders:
        raise InferKitError("no result folder given", hint="pass the folder 'infer-kit run' wrote its outputs to")
    return folders


def _summary_output(folder: Path) -> tuple[str, tuple[int, ...]] | None:
    block = run_info(folder)
    if block is None:
        return None
    try:
        first = block["outputs"][0]
        shape = tuple(int(d) for d in first["shape"])
        dtype = str(first["dtype"])
        if not shape or any(d <= 0 for d in shape):
            raise ValueError(f"shape {list(shape)}")
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise InferKitError(
            f"run summary {summary_path(folder.resolve())} has no usable 'infer_kit.outputs' entry ({exc})",
            hint="pass --dtype and --width, or rerun 'infer-kit run'",
        ) from None
    return dtype, shape


def find_outputs(
    folders: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    dtype: str | None = None,
    width: int | None = None,
) -> RunOutputs:
    """List output 0 of every image in ``folders``; explicit ``dtype``/``width`` override the summaries."""
    paths = split_folders(folders)
    found: dict[str, OutputFile] = {}
    duplicates: list[str] = []
    ignored: list[str] = []
    subfolders: list[str] = []
    other = 0
    for folder in paths:
        if not folder.is_dir():
            raise InferKitError(
                f"result folder not found: {folder}" if not folder.exists() else f"{folder} is not a folder",
                hint="pass the folder 'infer-kit run' (or ais_bench) wrote its outputs to",
            )
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir():
                    subfolders.append(entry.name)
                    continue
                parsed = parse_output_name(entry.name)
                if parsed is None:
                    ignored.append(entry.path)
                    continue
                key, index, fmt = parsed
                if index != 0:
                    other += 1
                    continue
                if key in found:
                    duplicates.append(key)
                    continue
                found[key] = OutputFile(key, index, entry.path, fmt)
    if duplicates:
        raise InferKitError(
            f"{len(duplicates)} images have more than one output 0 across {', '.join(map(str, paths))} "
            f"(first: {first_names(sorted(duplicates, key=natural_key))})",
            hint="shards must not overlap and a folder must hold one format per image: remove the stale files",
        )
    if ignored:
        log.warning(
            "ignored %d files that are not outputs named {image}_{i}.txt|npy|bin (first: %s)",
            len(ignored), first_names(sorted(os.path.basename(p) for p in ignored)),
        )
    if subfolders:
        log.warning("ignored %d sub-folders (first: %s)", len(subfolders), first_names(sorted(subfolders)))
    if not found:
        hint = "pass the folder 'infer-kit run' wrote"
        if subfolders:
            hint = f"it has sub-folders ({first_names(sorted(subfolders))}): pass one of those"
        raise InferKitError(f"no output files named {{image}}_0.txt|npy|bin in {', '.join(map(str, paths))}", hint=hint)
    files = [found[key] for key in sorted(found)]
    if other:
        log.info("scoring output 0 only; %d files of other outputs (_1, _2, ...) are not scored", other)
    summary = _consistent_summary(paths)
    summary_width = summary[1][-1] if summary else None
    layout = _bin_layout(paths, files, summary, dtype, width)
    source = "as --width says" if width else "as the run summary says"
    return RunOutputs(tuple(paths), files, layout, width or summary_width, other, ignored, source)


def _consistent_summary(folders: list[Path]) -> tuple[str, tuple[int, ...]] | None:
    seen = {folder: _summary_output(folder) for folder in folders}
    known = {value for value in seen.values() if value is not None}
    if len(known) > 1:
        described = "; ".join(f"{f}: {v[0]} {list(v[1])}" for f, v in seen.items() if v is not None)
        raise InferKitError(f"the run summaries of these shards disagree about output 0 ({described})",
                            hint="shards must come from the same model")
    return known.pop() if known else None


def _bin_layout(
    folders: list[Path],
    files: list[OutputFile],
    summary: tuple[str, tuple[int, ...]] | None,
    dtype: str | None,
    width: int | None,
) -> BinLayout | None:
    import numpy as np

    if dtype is not None:
        try:
            np.dtype(dtype)
        except TypeError:
            raise InferKitError(f"unknown dtype {dtype!r}", hint="use a numpy dtype name such as float32") from None
    if width is not None and width < 1:
        raise InferKitError(f"--width must be positive, not {width}")
    needs_bin = any(f.fmt == "bin" for f in files)
    if summary is not None:
        s_dtype, shape = summary
        return BinLayout(dtype or s_dtype, width or shape[-1], 1 if width else math.prod(shape[:-1]))
    if dtype is not None and width is not None:
        return BinLayout(dtype, width)
    if needs_bin:
        count = sum(f.fmt == "bin" for f in files)
        missing = " and ".join(n for n, v in (("--dtype", dtype), ("--width", width)) if v is None)
        raise InferKitError(
            f"{count} .bin outputs in {', '.join(map(str, folders))} cannot be decoded: no infer-kit run summary "
            f"({summary_path(folders[0].resolve()).name}) beside the folder says their dtype and width",
            hint=f"pass {missing}, e.g. --dtype float32 --width 1000",
        )
    return None


def first_names(names: Sequence[str], count: int = _FIRST) -> str:
    """``a, b, c, ...``: the first few of many names, for one-line messages."""
    shown = ", ".join(names[:count])
    return shown + (", ..." if len(names) > count else "")


def read_output(file: OutputFile, layout: BinLayout | None):  # -> np.ndarray
    """The scores of one output file as a 1-D float array; :class:`OutputProblem` if unusable."""
    if file.fmt == "txt":
        values = _read_txt(file.path)
    elif file.fmt == "npy":
        values = _read_npy(file.path)
    else:
        values = _read_bin(file.path, layout)
    return _check_values(values)


def _read_txt(path: str):  # -> np.ndarray
    import numpy as np

    try:
        with open(path, "rb") as handle:
            lines = [line for line in handle.read().splitlines() if line.strip()]
    except OSError as exc:
        raise OutputProblem("unreadable", exc.strerror or str(exc)) from None
    if not lines:
        raise OutputProblem("empty", "no values")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = np.loadtxt(lines, dtype=np.float32, comments=None, ndmin=2)
    except ValueError as exc:
        text = str(exc)
        if "number of columns changed" in text:
            raise OutputProblem("ragged", text.split(";")[0]) from None
        raise OutputProblem("non-numeric", text.rstrip(".")) from None
    if values.shape[0] != 1:
        raise OutputProblem("rows", f"{values.shape[0]} rows")
    return values[0]


PROBE_FILES = 50


def expected_width(outputs: RunOutputs, where: str = "") -> tuple[int, str]:
    """The width every output must have, and why: the run summary (or flags), else the first readable file.

    When none of the first :data:`PROBE_FILES` files can be read, their problems are the error.
    """
    if outputs.known_width is not None:
        return outputs.known_width, outputs.width_source
    problems = ProblemLog()
    probe = outputs.files[:PROBE_FILES]
    for file in probe:
        try:
            return int(read_output(file, outputs.bin_layout).shape[0]), f"as the first file {file.name} has"
        except OutputProblem as problem:
            problems.add(problem.kind, file.name, problem.detail)
    problems.raise_if_any(total=len(probe), width=0, width_source="", where=where)
    raise AssertionError("unreachable: every probed file had a problem")


_NPY_MAGIC = b"\x93NUMPY"
_npy_headers: dict[bytes, tuple[Any, tuple[int, ...]]] = {}


def _read_npy(path: str):  # -> np.ndarray
    """``np.load`` for one sample, without re-parsing the header every run file shares."""
    import numpy as np

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise OutputProblem("unreadable", exc.strerror or str(exc)) from None
    if not data.startswith(_NPY_MAGIC) or len(data) < 10:
        raise OutputProblem("non-numeric", "not an .npy file" if data else "0 bytes")
    size_bytes = 2 if data[6] == 1 else 4
    start = 8 + size_bytes
    header_end = start + int.from_bytes(data[8:start], "little")
    header = data[:header_end]
    if header not in _npy_headers:
        _npy_headers[header] = _parse_npy_header(data, path)
    dtype, shape = _npy_headers[header]
    count = math.prod(shape)
    if len(data) - header_end != count * dtype.itemsize:
        raise OutputProblem("ragged", f"{len(data) - header_end} data bytes, the header says {list(shape)} {dtype}")
    if not shape or count == 0:
        raise OutputProblem("empty", f"shape {list(shape)}")
    rows = math.prod(shape[:-1])
    if rows != 1:
        raise OutputProblem("rows", f"{rows} rows (shape {list(shape)})")
    return np.frombuffer(data, dtype=dtype, offset=header_end)


def _parse_npy_header(data: bytes, path: str) -> tuple[Any, tuple[int, ...]]:
    import io

    try:
        dtype, shape = read_npy_header(io.BytesIO(data), path)
    except (OSError, ValueError) as exc:
        raise OutputProblem("non-numeric", str(exc)) from None
    if dtype.kind not in "fiu":
        raise OutputProblem("non-numeric", f"dtype {dtype}")
    return dtype, shape


def _read_bin(path: str, layout: BinLayout | None):  # -> np.ndarray
    import numpy as np

    if layout is None:
        raise OutputProblem("unreadable", "dtype and width unknown")
    dtype = np.dtype(layout.dtype)
    try:
        size = os.path.getsize(path)
        if size == 0:
            raise OutputProblem("empty", "0 bytes")
        if size % dtype.itemsize:
            raise OutputProblem("ragged", f"{size} bytes is not a whole number of {layout.dtype} values")
        values = np.fromfile(path, dtype=dtype)
    except OSError as exc:
        raise OutputProblem("unreadable", exc.strerror or str(exc)) from None
    if values.size != layout.elements:
        if values.size % layout.width == 0:
            raise OutputProblem("rows", f"{values.size // layout.width} rows of {layout.width} {layout.dtype}")
        raise OutputProblem(
            "ragged", f"{size} bytes, expected {layout.elements * dtype.itemsize} ({layout.width} {layout.dtype})"
        )
    if layout.rows != 1:
        raise OutputProblem("rows", f"{layout.rows} rows per sample")
    return values


def _check_values(values):  # -> np.ndarray
    import numpy as np

    if values.dtype.kind in "iu" or values.dtype.itemsize < 4:
        values = values.astype(np.float64 if values.dtype.kind in "iu" else np.float32)
    if np.isnan(values).any():
        raise OutputProblem("nan", f"{int(np.isnan(values).sum())} NaN values")
    return values


# kind -> (verb phrase for one file, for several)
PROBLEM_TEXT = {
    "unreadable": ("cannot be read", "cannot be read"),
    "empty": ("is empty", "are empty"),
    "non-numeric": ("is not numeric", "are not numeric"),
    "nan": ("contains NaN", "contain NaN"),
    "ragged": ("is ragged (rows of different lengths, or a size that is not whole rows)",
               "are ragged (rows of different lengths, or a size that is not whole rows)"),
    "rows": ("holds more than one row (one sample per file expected)",
             "hold more than one row (one sample per file expected)"),
}


def count_files(count: int, where: str = "") -> str:
    """``1 output file``, ``3 output files``, with an optional ``where`` after the noun."""
    return f"{count} output file{'' if count == 1 else 's'}{where}"


@dataclass
class ProblemLog:
    """Bad output files collected across chunks, reported together as one error."""

    by_kind: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    widths: Counter[int] = field(default_factory=Counter)
    width_examples: list[tuple[str, int]] = field(default_factory=list)

    def add(self, kind: str, name: str, detail: str) -> None:
        self.by_kind.setdefault(kind, []).append((name, detail))

    def add_width(self, name: str, width: int) -> None:
        self.widths[width] += 1
        if len(self.width_examples) < _FIRST + 1:
            self.width_examples.append((name, width))

    def merge(self, other: ProblemLog) -> None:
        for kind, items in other.by_kind.items():
            self.by_kind.setdefault(kind, []).extend(items)
        self.widths.update(other.widths)
        room = _FIRST + 1 - len(self.width_examples)
        self.width_examples.extend(other.width_examples[: max(room, 0)])

    def __bool__(self) -> bool:
        return bool(self.by_kind) or bool(self.widths)

    def raise_if_any(self, *, total: int, width: int, width_source: str, where: str = "",
                     hint: str = "rerun 'infer-kit run' for those images") -> None:
        """One error naming every kind of problem with its count and first files."""
        if not self:
            return
        parts: list[str] = []
        if self.widths:
            bad = sum(self.widths.values())
            good = total - bad - sum(len(items) for items in self.by_kind.values())
            others = ", ".join(f"{n} with {w}" for w, n in sorted(self.widths.items()))
            first = ", ".join(f"{name} ({w})" for name, w in self.width_examples[:_FIRST])
            parts.append(
                f"mixed output widths: {count_files(good, where)} {'has' if good == 1 else 'have'} {width} values "
                f"({width_source}), {others} (first: {first}{', ...' if bad > _FIRST else ''})"
            )
        for kind, items in self.by_kind.items():
            items = sorted(items, key=lambda item: natural_key(item[0]))
            first = "; ".join(f"{name}: {detail}" for name, detail in items[:_FIRST])
            more = "; ..." if len(items) > _FIRST else ""
            one, several = PROBLEM_TEXT.get(kind, (kind, kind))
            parts.append(f"{count_files(len(items), where)} {one if len(items) == 1 else several} ({first}{more})")
        raise InferKitError("; ".join(parts), hint=hint)
