"""ONNX -> batch-sized OM models: ATC's command line, the real ``atc`` when CANN is here, else an emulation.

:func:`compile_om` is the stage's entry point. For each precision mode and batch size it

1. builds the exact ATC argv of the ModelZoo recipe (``--framework=5 --input_format=NCHW
   --input_shape="actual_input_1:64,3,224,224" --enable_small_channel=1 --log=error
   --soc_version=... --insert_op_conf=...``; ``--precision_mode`` only when it is not ATC's
   default ``force_fp16``; ``--keep_dtype``/``--modify_mixlist`` when given) and writes it as
   ``<base>.atc.sh``, next to the AIPP config it uses;
2. runs ``atc`` when it is on PATH (and emulation is not forced), streaming its log, turning
   ``ATC run failed`` and its ``E.....`` code into one line, and finding the ``.om``
   (``<base>.om`` or ``<base>_<os>_<arch>.om``);
3. otherwise writes ``<base>.emu.onnx``: the static-batch model with the precision mode
   (:mod:`~infer_kit.converter.precision`; INT8: :mod:`~infer_kit.converter.quantize`) and the
   AIPP arithmetic applied (:mod:`infer_kit.converter.emulate`), which ONNX Runtime runs;
4. for the float16/bfloat16 modes, checks the float32 model's tensors against the format's range
   on sample inputs (:mod:`~infer_kit.converter.range_check`) and warns, naming the nodes;
5. writes ``<base>.manifest.json`` (last, so a manifest means a complete artifact) with the
   emulation and the range check. An artifact whose manifest matches the request is reused;
   ``force=True`` rebuilds it.

With several precision modes the bases get the mode appended (``<base>_<mode>``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infer_kit.aipp import DEFAULT_ASSUMPTIONS, AippOp, Assumptions, resolve_geometry, source_shape
from infer_kit.artifacts import (
    EMULATED_SUFFIX,
    ArtifactPaths,
    TensorDesc,
    artifact_paths,
    onnx_io,
    write_artifact_manifest,
)
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
from infer_kit.converter.precision import (
    DEFAULT_PRECISION_MODE,
    INT8,
    MODES,
    KeepDtype,
    check_keep_dtype,
    check_precision_mode,
    keep_dtype_from,
    read_mixlist,
    resolve_precision_modes,
)
from infer_kit.converter.samples import SampleSet, folder_samples, random_samples, sample_files
from infer_kit.dynamic_shapes import DynamicAipp
from infer_kit.errors import BackendUnavailable, InferKitError
from infer_kit.fsutil import (
    check_output_dir,
    check_output_file,
    read_json,
    sha256_file,
    write_bytes_atomic,
    write_text_atomic,
)
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
    emulation: dict[str, Any] | None = None    # how the precision mode is emulated (the manifest's record)
    range_check: dict[str, Any] | None = None  # overflow/underflow check of the float16/bfloat16 modes

    @property
    def command(self) -> str:
        return render_command(self.argv)

    @property
    def range_warning(self) -> str | None:
        """The range check's one-line summary when a tensor overflows or flushes to zero, else None."""
        check = self.range_check or {}
        serious = [f for f in check.get("findings", []) if f.get("kind") in ("overflow", "underflow")]
        return str(check.get("summary")) if serious else None




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
    keep_dtype: KeepDtype = KeepDtype()
    keep_dtype_file: Path | None = None
    mixlist: dict[str, Any] | None = None
    mixlist_file: Path | None = None
    calibration: Path | None = None
    samples: int | None = None
    quantized_input: bool = False
    shared: dict[str, Any] = field(default_factory=dict)  # built once per call: converted models, scan statistics


SCAN_SAMPLES = 8  # range check: images from the calibration folder (or random ones)


def compile_om(model: str | os.PathLike[str], *, soc: str, batch_sizes: Sequence[int] = (), aipp: str = "auto",
               precision_mode: str | Sequence[str] = DEFAULT_PRECISION_MODE,
               output: str | os.PathLike[str] | None = None, emulate: bool | None = None,
               spec: PreprocessSpec | None = None, assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
               force: bool = False, dynamic: DynamicRequest | None = None,
               keep_dtype: str | os.PathLike[str] | Sequence[str] | None = None,
               modify_mixlist: str | os.PathLike[str] | None = None,
               calibration: str | os.PathLike[str] | None = None, samples: int | None = None,
               range_check: bool = True) -> list[CompiledArtifact]:
    """Compile ``model`` for every precision mode and batch size: a real ``.om`` when ATC is here, else emulated.

    ``aipp``: ``"auto"`` (generated from the model's spec), a config file path, or ``"none"``.
    ``precision_mode``: one mode, a comma list, a list, or ``"all"`` (every distinct ATC mode);
    ``"int8"`` quantizes the network (calibrated on ``calibration``) and puts AIPP in front; a
    model that is already quantized is compiled as INT8.
    ``emulate``: None = real ATC if ``atc`` is on PATH, else emulate; True/False force one.
    ``spec`` overrides the spec stamped in the model (needed for ``aipp="auto"`` on a foreign ONNX).
    ``dynamic``: ATC's dynamic-shape options (:mod:`infer_kit.converter.dynamic`): one artifact that
    takes every compiled gear (or range), its profile recorded in the manifest.
    ``keep_dtype``: ATC's keep_dtype file, or operator names (``OpType::Type`` for a type);
    ``modify_mixlist``: ATC's mixlist JSON for the mixed modes.
    ``calibration``: a preprocessed folder (float or aipp layout) for the range check and INT8;
    ``samples`` of its files are used (default 8 for the range check, 128 for INT8).
    """
    model_path = Path(model).absolute()
    if model_path.name.endswith(EMULATED_SUFFIX):  # its precision mode and AIPP would be applied a second time
        raise InferKitError(f"{model_path.name} is an emulated artifact (precision mode and AIPP applied already)",
                            hint="compile the ONNX model it was built from")
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
    modes = resolve_precision_modes(precision_mode, soc)
    for mode in modes:
        check_precision_mode(mode, emulate=emulate)
    source = load_onnx(model_path)
    where = model_path.name
    check_opset(source, where)
    model_in = model_input(source, where)
    spec = spec or read_model_info(source, path=str(model_path)).spec
    quantized_input = _is_quantized(source)
    if quantized_input:
        if modes not in ([DEFAULT_PRECISION_MODE], [INT8]):
            raise InferKitError(f"{where} is already quantized (INT8), so it has no other precision mode",
                                hint="give the float32 model for the float modes, or --precision-mode int8")
        modes = [INT8]
    if INT8 in modes and not emulate:
        raise InferKitError("INT8 on Ascend is the job of AMCT (amct_onnx calibration), whose deploy model ATC "
                            "compiles; infer-kit's INT8 is an emulation of it",
                            hint="use --emulate, or quantize with AMCT and give atc its deploy model")
    if INT8 in modes and not quantized_input and calibration is None:
        raise InferKitError("precision mode int8 needs calibration images",
                            hint="give --calibration PREP_DIR (a folder 'infer-kit preprocess' wrote)")
    keep = keep_dtype_from(keep_dtype)
    check_keep_dtype(keep, source, where)
    if keep and modes == [INT8]:
        raise InferKitError("--keep-dtype keeps operators of a float16/bfloat16 mode in float32; the int8 artifact "
                            "does not use it", hint="add a float mode (e.g. --precision-mode force_fp16,int8), or "
                                                    "drop --keep-dtype")
    mixlist = read_mixlist(modify_mixlist)
    if mixlist is not None and not any(MODES[m].canonical.startswith("allow_mix_precision") for m in modes):
        raise InferKitError(f"--modify-mixlist edits the mixed-precision lists, and no mode asked for "
                            f"({', '.join(modes)}) uses them",
                            hint="add --precision-mode allow_mix_precision (or allow_mix_precision_bf16), "
                                 "or drop --modify-mixlist")
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
    mode_bases = _mode_bases(batches, bases, modes, output)
    for _, base in mode_bases:
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
    out_dir = bases[0].parent
    if INT8 in modes and not quantized_input:
        check_output_file(out_dir / f"int8_{model_path.stem}.onnx", what="quantized network")
    keep_file = _keep_dtype_file(keep, keep_dtype, model_path, out_dir)
    plan = _Plan(model_path, source, sha256_file(model_path), model_in, input_hw, soc, modes[0], spec, op,
                 aipp_text, aipp_path, emulate, assumptions, dyn, keep, keep_file, mixlist,
                 Path(modify_mixlist).absolute() if modify_mixlist is not None else None,
                 Path(calibration).absolute() if calibration is not None else None, samples, quantized_input)
    if calibration is not None:  # fail on a bad folder before anything is built (all the files INT8 reads)
        from infer_kit.converter.quantize import DEFAULT_SAMPLES

        limit = DEFAULT_SAMPLES if INT8 in modes and not quantized_input else SCAN_SAMPLES
        plan.shared["calibration_files"] = _calibration(plan, samples or limit)
    plan.shared.update(range_check=range_check, out_dir=out_dir)
    artifacts = []
    for (batch, mode), base in mode_bases:
        artifacts.append(_compile_one(replace(plan, precision_mode=mode), batch, base, force))
    return artifacts


def _is_quantized(model: Any) -> bool:
    from infer_kit.converter.quantize import is_quantized

    return is_quantized(model)


def _mode_bases(batches: list[int | None], bases: list[Path], modes: list[str],
                output: str | os.PathLike[str] | None) -> list[tuple[tuple[int | None, str], Path]]:
    """((batch, mode), base) in mode-then-batch order; ``<base>_<mode>`` when there are several modes."""
    out = []
    for mode in modes:
        for batch, base in zip(batches, bases, strict=True):
            out.append(((batch, mode), base.with_name(f"{base.name}_{mode}") if len(modes) > 1 else base))
    if len({base for _, base in out}) != len(out):
        raise InferKitError(f"output {output} gives the same name to several artifacts", hint="put {batch} in it")
    return out
def _keep_dtype_file(keep: KeepDtype, given: Any, model_path: Path, out_dir: Path) -> Path | None:
    """The keep_dtype file ATC reads: the user's, or one written beside the artifacts from the names given."""
    if not keep:
        return None
    if isinstance(given, (str, os.PathLike)) and Path(given).is_file():
        return Path(given).absolute()
    path = out_dir / f"keep_dtype_{model_path.stem}.cfg"
    write_text_atomic(path, "# operators ATC keeps in their original dtype (written by infer-kit)\n"
                      + "".join(f"{entry}\n" for entry in keep.entries()))
    return path


def _network_chw(plan: _Plan) -> tuple[int, int, int]:
    """C, H, W of the source network's input (its own H and W where static; the compiled ones where not)."""
    m = plan.model_in
    return (m.channels or 3, m.height or plan.input_hw[0], m.width or plan.input_hw[1])


def _calibration(plan: _Plan, limit: int) -> SampleSet:
    assert plan.calibration is not None
    op = plan.op if plan.op is not None and plan.op.mode == "static" else None
    return folder_samples(plan.calibration, chw=_network_chw(plan), spec=plan.spec, op=op, limit=limit,
                          assumptions=plan.assumptions, strict_limit=plan.samples is not None)


def _calibration_key(plan: _Plan) -> dict[str, Any] | None:
    """What the range check and INT8 calibration read: folder, file count, and a fingerprint of the files."""
    if plan.calibration is None:
        return None
    if "calibration_key" not in plan.shared:
        files = sample_files(plan.calibration)
        digest = hashlib.sha256()
        for path in files:
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        plan.shared["calibration_key"] = {"folder": str(plan.calibration), "files": len(files),
                                          "samples": plan.samples, "fingerprint": digest.hexdigest()}
    return plan.shared["calibration_key"]




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


def _compile_one(plan: _Plan, batch: int | None, base: Path, force: bool) -> CompiledArtifact:
    paths = ArtifactPaths(base)
    out_dir = base.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    chw = (plan.model_in.channels or 3, *plan.input_hw)
    mode = plan.precision_mode
    mixed = MODES[mode].canonical.startswith("allow_mix_precision")
    network = _int8_path(plan) if mode == INT8 and not plan.quantized_input else plan.model_path
    argv = atc_argv(
        model=_relative(network, out_dir), output=base.name, input_name=plan.model_in.name, batch=batch,
        chw=chw, soc=plan.soc, precision_mode=mode,
        aipp_config=_relative(plan.aipp_path, out_dir) if plan.aipp_path else None,
        shape_argv=list(plan.dynamic.argv) if plan.dynamic is not None else None,
        input_format=plan.dynamic.input_format if plan.dynamic is not None else "NCHW",
        keep_dtype=_relative(plan.keep_dtype_file, out_dir) if plan.keep_dtype_file and mode != INT8 else None,
        modify_mixlist=_relative(plan.mixlist_file, out_dir) if plan.mixlist_file and mixed else None,
    )
    kind = "emulated-om" if plan.emulate else "om"
    inputs, outputs = _io(plan, batch)
    dynamic, dynamic_aipp = _dynamic_blocks(plan, inputs)
    manifest: dict[str, Any] = {
        "kind": kind,
        "model_file": None,
        "soc": plan.soc,
        "batch": batch,
        "precision_mode": mode,
        "precision_emulation": None,
        "keep_dtype": plan.keep_dtype.entries() if mode != INT8 else [],
        "modify_mixlist": plan.mixlist if mixed else None,
        "calibration": _calibration_key(plan) if (mode == INT8 or MODES[mode].low) else None,
        "range_check": None,
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
    reused, old = _reusable(paths, manifest, force)
    if reused is not None:
        log.info("%s is up to date (batch %s, %s); use --force to rebuild", reused.name,
                 "dynamic" if batch is None else batch, kind)
        manifest["model_file"] = reused.name
        manifest["precision_emulation"] = old.get("precision_emulation")
        manifest["range_check"] = old.get("range_check")
    else:
        manifest["range_check"] = _range_check(plan)
        write_atc_script(paths.atc_script, argv, emulated=plan.emulate)
        if plan.emulate:
            model_file, manifest["precision_emulation"] = _write_emulated(plan, batch, paths)
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
        soc=plan.soc, precision_mode=mode, layout=str(manifest["layout"]), aipp_config=plan.aipp_path,
        inputs=inputs, outputs=outputs, reused=reused is not None, emulation=manifest["precision_emulation"],
        range_check=manifest["range_check"],
    )


_REUSE_KEYS = ("kind", "soc", "batch", "precision_mode", "layout", "spec", "aipp_config", "aipp_assumptions",
               "inputs", "outputs", "dynamic", "dynamic_aipp", "atc_argv", "source_onnx_sha256", "keep_dtype",
               "modify_mixlist", "calibration")


def _reusable(paths: ArtifactPaths, manifest: dict[str, Any], force: bool) -> tuple[Path | None, dict[str, Any]]:
    """The existing model file (and its manifest) when the artifact on disk was built from the same request."""
    if force or not paths.manifest.is_file():
        return None, {}
    try:
        old = read_json(paths.manifest, what="artifact manifest")
    except InferKitError:
        return None, {}
    if not isinstance(old, dict) or any(old.get(key) != manifest[key] for key in _REUSE_KEYS):
        return None, {}
    model_file = paths.manifest.parent / str(old.get("model_file"))
    return (model_file, old) if model_file.is_file() else (None, {})


def _samples(plan: _Plan, limit: int) -> SampleSet:
    if plan.calibration is not None:
        return _calibration(plan, limit)
    return random_samples(limit, _network_chw(plan), plan.spec)


def _range_check(plan: _Plan) -> dict[str, Any] | None:
    """The overflow/underflow check of ``plan``'s mode (float16/bfloat16 modes), computed once per call."""
    from infer_kit.converter.graphs import name_nodes
    from infer_kit.converter.precision import held_formats, keep_through_folding
    from infer_kit.converter.range_check import range_report, scan_ranges
    from infer_kit.converter.rounding import fold_batchnorm

    mode = plan.precision_mode
    if not plan.shared.get("range_check") or MODES[mode].low is None:
        return None
    if "scan" not in plan.shared:
        named = plan.source.__class__.FromString(plan.source.SerializeToString())
        name_nodes(named)
        folded, _ = fold_batchnorm(named)
        sample_set = _samples(plan, plan.samples or SCAN_SAMPLES)
        batch = plan.model_in.batch or 4
        log.info("range check: running the float32 model on %s", sample_set.describe())
        stats = scan_ranges(folded, plan.model_in.name, _exact_batches(sample_set, batch))
        plan.shared["scan"] = (folded, sample_set, stats, keep_through_folding(plan.keep_dtype, named, folded))
    key = f"range:{mode}"
    if key not in plan.shared:
        folded, sample_set, stats, keep = plan.shared["scan"]
        report = range_report(stats, held_formats(folded, mode, keep_dtype=keep, mixlist=plan.mixlist),
                              mode=mode, samples=sample_set)
        if report is not None and report.warns:
            log.warning("range check %s", report.summary())
        plan.shared[key] = report.to_dict() if report is not None else None
    return plan.shared[key]


def _exact_batches(sample_set: SampleSet, batch: int) -> Any:
    """Batches of exactly ``batch`` samples (a static-batch model); the last padded with copies of its first."""
    import numpy as np

    for arrays in sample_set.batches(batch):
        if len(arrays) < batch:
            arrays = np.concatenate([arrays, np.repeat(arrays[:1], batch - len(arrays), axis=0)])
        yield arrays


def _int8_path(plan: _Plan) -> Path:
    """Where the quantized network (what an AMCT deploy model is to ATC) is written, beside the artifacts."""
    return Path(plan.shared["out_dir"]) / f"int8_{plan.model_path.stem}.onnx"


def _converted(plan: _Plan) -> tuple[Any, dict[str, Any]]:
    """The source with the precision mode applied (dynamic batch), and the manifest's record of how; once per mode."""
    from infer_kit.converter.precision import apply_precision_mode

    mode = plan.precision_mode
    key = f"converted:{mode}"
    if key not in plan.shared:
        row = MODES[mode]
        record: dict[str, Any] = {"mode": mode, "same_as": row.same_as, "cube": row.cube, "vector": row.vector,
                                  "rule": row.emulation, "format": row.low}
        if mode == INT8:
            model, record["int8"] = _quantized(plan)
        else:
            formats = {plan.model_in.name: "fp16"} if plan.op is not None else None  # AIPP writes float16
            model, report = apply_precision_mode(plan.source, mode, keep_dtype=plan.keep_dtype,
                                                 mixlist=plan.mixlist, input_formats=formats)
            record["report"] = report.to_dict()
            if row.canonical.startswith("allow_mix_precision"):
                record["lists"] = "assumed (the per-SoC lists ship with CANN only)" + (
                    ", edited by --modify-mixlist" if plan.mixlist else "")
        plan.shared[key] = (model, record)
    return plan.shared[key]


def _quantized(plan: _Plan) -> tuple[Any, dict[str, Any]]:
    """The INT8 network: the input as given when it is quantized, else quantized on the calibration images."""
    from infer_kit.converter.quantize import (
        DEFAULT_SAMPLES,
        SCHEME,
        quantize_proto,
        quantized_tensors,
        stamp_quantization,
    )

    if plan.quantized_input:
        return plan.source, {"source": "quantized input", "quantized_tensors": quantized_tensors(plan.source)}
    sample_set = _calibration(plan, plan.samples or DEFAULT_SAMPLES)
    log.info("quantizing %s to INT8 on %s", plan.model_path.name, sample_set.describe())
    quantized = quantize_proto(plan.source, sample_set)
    record = {**SCHEME, "method": "minmax", "per_channel": True, "samples": sample_set.to_dict(),
              "quantized_tensors": quantized_tensors(quantized)}
    stamp_quantization(quantized, {**record, "source_onnx": plan.model_path.name,
                                   "source_onnx_sha256": plan.source_sha256})
    path = _int8_path(plan)
    write_bytes_atomic(path, quantized.SerializeToString())
    return quantized, {**record, "network": path.name}


def _write_emulated(plan: _Plan, batch: int | None, paths: ArtifactPaths) -> tuple[Path, dict[str, Any]]:
    from infer_kit.converter.emulate import build_emulated_model, check_runs_at_batch, check_runs_at_shape

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
    converted, record = _converted(plan)
    emulated = build_emulated_model(converted, batch=batch, input_hw=plan.input_hw, aipp=static_aipp,
                                    assumptions=plan.assumptions, input_dims=input_dims)
    write_bytes_atomic(paths.emulated, emulated.SerializeToString())
    return paths.emulated, record

