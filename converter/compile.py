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
from infer_kit.artifacts import ArtifactPaths, TensorDesc, artifact_paths, onnx_io, write_artifact_manifest
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
from infer_kit.converter.dynamic import DynamicPlan, DynamicRequest, check_aipp_with_dynamic, plan_dynamic
from infer_kit.converter.emulate import ModelInput, model_input, resolve_input_hw
from infer_kit.converter.precision import DEFAULT_PRECISION_MODE, EMULATION, check_precision_mode
from infer_kit.dynamic_shapes import DynamicAipp
from infer_kit.errors import BackendUnavailable, InferKitError
from infer_kit.fsutil import check_output_dir, check_output_file, read_json, sha256_file, write_bytes_atomic
from infer_kit.metadata import load_onnx, read_model_info
from infer_kit.spec import PreprocessSpec


@dataclass(frozen=True)
class CompiledArtifact:
    """One batch-sized model written by :func:`compile_om`."""

    batch: int | None  # None: the batch axis is dynamic (gears or a range)
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
    dynamic: DynamicPlan | None = None


def compile_om(model: str | os.PathLike[str], *, soc: str, batch_sizes: Sequence[int] = (), aipp: str = "auto",
               precision_mode: str = DEFAULT_PRECISION_MODE, output: str | os.PathLike[str] | None = None,
               emulate: bool | None = None, spec: PreprocessSpec | None = None,
               assumptions: Assumptions = DEFAULT_ASSUMPTIONS, force: bool = False,
               dynamic: DynamicRequest | None = None) -> list[CompiledArtifact]:
    """Compile ``model`` for every batch size: a real ``.om`` when ATC is here, else an emulated artifact.

    ``aipp``: ``"auto"`` (generated from the model's spec), a config file path, or ``"none"``.
    ``emulate``: None = real ATC if ``atc`` is on PATH, else emulate; True/False force one.
    ``spec`` overrides the spec stamped in the model (needed for ``aipp="auto"`` on a foreign ONNX).
    ``dynamic``: ATC's dynamic-shape options (:mod:`infer_kit.converter.dynamic`): one artifact that
    takes every compiled gear (or range), its profile recorded in the manifest.
    """
    model_path = Path(model).absolute()
    soc = check_soc(soc)
    request = dynamic or DynamicRequest()
    if not request.given:
        check_batch_sizes(batch_sizes)
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
    fallback_hw = (spec.crop, spec.crop) if spec else None
    dyn = None
    if request.given:
        default_hw = (model_in.height or (fallback_hw or (0, 0))[0], model_in.width or (fallback_hw or (0, 0))[1])
        dyn = plan_dynamic(request, input_name=model_in.name, model_shape=(model_in.batch, *model_in.chw),
                           default_hw=default_hw, batch_sizes=check_batch_sizes(batch_sizes) if batch_sizes else [])
    if dyn is None:
        batches: list[int | None] = list(check_batch_sizes(batch_sizes))
        input_hw = resolve_input_hw(model_in, fallback_hw, where)
        bases = output_bases(model_path, output, batches)  # type: ignore[arg-type]
    else:
        batches = [dyn.batch]
        input_hw = dyn.input_hw or _largest_hw(dyn) or resolve_input_hw(model_in, fallback_hw, where)
        bases = [_dynamic_base(model_path, output, dyn)]
    for base in bases:
        check_output_dir(base.parent, what="output folder")
        paths = ArtifactPaths(base)
        for path in (paths.manifest, paths.atc_script, paths.emulated if emulate else paths.om):
            check_output_file(path, what="artifact file")
    whole_image = dyn is not None and dyn.kind == "image_size"
    if dyn is not None and aipp not in ("auto", "none"):  # ATC checks these before it compiles the AIPP op
        from infer_kit.aipp import read_config

        check_aipp_with_dynamic(dyn, read_config(Path(aipp)).op_for_input(0, model_in.name), Path(aipp).name)
    op, aipp_text, aipp_path = choose_aipp(aipp, model_path, bases[0].parent, spec, model_in, input_hw, soc, emulate,
                                           whole_image=whole_image)
    check_aipp_with_dynamic(dyn, op, aipp_path.name if aipp_path else "the AIPP config")
    if whole_image and spec is not None and op is not None:
        spec = spec.with_overrides(aipp_geometry="crop")  # AIPP takes each gear's whole image: the crop itself
    else:
        spec = spec_for_source(spec, op, input_hw)
    plan = _Plan(model_path, source, sha256_file(model_path), model_in, input_hw, soc, precision_mode, spec, op,
                 aipp_text, aipp_path, emulate, assumptions, dyn)
    converted: list[Any] = []  # the precision-converted source, built once on first need
    artifacts = []
    for batch, base in zip(batches, bases, strict=True):
        artifacts.append(_compile_one(plan, batch, base, force, converted))
    return artifacts


def _largest_hw(dyn: DynamicPlan) -> tuple[int, int] | None:
    if dyn.kind != "image_size":
        return None
    h, w = max(dyn.gears, key=lambda g: g[0] * g[1])
    return h, w


def _dynamic_base(model_path: Path, output: str | os.PathLike[str] | None, dyn: DynamicPlan) -> Path:
    """One artifact for all gears: ``<stem>_dynbs``, ``<stem>_bs8_dynhw``, ``..._dyndims``, ``..._dynshape``."""
    if output is None:
        return model_path.with_name(model_path.stem + dyn.suffix).absolute()
    batch = "dyn" if dyn.batch is None else str(dyn.batch)
    return Path(str(artifact_paths(output).base).replace("{batch}", batch)).absolute()


def _io(plan: _Plan, batch: int | None) -> tuple[tuple[TensorDesc, ...], tuple[TensorDesc, ...]]:
    """What the compiled model takes and gives at ``batch`` (None on dynamic axes)."""
    name = plan.model_in.name
    dyn = plan.dynamic if plan.dynamic is not None and plan.dynamic.kind is not None else None
    if plan.op is not None:
        src: list[int | None] = [None, None, None]
        if plan.op.mode == "static":
            src = list(source_shape(plan.op, resolve_geometry(plan.op, plan.input_hw)))
            if dyn is not None and dyn.kind == "image_size":
                src[0] = src[1] = None
        inputs = (TensorDesc(name, (batch, *src), "uint8", "NHWC"),)
    elif dyn is not None:
        shape = tuple(None if d == -1 else d for d in dyn.source_shape)
        inputs = (TensorDesc(name, shape, "float32", "ND" if dyn.input_format == "ND" else "NCHW"),)
    else:
        shape = (batch, plan.model_in.channels or 3, *plan.input_hw)
        inputs = (TensorDesc(name, shape, "float32", "NCHW"),)
    _, source_outputs = onnx_io(plan.source)
    outputs = tuple(TensorDesc(t.name, (batch, *t.shape[1:]), t.dtype, "ND") for t in source_outputs)
    return inputs, outputs


def _dynamic_blocks(plan: _Plan, inputs: tuple[TensorDesc, ...]) -> tuple[dict | None, dict | None]:
    """The manifest's ``dynamic`` profile (in the artifact input's terms) and ``dynamic_aipp`` block."""
    profile = None
    if plan.dynamic is not None and plan.dynamic.kind is not None:
        shape = [-1 if d is None else d for d in inputs[0].shape]
        if plan.op is not None and plan.op.mode == "dynamic":
            shape = [-1 if d is None else d for d in plan.dynamic.source_shape]  # in model terms: AIPP comes per run
        built = plan.dynamic.profile(inputs[0].name, shape)
        profile = built.to_dict() if built is not None else None
    aipp = None
    if plan.op is not None and plan.op.mode == "dynamic":
        aipp = DynamicAipp(inputs[0].name, int(plan.op.get("max_src_image_size")),
                           int(plan.op.get("related_input_rank")), plan.input_hw).to_dict()
    return profile, aipp


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path, start)


def _compile_one(plan: _Plan, batch: int | None, base: Path, force: bool, converted: list[Any]) -> CompiledArtifact:
    paths = ArtifactPaths(base)
    out_dir = base.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    chw = (plan.model_in.channels or 3, *plan.input_hw)
    argv = atc_argv(
        model=_relative(plan.model_path, out_dir), output=base.name, input_name=plan.model_in.name, batch=batch,
        chw=chw, soc=plan.soc, precision_mode=plan.precision_mode,
        aipp_config=_relative(plan.aipp_path, out_dir) if plan.aipp_path else None,
        shape_argv=list(plan.dynamic.argv) if plan.dynamic is not None else None,
        input_format=plan.dynamic.input_format if plan.dynamic is not None else "NCHW",
    )
    kind = "emulated-om" if plan.emulate else "om"
    inputs, outputs = _io(plan, batch)
    dynamic, dynamic_aipp = _dynamic_blocks(plan, inputs)
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
        "dynamic": dynamic,
        "dynamic_aipp": dynamic_aipp,
        "atc_argv": argv,
        "atc_command": render_command(argv),
        "source_onnx": _relative(plan.model_path, out_dir),
        "source_onnx_sha256": plan.source_sha256,
    }
    reused = _reusable(paths, manifest, force)
    if reused is not None:
        log.info("%s is up to date (batch %s, %s); use --force to rebuild", reused.name,
                 "dynamic" if batch is None else batch, kind)
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
               "inputs", "outputs", "dynamic", "dynamic_aipp", "atc_argv", "source_onnx_sha256")


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


def _write_emulated(plan: _Plan, batch: int | None, paths: ArtifactPaths, converted: list[Any]) -> Path:
    from infer_kit.converter.emulate import build_emulated_model, check_runs_at_batch, check_runs_at_shape
    from infer_kit.converter.precision import apply_precision_mode

    dyn = plan.dynamic if plan.dynamic is not None and plan.dynamic.kind is not None else None
    static_aipp = plan.op if plan.op is not None and plan.op.mode == "static" else None
    aipp_note = ", no AIPP" if plan.op is None else (
        ", AIPP " + plan.op.input_format if static_aipp is not None else ", dynamic AIPP (parameters per run)")
    shape_note = f"batch {batch}" if dyn is None else f"{dyn.kind} {dyn.option}"
    log.info("building %s (emulated OM: %s, %s%s)", paths.emulated.name, shape_note, plan.precision_mode, aipp_note)
    input_dims = [None if d == -1 else d for d in dyn.source_shape] if dyn is not None else None
    static_source = build_emulated_model(plan.source, batch=batch, input_hw=plan.input_hw, input_dims=input_dims)
    if dyn is None:
        assert batch is not None
        check_runs_at_batch(static_source, batch, plan.model_path.name)
    else:  # ATC compiles every gear: so does the check
        gears = [",".join(map(str, g)) for g in dyn.gears] or ["range"] * len(dyn.gear_source_shapes())
        for gear, shape in zip(gears, dyn.gear_source_shapes(), strict=False):
            check_runs_at_shape(static_source, shape, plan.model_path.name, gear)
    if not converted:
        converted.append(apply_precision_mode(plan.source, plan.precision_mode))
    emulated = build_emulated_model(converted[0], batch=batch, input_hw=plan.input_hw, aipp=static_aipp,
                                    assumptions=plan.assumptions, input_dims=input_dims)
    write_bytes_atomic(paths.emulated, emulated.SerializeToString())
    return paths.emulated

