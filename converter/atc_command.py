"""ATC's command line: the chip and opset checks, output names, the argv, and the saved script.

The argv is the ModelZoo recipe's, token for token (``--framework=5 --input_format=NCHW
--input_shape="actual_input_1:64,3,224,224" --enable_small_channel=1 --log=error
--soc_version=... --insert_op_conf=...``; ``--precision_mode`` (or ``--precision_mode_v2`` for a v2
name) only when it is not ATC's default ``force_fp16``, then ``--keep_dtype`` and ``--modify_mixlist``
when given), written beside the artifact as ``<base>.atc.sh``.
"""

from __future__ import annotations

import difflib
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from infer_kit.artifacts import artifact_paths
from infer_kit.converter.precision import DEFAULT_PRECISION_MODE, precision_argv
from infer_kit.errors import InferKitError
from infer_kit.fsutil import write_text_atomic

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


def atc_argv(*, model: str, output: str, input_name: str, batch: int | None, chw: tuple[int, int, int], soc: str,
             aipp_config: str | None = None, precision_mode: str = DEFAULT_PRECISION_MODE,
             log_level: str = "error", shape_argv: Sequence[str] | None = None,
             input_format: str = "NCHW", keep_dtype: str | None = None,
             modify_mixlist: str | None = None) -> list[str]:
    """The ATC argv of the ModelZoo recipe (reference 2.1), token for token; the precision options after it.

    ``shape_argv`` replaces ``--input_shape=...`` for a dynamic-shape compile (the input shape
    with -1 axes, then ``--dynamic_batch_size=...`` and friends, see :mod:`.dynamic`).
    """
    if shape_argv is None:
        shape = ",".join(str(d) for d in (batch, *chw))
        shape_argv = [f"--input_shape={input_name}:{shape}"]
    argv = ["atc", f"--model={model}", "--framework=5", f"--output={output}", f"--input_format={input_format}",
            *shape_argv]
    if aipp_config is not None:
        argv.append("--enable_small_channel=1")
    argv += [f"--log={log_level}", f"--soc_version={soc}"]
    if aipp_config is not None:
        argv.append(f"--insert_op_conf={aipp_config}")
    argv += precision_argv(precision_mode)
    if keep_dtype is not None:
        argv.append(f"--keep_dtype={keep_dtype}")
    if modify_mixlist is not None:
        argv.append(f"--modify_mixlist={modify_mixlist}")
    return argv


_DOUBLE_QUOTED = ("--input_shape=", "--input_shape_range=", "--dynamic_image_size=", "--dynamic_dims=",
                  "--dynamic_batch_size=")


def render_command(argv: Sequence[str]) -> str:
    """Shell text of ``argv``, quoting ``--input_shape`` (and the gear options) the way the recipe and docs do."""
    parts = []
    for token in argv:
        if token.startswith(_DOUBLE_QUOTED) and not any(c in token for c in '"$\\`'):
            flag, value = token.split("=", 1)
            parts.append(f'{flag}="{value}"')
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
