"""Names of run output files, shared by the stage that writes them and the ones that read them.

ais_bench (and ``infer-kit run``) writes one file per sample and model output,
``{key}_{index}.{ext}``, where ``key`` is the sample's first input file name up to its
first ``.`` and ``ext`` is the lower-cased output format. Folders of files are listed in
ais_bench's natural order: digit runs compare as numbers, the rest case-insensitively.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from infer_kit.errors import InferKitError
from infer_kit.labels import image_key

OUTFMTS = ("BIN", "NPY", "TXT")
_DIGITS = re.compile(r"([0-9]+)")
_NAME = re.compile(r"^(?P<key>[^.]+)_(?P<index>\d+)\.(?P<ext>[A-Za-z]+)$")


def check_outfmt(outfmt: str) -> str:
    """``outfmt`` upper-cased, if it is one of ais_bench's output formats."""
    value = str(outfmt).upper()
    if value not in OUTFMTS:
        raise InferKitError(f"unknown --outfmt {outfmt!r}", hint="use BIN, NPY or TXT")
    return value


def output_filename(input_file: str | os.PathLike[str], index: int, outfmt: str) -> str:
    """``{name up to the first dot}_{index}.{ext}`` (ais_bench's naming)."""
    return f"{image_key(os.fspath(input_file))}_{index}.{outfmt.lower()}"


def parse_output_name(name: str) -> tuple[str, int, str] | None:
    """``ILSVRC2012_val_00000001_0.txt`` -> ``("ILSVRC2012_val_00000001", 0, "txt")``; None if not an output."""
    match = _NAME.match(name)
    if match is None:
        return None
    ext = match["ext"].lower()
    if ext.upper() not in OUTFMTS:
        return None
    return match["key"], int(match["index"]), ext


def natural_key(text: str) -> list[Any]:
    """ais_bench's sort key: digit runs compare as numbers, the rest case-insensitively."""
    return [int(part) if part.isdigit() else part.lower() for part in _DIGITS.split(text)]


def natural_sort(items: Sequence[str | os.PathLike[str]]) -> list[Any]:
    return sorted(items, key=lambda item: natural_key(os.fspath(item)))
