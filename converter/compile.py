"""ONNX -> batch-sized OM models: ATC's command line, the real ``atc`` when CANN is here, else an emulation.

:func:`compile_om` is the stage's entry point. For each batch size it

1. builds the exact ATC argv of the ModelZoo recipe (``--framework=5 --input_format=NCHW
   --input_shape="actual_input_1:64,3,224,224" --enable_small_channel=1 --log=error
   --soc_version=... --insert_op_conf=...``; ``--precision_mode`` only when it is not ATC's
   default ``force_fp16``) and writes it as ``<base>.atc.sh``, next to the AIPP config it uses;
2. runs ``atc`` when it is on PATH (and emulation is not forced), streaming its log, turning
   ``ATC run failed`` and its ``E.....`` code into one line, and finding the ``.om``
   (``<base>.om`` or ``<base>_<os>_<arch>.om``);
3. otherwise writes ``<base>.emu.onnx``: the static-batch model with the precision mode and the
   AIPP arithmetic applied (:mod:`infer_kit.converter.emulate`), which ONNX Runtime runs;
4. writes ``<base>.manifest.json`` (last, so a manifest means a complete artifact). An artifact
   whose manifest matches the request is reused; ``force=True`` rebuilds it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infer_kit.aipp import DEFAULT_ASSUMPTIONS, AippOp, Assumptions, resolve_geometry, source_shape
from infer_kit.artifacts import ArtifactPaths, TensorDesc, onnx_io, write_artifact_manifest
from infer_kit.console import log
from infer_kit.converter.aipp_choice import choose_aipp, spec_for_source
from infer_kit.converter.atc_command import (
    atc_argv,
    check_batch_sizes,
    check_opset,
    check_soc,
    output_bases,
    render_command,
    write_atc_script,
)
from infer_kit.converter.atc_process import find_atc, find_om, run_atc
from infer_kit.converter.emulate import ModelInput, model_input, resolve_input_hw
from infer_kit.converter.precision import DEFAULT_PRECISION_MODE, EMULATION, check_precision_mode
from infer_kit.errors import BackendUnavailable, InferKitError
from infer_kit.fsutil import check_output_dir, check_output_file, read_json, sha256_file, write_bytes_atomic
from infer_kit.metadata import load_onnx, read_model_info
from infer_kit.spec import PreprocessSpec


@dataclass(frozen=True)
class CompiledArtifact:
    """One batch-sized model written by :func:`compile_om`."""

    batch: int
    kind: str  # "om" | "emulated-om"
    paths: ArtifactPaths
    argv: list[str]
    model_file: Path
    soc: str
    precision_mode: str
    layout: str  # "aipp" | "float"
    aipp_config: Path | None
    inputs: tuple[TensorDesc, ...]
    outputs: tuple[TensorDesc, ...]
    reused: bool = False

    @property
    def command(self) -> str:
        return render_command(self.argv)


@dataclass(frozen=True)
class _Plan:
    """Everything a batch's artifact depends on, decided once per call."""

    model_path: Path
    source: Any  # onnx.ModelProto
    source_sha256: str
    model_in: ModelInput
    input_hw: tuple[int, int]
    soc: str
    precision_mode: str
    spec: PreprocessSpec | None
    op: AippOp | None
    aipp_text: str | None
    aipp_path: Path | None
    emulate: bool
    assumptions: Assumptions


def compile_om(model: str | os.PathLike[str], *, soc: str, batch_sizes: Sequence[int], aipp: str = "auto",
               precision_mode: str = DEFAULT_PRECISION_MODE, output: str | os.PathLike[str] | None = None,
               emulate: bool | None = None, spec: PreprocessSpec | None = None,
               assumptions: Assumptions = DEFAULT_ASSUMPTIONS, force: bool = False) -> list[CompiledArtifact]:
    """Compile ``model`` for every batch size: a real ``.om`` when ATC is here, else an emulated artifact.

    ``aipp``: ``"auto"`` (generated from the model's spec), a config file path, or ``"none"``.
    ``emulate``: None = real ATC if ``atc`` is on PATH, else emulate; True/False force one.
    ``spec`` overrides the spec stamped in the model (needed for ``aipp="auto"`` on a foreign ONNX).
    """
    model_path = Path(model).absolute()
    soc = check_soc(soc)
    batches = check_batch_sizes(batch_sizes)
    if emulate is None:
        emulate = find_atc() is None
        if emulate:
            log.info("atc is not on PATH (no CANN here): writing emulated artifacts")
    elif not emulate and find_atc() is None:
        raise BackendUnavailable("atc is not on PATH", hint="source CANN's set_env.sh, or use --emulate")
    precision_mode = check_precision_mode(precision_mode, emulate=emulate)
    source = load_onnx(model_path)
    where = model_path.name
    check_opset(source, where)
    model_in = model_input(source, where)
    spec = spec or read_model_info(source, path=str(model_path)).spec
    input_hw = resolve_input_hw(model_in, (spec.crop, spec.crop) if spec else None, where)
    bases = output_bases(model_path, output, batches)
    for base in bases:
        check_output_dir(base.parent, what="output folder")
        paths = ArtifactPaths(base)
        for path in (paths.manifest, paths.atc_script, paths.emulated if emulate else paths.om):
            check_output_file(path, what="artifact file")
    op, aipp_text, aipp_path = choose_aipp(aipp, model_path, bases[0].parent, spec, model_in, input_hw, soc, emulate)
    spec = spec_for_source(spec, op, input_hw)
    plan = _Plan(model_path, source, sha256_file(model_path), model_in, input_hw, soc, precision_mode, spec, op,
                 aipp_text, aipp_path, emulate, assumptions)
    converted: list[Any] = []  # the precision-converted source, built once on first need
    artifacts = []
    for batch, base in zip(batches, bases, strict=True):
        artifacts.append(_compile_one(plan, batch, base, force, converted))
    return artifacts


def _io(plan: _Plan, batch: int) -> tuple[tuple[TensorDesc, ...], tuple[TensorDesc, ...]]:
    """What the compiled model takes and gives at ``batch``."""
    name = plan.model_in.name
    if plan.op is not None:
        src = source_shape(plan.op, resolve_geometry(plan.op, plan.input_hw)) if plan.op.mode == "static" else None
        shape = (batch, *src) if src else (batch, None, None, None)
        inputs = (TensorDesc(name, shape, "uint8", "NHWC"),)
    else:
        shape = (batch, plan.model_in.channels or 3, *plan.input_hw)
        inputs = (TensorDesc(name, shape, "float32", "NCHW"),)
    _, source_outputs = onnx_io(plan.source)
    outputs = tuple(TensorDesc(t.name, (batch, *t.shape[1:]), t.dtype, "ND") for t in source_outputs)
    return inputs, outputs


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path, start)


def _compile_one(plan: _Plan, batch: int, base: Path, force: bool, converted: list[Any]) -> CompiledArtifact:
    paths = ArtifactPaths(base)
    out_dir = base.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    chw = (plan.model_in.channels or 3, *plan.input_hw)
    argv = atc_argv(
        model=_relative(plan.model_path, out_dir), output=base.name, input_name=plan.model_in.name, batch=batch,
        chw=chw, soc=plan.soc, precision_mode=plan.precision_mode,
        aipp_config=_relative(plan.aipp_path, out_dir) if plan.aipp_path else None,
    )
    kind = "emulated-om" if plan.emulate else "om"
    inputs, outputs = _io(plan, batch)
    manifest: dict[str, Any] = {
        "kind": kind,
        "model_file": None,
        "soc": plan.soc,
        "batch": batch,
        "precision_mode": plan.precision_mode,
        "precision_emulation": EMULATION[plan.precision_mode] if plan.emulate else None,
        "layout": "aipp" if plan.op is not None else "float",
        "spec": plan.spec.to_dict() if plan.spec else None,
        "aipp_geometry": plan.spec.geometry_dict() if plan.spec and plan.op is not None else None,
        "aipp_config": plan.aipp_text,
        "aipp_config_file": _relative(plan.aipp_path, out_dir) if plan.aipp_path else None,
        "aipp_assumptions": plan.assumptions.to_dict() if plan.emulate and plan.op is not None else None,
        "inputs": [t.to_dict() for t in inputs],
        "outputs": [t.to_dict() for t in outputs],
        "atc_argv": argv,
        "atc_command": render_command(argv),
        "source_onnx": _relative(plan.model_path, out_dir),
        "source_onnx_sha256": plan.source_sha256,
    }
    reused = _reusable(paths, manifest, force)
    if reused is not None:
        log.info("%s is up to date (batch %d, %s); use --force to rebuild", reused.name, batch, kind)
        manifest["model_file"] = reused.name
    else:
        write_atc_script(paths.atc_script, argv, emulated=plan.emulate)
        if plan.emulate:
            model_file = _write_emulated(plan, batch, paths, converted)
        else:
            run_atc(argv, out_dir, base.name)
            found = find_om(base)
            if found is None:
                raise InferKitError(f"ATC reported success but wrote no {base.name}.om in {out_dir}",
                                    hint="check ATC's log in $HOME/ascend/log")
            model_file = found
        manifest["model_file"] = model_file.name
        write_artifact_manifest(paths.manifest, manifest)
    return CompiledArtifact(
        batch=batch, kind=kind, paths=paths, argv=argv, model_file=out_dir / str(manifest["model_file"]),
        soc=plan.soc, precision_mode=plan.precision_mode, layout=str(manifest["layout"]), aipp_config=plan.aipp_path,
        inputs=inputs, outputs=outputs, reused=reused is not None,
    )


_REUSE_KEYS = ("kind", "soc", "batch", "precision_mode", "layout", "spec", "aipp_config", "aipp_assumptions",
               "inputs", "outputs", "atc_argv", "source_onnx_sha256")


def _reusable(paths: ArtifactPaths, manifest: dict[str, Any], force: bool) -> Path | None:
    """The existing model file when the artifact on disk was built from the same request."""
    if force or not paths.manifest.is_file():
        return None
    try:
        old = read_json(paths.manifest, what="artifact manifest")
    except InferKitError:
        return None
    if not isinstance(old, dict) or any(old.get(key) != manifest[key] for key in _REUSE_KEYS):
        return None
    model_file = paths.manifest.parent / str(old.get("model_file"))
    return model_file if model_file.is_file() else None


def _write_emulated(plan: _Plan, batch: int, paths: ArtifactPaths, converted: list[Any]) -> Path:
    from infer_kit.converter.emulate import build_emulated_model, check_runs_at_batch
    from infer_kit.converter.precision import apply_precision_mode

    log.info("building %s (emulated OM: batch %d, %s%s)", paths.emulated.name, batch, plan.precision_mode,
             ", AIPP " + plan.op.input_format if plan.op is not None else ", no AIPP")
    static_source = build_emulated_model(plan.source, batch=batch, input_hw=plan.input_hw)
    check_runs_at_batch(static_source, batch, plan.model_path.name)
    if not converted:
        converted.append(apply_precision_mode(plan.source, plan.precision_mode))
    emulated = build_emulated_model(converted[0], batch=batch, input_hw=plan.input_hw, aipp=plan.op,
                                    assumptions=plan.assumptions)
    write_bytes_atomic(paths.emulated, emulated.SerializeToString())
    return paths.emulated

