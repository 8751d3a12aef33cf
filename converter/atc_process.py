"""Running the real ``atc`` (CANN): its log streamed, its failures turned into one line, its ``.om`` found."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from infer_kit.artifacts import ArtifactPaths
from infer_kit.console import log
from infer_kit.converter.atc_command import render_command
from infer_kit.errors import BackendUnavailable, InferKitError

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
    plain = ArtifactPaths(base).om
    if plain.is_file():
        return plain
    for candidate in sorted(base.parent.glob(base.name + "_*_*.om")):
        return candidate
    return None
