"""The result folder ``OUT/NAME`` of a run: where it is, what made it, and what a resume may skip.

Beside the folder (never inside: it holds outputs only, as scorers expect) a run keeps
``.NAME.run.json``, the identity of the run that wrote it (model and its sha256, the input files,
their manifests, batch, format and options), and ``.NAME.lock`` while it writes. ``--resume``
continues only the same run: anything else would mix two runs' outputs in one folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infer_kit.artifacts import FOLDER_MANIFEST, ModelDescription
from infer_kit.console import log
from infer_kit.errors import InferKitError
from infer_kit.fsutil import (
    check_output_dir,
    check_output_file,
    read_json,
    remove_stale_partials,
    sha256_file,
    write_json_atomic,
)
from infer_kit.labels import image_key
from infer_kit.result_files import output_filename
from infer_kit.run_summary import summary_path
from infer_kit.runtime.inputs import Batch, split_input_arg
from infer_kit.runtime.output_writer import existing_outputs


def check_collisions(files: Sequence[Path], pipeline: bool = False) -> None:
    from infer_kit.runtime.pipeline_mode import pipeline_output_name

    seen: dict[str, Path] = {}
    for path in files:
        key = pipeline_output_name(path, 0, "bin")[: -len("_0.bin")] if pipeline else image_key(path.name)
        if key in seen:
            raise InferKitError(
                f"input files {seen[key].name} and {path.name} would write the same outputs ({key}_0...)",
                hint="outputs are named after the file name up to its first '.'; rename one of them",
            )
        seen[key] = path


def result_paths(output: Any, output_dirname: str | None) -> tuple[Path | None, Path | None]:
    if output is None:
        return None, None
    name = output_dirname or time.strftime("%Y_%m_%d-%H_%M_%S")
    if not name or Path(name).name != name or name in (".", ".."):
        raise InferKitError(f"--output-dirname {name!r} must be a plain folder name")
    out = check_output_dir(output, what="--output")
    result_dir = check_output_dir(out / name, what="result folder")
    return result_dir, check_output_file(summary_path(result_dir), what="run summary")


def side_file(result_dir: Path, suffix: str) -> Path:
    """A hidden file beside ``OUT/NAME`` (never inside: the folder holds outputs only, as scorers expect)."""
    return result_dir.parent / f".{result_dir.name}{suffix}"


def run_identity(description: ModelDescription, model_ref: Any, inputs: Any, batches: list[Batch], outfmt: str,
                 batch: int, shard: tuple[int, int] | None, backend: str, variant: dict[str, Any]) -> dict[str, Any]:
    """What made a result folder's outputs: a resume must match it exactly, or it would mix two runs."""
    model_file = None if hasattr(model_ref, "forward") else Path(model_ref)
    files = hashlib.sha256()
    for planned in batches:
        for slot in range(planned.real):
            for per_input in planned.files:
                path = per_input[slot]
                files.update(f"{Path(path).resolve()}\0{_size(path)}\n".encode())
    manifests = {}
    for folder in ([] if inputs is None else [p for p in split_input_arg(inputs) if p.is_dir()]):
        manifest = folder / FOLDER_MANIFEST
        manifests[str(folder.resolve())] = sha256_file(manifest) if manifest.is_file() else None
    return {
        "model": str(model_file.resolve()) if model_file else "<module>",
        "model_sha256": sha256_file(model_file) if model_file and model_file.is_file() else None,
        "backend": backend,
        "batch": batch,
        "outfmt": outfmt,
        "shard": list(shard) if shard else None,
        "input_files": files.hexdigest(),
        "input_manifests": manifests,
        "variant": variant,
    }


def _size(path: Path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return -1


def prepare_result_dir(result_dir: Path | None, resume: bool, outfmt: str, identity: dict[str, Any],
                       replace_outputs: bool = False) -> set[str]:
    """Create the result folder; the names already in it (resume, same run only), or refuse a used one.

    ``replace_outputs`` (a ``--dymShape_range`` sweep's later shapes) writes over what is there.
    """
    if result_dir is None:
        return set()
    _refuse_device_layout(result_dir)
    existing = existing_outputs(result_dir)
    if replace_outputs:
        result_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(side_file(result_dir, ".run.json"), identity)
        return set()
    if existing and not resume:
        raise InferKitError(
            f"result folder {result_dir} already holds {len(existing)} file(s)",
            hint="pass --resume to finish that run, or choose another --output-dirname",
        )
    foreign = sorted(n for n in existing if not n.endswith("." + outfmt.lower()))
    if resume and foreign:
        raise InferKitError(
            f"cannot resume into {result_dir} with --outfmt {outfmt}: it holds other files, e.g. {foreign[0]}",
            hint="resume with the interrupted run's --outfmt, or choose another --output-dirname",
        )
    record = side_file(result_dir, ".run.json")
    if resume and existing:
        check_same_run(record, identity, result_dir)
    if resume and result_dir.is_dir():
        removed = remove_stale_partials(result_dir)
        if removed:
            log.info(f"removed {removed} partial file(s) an interrupted run left in {result_dir}")
    try:
        result_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InferKitError(f"cannot create result folder {result_dir}: {exc.strerror}") from None
    write_json_atomic(record, identity)
    return existing


def _refuse_device_layout(result_dir: Path) -> None:
    """A ``--device 0,1`` run's ``OUT/NAME`` (its ``device{id}_{i}/`` folders) takes no one folder's outputs."""
    if not result_dir.is_dir():
        return
    folders = sorted(e.name for e in os.scandir(result_dir) if e.is_dir() and re.fullmatch(r"device\d+_\d+", e.name))
    if folders:
        raise InferKitError(
            f"result folder {result_dir} holds the per-device folders of a --device list run ({', '.join(folders)}): "
            "one folder's outputs would be mixed with them",
            hint="resume it with the same --device list, or choose another --output-dirname",
        )


_IDENTITY_WORDS = {"model": "another model file", "model_sha256": "another model (its sha256 differs)",
                   "backend": "another backend", "batch": "another batch size", "outfmt": "another --outfmt",
                   "shard": "another --shard", "input_files": "other input files",
                   "input_manifests": "inputs preprocessed differently (their manifest differs)",
                   "variant": "other ais_bench options (dynamic shapes, --aipp_config, --output_batchsize_axis or "
                              "--pipeline)"}


def check_same_run(record: Path, identity: dict[str, Any], result_dir: Path) -> None:
    """Refuse to resume into outputs that another run (model, inputs, options) wrote."""
    if not record.is_file():
        raise InferKitError(
            f"cannot resume into {result_dir}: there is no record of the run that wrote its outputs ({record.name})",
            hint="choose another --output-dirname, or delete the folder to run again",
        )
    written = read_json(record, what="run record")
    differ = [key for key in _IDENTITY_WORDS if written.get(key) != identity.get(key)]
    if differ:
        raise InferKitError(
            f"cannot resume into {result_dir}: its outputs were written by a run with "
            f"{', '.join(_IDENTITY_WORDS[key] for key in differ)}",
            hint="resume with the interrupted run's model, inputs and options, or choose another --output-dirname",
        )


def split_done(batches: list[Batch], done: set[str], n_outputs: int, outfmt: str, pipeline: bool,
               shown_dir: str | None = None) -> tuple[list[Batch], int, dict[int, dict[str, list[str]]]]:
    """Batches still to run; samples skipped; their filesinfo. A batch is redone whole unless complete."""
    if not done:
        return batches, 0, {}
    from infer_kit.runtime.pipeline_mode import pipeline_output_name

    name_of = pipeline_output_name if pipeline else output_filename
    todo, skipped, info = [], 0, {}
    for batch in batches:
        names = [[name_of(key, i, outfmt) for i in range(n_outputs)] for key in batch.keys]
        if all(name in done for per_file in names for name in per_file):
            skipped += batch.real
            for slot, per_file in enumerate(names):
                info[batch.index * batch.size + slot] = {
                    "infiles": [batch.shown_name(j, slot) for j in range(len(batch.files))],
                    "outfiles": [os.path.join(shown_dir, name) if shown_dir else name for name in per_file]}
        else:
            todo.append(batch)
    return todo, skipped, info
