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

import difflib
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer_kit.aipp.assumptions import DEFAULT_ASSUMPTIONS, Assumptions
from infer_kit.aipp.config import AippConfig, AippOp
from infer_kit.aipp.generate import describe_generated, generate_op
from infer_kit.aipp.geometry import resolve_geometry, source_shape
from infer_kit.aipp.lint import lint_config
from infer_kit.aipp.parse import read_config
from infer_kit.aipp.validate import errors, raise_for_errors, validate_config
from infer_kit.aipp.write import render_config
from infer_kit.artifacts import ArtifactPaths, TensorDesc, artifact_paths, onnx_io, write_artifact_manifest
from infer_kit.console import log
from infer_kit.converter.emulate import ModelInput, model_input, resolve_input_hw
from infer_kit.converter.precision import DEFAULT_PRECISION_MODE, EMULATION, check_precision_mode
from infer_kit.errors import BackendUnavailable, InferKitError
from infer_kit.fsutil import read_json, sha256_file, write_bytes_atomic, write_text_atomic
from infer_kit.spec import PreprocessSpec

if TYPE_CHECKING:
    import onnx

ATC_OPSETS = range(11, 19)  # ai.onnx opsets ATC's ONNX parser supports (v11-v18)

SOC_VERSIONS = (
    "Ascend310", "Ascend310P1", "Ascend310P2", "Ascend310P3", "Ascend310P4", "Ascend310P5", "Ascend310P7",
    "Ascend310B1", "Ascend310B2", "Ascend310B3", "Ascend310B4",
    "Ascend610", "Ascend610Lite", "Ascend615", "Ascend710",
    "Ascend910", "Ascend910A", "Ascend910B", "Ascend910ProA", "Ascend910ProB", "Ascend910PremiumA",
    "Ascend910B1", "Ascend910B2", "Ascend910B2C", "Ascend910B3", "Ascend910B4", "Ascend910B4-1",
    "Ascend910_9391", "Ascend910_9392", "Ascend910_9381", "Ascend910_9382", "Ascend910_9372", "Ascend910_9362",
)

# ATC error codes (GE-DOC error_codes) -> (meaning, what to do).
ATC_ERROR_CODES: dict[str, tuple[str, str]] = {
    "E10001": ("a parameter value is invalid", "check the flag named in the message"),
    "E10002": ("--input_shape is invalid", "give 'name:n,c,h,w' with the model's input name"),
    "E10004": ("a parameter value is empty", "give a value to the flag named in the message"),
    "E10016": ("an op named in --input_shape or --out_nodes is not in the model",
               "check the input name with 'infer-kit models' or Netron"),
    "E10034": ("a node connected to AIPP is declared FP16 (--input_fp16_nodes)",
               "drop --input_fp16_nodes for the AIPP input"),
    "E10052": ("the AIPP configuration is invalid", "run 'infer-kit aipp check CONFIG --model MODEL.onnx'"),
    "E10501": ("an operator's IR is not registered", "the model uses an operator this CANN does not know"),
    "E13005": ("a file could not be parsed", "check the model and the AIPP config file"),
    "E19010": ("no parser is registered for an ONNX operator (unsupported op or opset)",
               "re-export with opset_version=11, or replace the operator"),
    "E19999": ("an unknown error occurred", "see ATC's log in $HOME/ascend/log"),
    "EZ9999": ("an internal or AI Core error occurred", "see ATC's log in $HOME/ascend/log"),
    "E81012": ("the Aipp operator failed to compile", "run 'infer-kit aipp check CONFIG --model MODEL.onnx'"),
}
_ERROR_LINE = re.compile(r"^\s*\[?(E[0-9A-Z]\d{4})\]?\s*[:：]?\s*(.*)$")
ATC_FAILED = "ATC run failed"


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


# ---- checks --------------------------------------------------------------------------
def check_soc(soc: str) -> str:
    """``soc`` if it is a chip name ATC knows (``Ascend`` + the npu-smi name)."""
    if soc in SOC_VERSIONS:
        return soc
    close = difflib.get_close_matches(soc, SOC_VERSIONS, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "use 'Ascend' + the Name column of 'npu-smi info'"
    raise InferKitError(f"Value {soc} for parameter --soc_version is invalid", hint=hint)


def check_opset(model: onnx.ModelProto, where: str) -> int:
    """The model's ai.onnx opset, if ATC's ONNX parser supports it (11-18)."""
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise InferKitError(f"{where} declares no ai.onnx opset", hint="re-export it with opset_version=11")
    opset = versions[0]
    if opset not in ATC_OPSETS:
        raise InferKitError(f"{where} uses ai.onnx opset {opset}; ATC supports opsets "
                            f"{ATC_OPSETS.start}-{ATC_OPSETS.stop - 1}", hint="re-export it with opset_version=11")
    return opset


def check_batch_sizes(batch_sizes: Sequence[int]) -> list[int]:
    out: list[int] = []
    for batch in batch_sizes:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise InferKitError(f"batch size must be a positive integer, got {batch!r}")
        if batch not in out:
            out.append(batch)
    if not out:
        raise InferKitError("no batch size given", hint="e.g. --batch 64 or --batch 1,8,64")
    return out


# ---- names and the command line --------------------------------------------------------
def output_bases(model_path: Path, output: str | os.PathLike[str] | None, batch_sizes: Sequence[int]) -> list[Path]:
    """Output base (no suffix) per batch: ``{batch}`` is filled in; several batches get ``_bs{batch}``."""
    if output is None:
        template = str(model_path.with_name(model_path.stem + "_bs{batch}"))
    else:
        template = str(artifact_paths(output).base)
        if len(batch_sizes) > 1 and "{batch}" not in template:
            template += "_bs{batch}"
    bases = [Path(template.replace("{batch}", str(b))).absolute() for b in batch_sizes]
    if len(set(bases)) != len(bases):
        raise InferKitError(f"output {output} gives the same name to several batch sizes", hint="put {batch} in it")
    return bases


def atc_argv(*, model: str, output: str, input_name: str, batch: int, chw: tuple[int, int, int], soc: str,
             aipp_config: str | None = None, precision_mode: str = DEFAULT_PRECISION_MODE,
             log_level: str = "error") -> list[str]:
    """The ATC argv of the ModelZoo recipe (reference 2.1), token for token."""
    shape = ",".join(str(d) for d in (batch, *chw))
    argv = [
        "atc", f"--model={model}", "--framework=5", f"--output={output}", "--input_format=NCHW",
        f"--input_shape={input_name}:{shape}",
    ]
    if aipp_config is not None:
        argv.append("--enable_small_channel=1")
    argv += [f"--log={log_level}", f"--soc_version={soc}"]
    if aipp_config is not None:
        argv.append(f"--insert_op_conf={aipp_config}")
    if precision_mode != DEFAULT_PRECISION_MODE:
        argv.append(f"--precision_mode={precision_mode}")
    return argv


def render_command(argv: Sequence[str]) -> str:
    """Shell text of ``argv``, quoting ``--input_shape`` the way the recipe does."""
    parts = []
    for token in argv:
        if token.startswith("--input_shape=") and '"' not in token and "$" not in token and "\\" not in token:
            parts.append('--input_shape="' + token.split("=", 1)[1] + '"')
        else:
            parts.append(shlex.quote(token))
    return " ".join(parts)


def write_atc_script(path: Path, argv: Sequence[str], *, emulated: bool) -> None:
    note = ("# infer-kit wrote an emulated artifact here (no CANN on that machine); run this script on a machine "
            "with CANN\n# (after 'source /usr/local/Ascend/ascend-toolkit/set_env.sh') to build the real .om.\n"
            if emulated else "# The ATC command infer-kit ran to build this .om.\n")
    text = f'#!/bin/sh\n{note}set -e\ncd "$(dirname "$0")"\n{render_command(argv)}\n'
    write_text_atomic(path, text)
    path.chmod(0o755)


# ---- the real ATC ----------------------------------------------------------------------
def find_atc() -> str | None:
    return shutil.which("atc")


def explain_atc_failure(output: str, returncode: int, base: str) -> InferKitError:
    """One line from ATC's failure output: its first E-code, the code's meaning, ATC's own text."""
    for line in output.splitlines():
        match = _ERROR_LINE.match(line)
        if match:
            code, text = match.group(1), match.group(2).strip()
            meaning, hint = ATC_ERROR_CODES.get(code, ("see ATC's log", "see ATC's log in $HOME/ascend/log"))
            detail = f": {text}" if text else ""
            return InferKitError(f"ATC run failed for {base} with {code} ({meaning}){detail}", hint=hint)
    status = f"exit status {returncode}"
    return InferKitError(f"ATC run failed for {base} ({status}) without an error code",
                         hint="rerun the printed atc command with --log=info and see $HOME/ascend/log")


def run_atc(argv: Sequence[str], cwd: Path, base: str) -> str:
    """Run ATC in ``cwd``, streaming its output to the log; raise one line on failure."""
    log.info("running: %s", render_command(argv))
    try:
        process = subprocess.Popen(list(argv), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   errors="replace")
    except OSError as exc:
        raise BackendUnavailable(f"cannot run atc ({exc.strerror})", hint="check the CANN installation") from None
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        log.info("atc: %s", line.rstrip())
    returncode = process.wait()
    output = "".join(lines)
    if returncode != 0 or ATC_FAILED in output:
        raise explain_atc_failure(output, returncode, base)
    return output


def find_om(base: Path) -> Path | None:
    """``<base>.om``, or ``<base>_<os>_<arch>.om`` as newer CANN names dynamic-shape models."""
    plain = base.with_name(base.name + ".om")
    if plain.is_file():
        return plain
    for candidate in sorted(base.parent.glob(base.name + "_*_*.om")):
        return candidate
    return None


# ---- the stage -------------------------------------------------------------------------
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
    from infer_kit.metadata import load_onnx, read_model_info

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
    op, aipp_text, aipp_path = _aipp_for(aipp, model_path, bases[0].parent, spec, model_in, input_hw, soc, emulate)
    spec = spec_for_source(spec, op, input_hw)
    plan = _Plan(model_path, source, sha256_file(model_path), model_in, input_hw, soc, precision_mode, spec, op,
                 aipp_text, aipp_path, emulate, assumptions)
    converted: list[Any] = []  # the precision-converted source, built once on first need
    artifacts = []
    for batch, base in zip(batches, bases, strict=True):
        artifacts.append(_compile_one(plan, batch, base, force, converted))
    return artifacts


def _aipp_for(aipp: str, model_path: Path, out_dir: Path, spec: PreprocessSpec | None, model_in: ModelInput,
              input_hw: tuple[int, int], soc: str, emulate: bool) -> tuple[AippOp | None, str | None, Path | None]:
    """(op, config text, config path) for ``aipp`` = "auto" | "none" | a file; validated against the model."""
    if aipp == "none":
        return None, None, None
    chw = (model_in.channels or 3, input_hw[0], input_hw[1])
    if aipp == "auto":
        if spec is None:
            raise InferKitError(f"{model_path.name} carries no preprocessing spec, so no AIPP config can be generated",
                                hint="export it with 'infer-kit export', give --preset/--resize/--crop, "
                                     "or use --aipp FILE or --aipp none")
        op = generate_op(spec)
        text = render_config(op, header=describe_generated(spec, op))
        path = out_dir / f"aipp_{model_path.stem}.aippconfig"
        config = AippConfig((op,), str(path))
    else:
        path = Path(aipp).absolute()
        config = read_config(path)
        text = path.read_text()
    issues = validate_config(config, inputs=[chw], soc=soc)
    if aipp == "auto" and errors(issues):
        assert spec is not None
        raise InferKitError(
            f"the AIPP config generated from {model_path.name}'s spec ({spec.describe()}) does not fit its input "
            f"{chw[1]}x{chw[2]}: {errors(issues)[0].text()}",
            hint=f"the spec must crop {chw[1]}: fix it (--crop/--resize) or re-export the model",
        )
    raise_for_errors(issues, config.where)
    for issue in lint_config(config, spec=spec):
        log.warning("%s", issue.format(config.where).replace(": warning: ", ": ", 1))
    op = config.op_for_input(0, model_in.name)
    if op is None:
        raise InferKitError(f"{config.where} has no aipp_op block for input 0 ({model_in.name})",
                            hint="set related_input_rank: 0")
    if aipp == "auto" and (not path.is_file() or path.read_text() != text):
        write_text_atomic(path, text)  # only once the generated config passed ATC's checks
    if emulate and op.mode != "static":
        raise InferKitError(f"{config.where}: dynamic AIPP takes its parameters at run time and cannot be emulated",
                            hint="use a static config for the emulation")
    if emulate:
        source_shape(op, resolve_geometry(op, input_hw))  # refuses formats the emulation does not cover
    return op, text, path


def spec_for_source(spec: PreprocessSpec | None, op: AippOp | None,
                    input_hw: tuple[int, int]) -> PreprocessSpec | None:
    """The spec the artifact's input files must follow: ``resize`` = the config's square source size.

    A user's config may read another source size than the model's spec (e.g. 224x224 with no crop);
    the manifest then records that size, so ``preprocess --for`` writes, and ``run`` accepts, what
    the artifact takes. A non-square or non-RGB source cannot be written by ``preprocess``: warned.
    """
    if spec is None or op is None or op.mode != "static":
        return spec
    geometry = resolve_geometry(op, input_hw)
    size = f"{geometry.src_w}x{geometry.src_h}"
    if op.input_format != "RGB888_U8" or geometry.src_h != geometry.src_w or geometry.src_h < spec.crop:
        log.warning("the AIPP config reads %s %s sources, which 'infer-kit preprocess' does not write: prepare the "
                    "input files yourself", op.input_format, size)
        return spec
    if geometry.src_h != spec.resize:
        log.warning("the AIPP config reads %s sources but the spec resizes to %d: the manifest records resize %d "
                    "so that preprocessed files match the artifact", size, spec.resize, geometry.src_h)
        return spec.with_overrides(resize=geometry.src_h)
    return spec


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

