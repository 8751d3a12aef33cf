"""`export`: checkpoint -> simplified, checked, verified, spec-stamped ONNX.

The ONNX file carries its `PreprocessSpec` and provenance in ``metadata_props`` so no
later stage has to be told again how images must be prepared (timm's and Polygraphy's
users lose accuracy exactly there). The default opset, 11, is the one the ModelZoo
recipes use and inside ATC's supported range (11-18).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer_kit.artifacts import TensorDesc, onnx_io
from infer_kit.console import log
from infer_kit.converter.atc_command import ATC_OPSETS
from infer_kit.errors import InferKitError
from infer_kit.fsutil import atomic_write, check_output_file
from infer_kit.metadata import stamp
from infer_kit.registry import create_model, get_model
from infer_kit.resolve import resolve_spec
from infer_kit.spec import PreprocessSpec

from .checkpoint import CheckpointInfo, load_checkpoint_model
from .verify import VerificationReport, find_images, verify_onnx

if TYPE_CHECKING:
    import onnx
    import torch

DEFAULT_OPSET = 11
TRACE_BATCH = 2


@dataclass(frozen=True)
class ExportResult:
    path: Path
    arch: str
    num_classes: int
    opset: int
    spec: PreprocessSpec
    inputs: tuple[TensorDesc, ...]
    outputs: tuple[TensorDesc, ...]
    size_bytes: int
    simplified: bool
    simplify_note: str | None
    checkpoint: CheckpointInfo | None
    verification: VerificationReport | None
    seconds: float


def export_onnx(
    arch: str | None,
    checkpoint: str | os.PathLike[str] | None,
    output: str | os.PathLike[str] | None = None,
    *,
    batch: int | None = None,
    opset: int = DEFAULT_OPSET,
    input_name: str = "actual_input_1",
    output_name: str = "output1",
    num_classes: int | None = None,
    spec_overrides: dict[str, Any] | None = None,
    simplify: bool = True,
    verify: bool = True,
    verify_images: str | os.PathLike[str] | None = None,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    trust_checkpoint: bool = False,
    use_ema: bool = False,
    random_init: bool = False,
    source: str = "auto",
) -> ExportResult:
    """Export ``arch`` with the weights of ``checkpoint`` to ``output``.

    ``batch=None`` exports a dynamic batch axis (ATC's ``--input_shape`` fixes it later);
    an int fixes it (the ModelZoo exports 16). Without a checkpoint, ``random_init`` must be
    set explicitly (useful for speed tests, never by accident). The spec is the registry's,
    replaced by the one a trainer checkpoint records, then the user's overrides. ``source``
    says which codebase wrote the checkpoint (``auto`` detects it; see
    :mod:`infer_kit.converter.sources`).
    """
    started = time.perf_counter()
    if opset not in ATC_OPSETS:
        accepted = f"{ATC_OPSETS.start}-{ATC_OPSETS.stop - 1}"
        raise InferKitError(f"opset {opset} is outside the range ATC accepts ({accepted})", hint="use --opset 11")
    if batch is not None and batch < 1:
        raise InferKitError(f"batch must be >= 1, got {batch}")
    if not input_name or not output_name or input_name == output_name:
        raise InferKitError("input and output names must be non-empty and different")
    if verify_images is not None:  # checked before the model is loaded and traced (a minute for a big one)
        if not verify:
            raise InferKitError("--verify-images and --no-verify exclude each other")
        find_images(verify_images)
    if output is not None:  # checked before the checkpoint is loaded; the default name needs the arch
        check_output_file(output, what="output model")
    model, info, entry_name, spec = _build(arch, checkpoint, num_classes, trust_checkpoint, use_ema, random_init,
                                           source)
    spec = resolve_spec(spec=spec, overrides=spec_overrides).spec  # the checkpoint's or the registry's
    classes = info.num_classes if info else (num_classes or 1000)
    output = Path(output) if output is not None else Path(f"{entry_name}.onnx")
    if output.suffix != ".onnx":
        raise InferKitError(f"output {output} must end in .onnx")
    check_output_file(output, what="output model")

    proto = _trace(model, spec, batch, opset, input_name, output_name)
    simplified, note = False, None
    if simplify:
        proto, simplified, note = _simplify(proto)
    _check(proto)
    stamp(
        proto,
        spec,
        arch=entry_name,
        num_classes=classes,
        checkpoint=info.path.name if info else None,
        checkpoint_sha256=info.sha256 if info else None,
        checkpoint_source=info.source if info else None,
        arch_variant=info.variant if info else None,
        classes=json.dumps(info.classes) if info and info.classes else None,
        torch_version=_version("torch"),
        onnx_version=_version("onnx"),
        opset=opset,
        infer_kit_version=_version("infer_kit"),
        exported=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    report = _write_verified(proto, output, model, spec, verify=verify, images=verify_images, atol=atol,
                             rtol=rtol)
    inputs, outputs = onnx_io(proto)
    return ExportResult(
        path=output,
        arch=entry_name,
        num_classes=classes,
        opset=opset,
        spec=spec,
        inputs=inputs,
        outputs=outputs,
        size_bytes=output.stat().st_size,
        simplified=simplified,
        simplify_note=note,
        checkpoint=info,
        verification=report,
        seconds=time.perf_counter() - started,
    )


def _build(
    arch: str | None,
    checkpoint: str | os.PathLike[str] | None,
    num_classes: int | None,
    trust: bool,
    use_ema: bool,
    random_init: bool,
    source: str,
) -> tuple[torch.nn.Module, CheckpointInfo | None, str, PreprocessSpec]:
    if checkpoint is None:
        if not random_init:
            raise InferKitError("no --checkpoint given", hint="pass --checkpoint FILE, or --random-init on purpose")
        if arch is None:
            raise InferKitError("--random-init needs --arch")
        given = [flag for flag, on in (("--from", source != "auto"), ("--ema", use_ema), ("--trust-checkpoint", trust))
                 if on]
        if given:
            raise InferKitError(f"--random-init reads no checkpoint: drop {' and '.join(given)}")
        entry = get_model(arch)
        model = create_model(entry, num_classes=num_classes or 1000).eval()
        return model, None, entry.name, entry.spec
    if random_init:
        raise InferKitError("--random-init and --checkpoint exclude each other")
    model, info = load_checkpoint_model(arch, checkpoint, source=source, num_classes=num_classes, trust=trust,
                                        use_ema=use_ema)
    assert info.arch is not None
    spec = info.spec or get_model(info.arch).spec
    return model, info, info.arch, spec


def _write_verified(proto: onnx.ModelProto, output: Path, model: torch.nn.Module, spec: PreprocessSpec, *,
                    verify: bool, images: str | os.PathLike[str] | None, atol: float,
                    rtol: float) -> VerificationReport | None:
    """Write ``output`` only once it verified: a failed result goes beside it as ``<name>.failed.onnx``.

    The candidate is written under a hidden name in the output's folder, verified there, then
    renamed onto ``output``; a model already at ``output`` is never replaced by one that failed.
    """
    candidate = output.with_name(f".{output.name}.verifying")
    with atomic_write(candidate, "wb") as handle:
        handle.write(proto.SerializeToString())
    try:
        report = verify_onnx(model, candidate, spec, images=images, atol=atol, rtol=rtol) if verify else None
        if report is not None and not report.passed:
            failed = output.with_name(output.stem + ".failed.onnx")
            os.replace(candidate, failed)
            kept = f"; {output} was left as it was" if output.exists() else ""
            raise InferKitError(
                f"verification failed for {output}: torch and ONNX Runtime disagree ({report.describe()}); "
                f"the result was written to {failed} for inspection{kept}",
                hint="raise --atol/--rtol if the difference is expected, or try another --opset",
            )
        os.replace(candidate, output)
        return report
    finally:
        if candidate.exists():
            candidate.unlink()


def _trace(model: torch.nn.Module, spec: PreprocessSpec, batch: int | None, opset: int, input_name: str,
           output_name: str) -> onnx.ModelProto:
    import onnx
    import torch

    dummy = torch.randn(batch or TRACE_BATCH, 3, spec.crop, spec.crop)
    dynamic_axes = None if batch else {input_name: {0: "batch"}, output_name: {0: "batch"}}
    buffer = io.BytesIO()
    try:
        with torch.inference_mode(False), torch.no_grad(), _quiet():
            torch.onnx.export(
                model, (dummy,), buffer, dynamo=False, opset_version=opset, input_names=[input_name],
                output_names=[output_name], dynamic_axes=dynamic_axes, do_constant_folding=True,
            )
    except Exception as exc:  # the exporter raises many types for unsupported ops
        message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InferKitError(
            f"torch.onnx.export failed at opset {opset}: {message}", hint="try a higher --opset (up to 18)"
        ) from None
    return onnx.load_from_string(buffer.getvalue())


def _simplify(proto: onnx.ModelProto) -> tuple[onnx.ModelProto, bool, str | None]:
    """onnxsim, keeping the plain graph (with a warning) when it fails."""
    try:
        import onnxsim

        with _quiet():
            simplified, ok = onnxsim.simplify(proto)
    except Exception as exc:  # onnxsim raises arbitrary errors on exotic graphs
        note = f"onnxsim failed ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})"
        log.warning("%s; keeping the unsimplified graph", note)
        return proto, False, note
    if not ok:
        log.warning("onnxsim could not validate the simplified graph; keeping the unsimplified graph")
        return proto, False, "onnxsim check failed"
    return simplified, True, None


def _check(proto: onnx.ModelProto) -> None:
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise InferKitError(f"the exported graph fails the ONNX checker: {str(exc).splitlines()[0][:200]}") from None


@contextlib.contextmanager
def _quiet() -> Any:
    """Silence exporter/onnxsim chatter (warnings, stdout, and what their C++ code prints) unless -v."""
    import warnings

    from infer_kit.console import verbosity

    if verbosity() > 0:
        yield
        return
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _native_output_silenced():
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _native_output_silenced() -> Any:
    """Point file descriptors 1 and 2 at /dev/null meanwhile (onnxsim's C++ prints "WARNING: failed to run ...")."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no such descriptors (embedded use): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def _version(module: str) -> str:
    from importlib import metadata

    try:
        return metadata.version({"infer_kit": "infer-kit"}.get(module, module))
    except metadata.PackageNotFoundError:
        return "unknown"
