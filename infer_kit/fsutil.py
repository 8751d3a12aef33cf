"""Small file helpers: atomic writes and content hashes.

Files are written to a temporary name in the destination folder and renamed
into place, so an interrupted run leaves a complete file or none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TMP_SUFFIX = ".partial"

# mkstemp creates 0600 files; finished files get the usual permissions (0666 minus umask).
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def write_json_atomic(path: str | os.PathLike[str], data: Any, *, indent: int | None = 2) -> None:
    text = json.dumps(data, indent=indent, sort_keys=False)
    write_text_atomic(path, text + ("\n" if indent is not None else ""))


def read_text(path: str | os.PathLike[str], *, what: str = "file") -> str:
    """A UTF-8 text input (a leading byte-order mark, as Windows editors write, is dropped); one-line errors."""
    from infer_kit.errors import InferKitError

    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InferKitError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise InferKitError(f"{what} {path} is a folder, not a file") from None
    except UnicodeDecodeError as exc:
        raise InferKitError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InferKitError(f"cannot read {what} {path}: {exc.strerror}") from None


def read_json(path: str | os.PathLike[str], *, what: str = "JSON file") -> Any:
    """Read a JSON file, turning a missing or malformed file into an InferKitError."""
    from infer_kit.errors import InferKitError

    text = read_text(path, what=what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InferKitError(
            f"{what} {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            hint="fix or delete the file and rerun",
        ) from None


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def remove_stale_partials(folder: str | os.PathLike[str]) -> int:
    """Delete temporary files an interrupted writer left in ``folder``; return how many."""
    removed = 0
    for entry in Path(folder).glob(f".*{TMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()
            removed += 1
    return removed
