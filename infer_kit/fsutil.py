"""Small file helpers: output paths checked before work starts, atomic writes, text inputs, content hashes.

Every command checks the paths it will write with :func:`check_output_file` and
:func:`check_output_dir` before any work (a folder where a file goes, a parent that is a
file, a read-only folder), so a mistake is one line and nothing is computed in vain. Files
are written to a temporary name in the destination folder and renamed into place, so an
interrupted run leaves a complete file or none; a write that fails (full disk, read-only
file system) is one line naming the file, and what was there before is untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

TMP_SUFFIX = ".partial"

# mkstemp creates 0600 files; finished files get the usual permissions (0666 minus umask).
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


def check_output_file(path: str | os.PathLike[str], *, what: str = "output file",
                      keep: Mapping[str, str | os.PathLike[str] | None] | None = None) -> Path:
    """``path`` can be written as a file: not a folder, under folders that exist or can be made, writable, and
    none of the files in ``keep`` (what the command reads or writes besides, by what the user calls them)."""
    path = Path(path)
    if path.is_dir():
        raise _error(f"{what} {path} is a folder", "give a file name")
    for label, other in (keep or {}).items():
        if other is not None and _same_file(path, Path(other)):
            raise _error(f"{what} {path} is {label} itself: writing it would overwrite {label}",
                         "give another file name")
    _check_parent(path.parent, what=what, target=path)
    return path


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return a.samefile(b)
    return a.resolve() == b.resolve()


def check_output_dir(path: str | os.PathLike[str], *, what: str = "output folder") -> Path:
    """``path`` can hold the files a command writes: a folder (or creatable as one), writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise _error(f"{what} {path} is a file, not a folder", "give a folder")
    _check_parent(path, what=what, target=path)
    return path


def _check_parent(folder: Path, *, what: str, target: Path) -> None:
    existing = folder
    while not existing.exists():
        if existing.is_symlink():
            raise _error(f"{what} {target}: {existing} is a broken symlink", "fix the link or choose another path")
        existing = existing.parent
    if not existing.is_dir():
        raise _error(f"{what} {target}: {existing} is a file, not a folder", "choose another path")
    try:  # the real test: root passes os.access() on read-only folders, a read-only file system does not
        fd, probe = tempfile.mkstemp(prefix=".infer-kit-probe.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _error(f"cannot write {what} {target}: {existing} is not writable ({exc.strerror})",
                     "choose a writable place, or fix the folder's permissions") from None


def _error(message: str, hint: str) -> Exception:
    from infer_kit.errors import InferKitError

    return InferKitError(message, hint=hint)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it onto ``path`` on success.

    On any failure the temporary file is removed and ``path`` is left as it was; an OS error
    (full disk, read-only file system, a folder in the way) becomes one line naming ``path``.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise _error(f"cannot write {path}: {exc.strerror or exc}",
                     f"check the free space and permissions of {path.parent}") from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: str | None) -> None:
    if tmp is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


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
