"""The pipeline's per-row stages as plain functions ``f(resume, *args) -> info``.

They take only paths and values (no pipeline object), so the same function runs here or, with
``[cluster] engine = "ray"``, as a Ray task on any node that mounts the work folder; what it
returns is what the stage cache records. Each is one call of a stage's public API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infer_kit.converter import compile_om, load_checkpoint_model
from infer_kit.postprocess import compare, evaluate
from infer_kit.runtime import run
from infer_kit.spec import PreprocessSpec


def compile_row(resume: bool, model: Path, base: Path, *, soc: str, batch: int, precision: str, aipp: str,
                emulate: bool | None, calibration: Path | None = None, samples: int | None = None) -> dict[str, Any]:
    artifact = compile_om(model, soc=soc, batch_sizes=[batch], aipp=aipp, precision_mode=precision, output=base,
                          emulate=emulate, force=True, calibration=calibration, samples=samples)[0]
    return {"kind": artifact.kind, "manifest": str(artifact.paths.manifest)}


def run_row(resume: bool, model: Path, prep: Path, runs_dir: Path, name: str, *, outfmt: str, batch: int,
            warmup_count: int, threads: int | None) -> dict[str, Any]:
    result = run(model, prep, runs_dir, output_dirname=name, outfmt=outfmt, batchsize=batch,
                 warmup_count=warmup_count, threads=threads, resume=resume)
    return {"summary": str(result.summary_path)}


def run_torch_row(resume: bool, checkpoint: Path, prep: Path, runs_dir: Path, name: str, *, arch: str | None,
                  source: str, num_classes: int | None, trust: bool, spec: PreprocessSpec | None, outfmt: str,
                  batch: int, warmup_count: int, threads: int | None) -> dict[str, Any]:
    """The checkpoint in eager torch, loaded as export loads it (``source``), on the float tensors of ``spec``."""
    model, _ = load_checkpoint_model(arch, checkpoint, source=source, num_classes=num_classes, trust=trust)
    result = run(model, prep, runs_dir, output_dirname=name, outfmt=outfmt, batchsize=batch, backend="torch",
                 warmup_count=warmup_count, threads=threads, resume=resume, spec=spec)
    return {"summary": str(result.summary_path)}


def evaluate_row(resume: bool, run_dir: Path, labels: Path, result_json: Path, details: Path, *, topk: int,
                 allow_partial: bool, workers: int | None) -> dict[str, Any]:
    result = evaluate(run_dir, labels, output=result_json, details=details, topk=topk, allow_partial=allow_partial,
                      workers=workers)
    return {"top1": result.top1, "top5": result.top5, "images": result.images, "classes": result.classes}


def compare_row(resume: bool, run_dir: Path, reference_dir: Path, labels: Path, output: Path, *,
                workers: int | None) -> dict[str, Any]:
    result = compare(run_dir, reference_dir, labels=labels, output=output, workers=workers)
    return {"top1_agreement": result.top1_agreement, "max_abs_diff": result.max_abs_diff,
            "cosine_min": result.cosine_min, "changed": len(result.changed)}
