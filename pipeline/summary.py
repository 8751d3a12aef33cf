"""Turning the pipeline's stage outputs into table rows, report data and gate verdicts."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer_kit.fsutil import read_json
from infer_kit.labels import image_key, read_class_index
from infer_kit.pipeline.report import Misclassified, ReportData, ReportRow
from infer_kit.spec import PreprocessSpec

if TYPE_CHECKING:
    from infer_kit.metadata import ModelInfo
    from infer_kit.pipeline.config import PipelineConfig
    from infer_kit.pipeline.runner import Row, StageOutcome

MAX_THUMBNAILS = 12
MAX_CONFUSIONS = 10


def row_record(work: Path, row: Row, evaluation: dict[str, Any], comparison: dict[str, Any] | None) -> dict[str, Any]:
    """One table row: accuracy from evaluate, speed from the run summary, agreement from compare."""
    summary = read_json(work / "runs" / f"{row.name}_summary.json", what="run summary")
    compute = summary.get("NPU_compute_time", {})
    ours = summary.get("infer_kit", {})
    return {
        "name": row.name,
        "backend": row.backend,
        "batch": row.batch,
        "precision": row.precision,
        "layout": row.layout,
        "images": evaluation["images"],
        "top1": 100 * evaluation["top1"],
        "top5": 100 * evaluation["top5"] if evaluation.get("top5") is not None else None,
        "images_per_s": float(ours.get("throughput_e2e", 0.0)),
        "compute_images_per_s": float(summary.get("throughput", 0.0)),
        "latency_p50_ms": float(compute.get("median", 0.0)),
        "latency_p99_ms": float(compute.get("percentile(99%)", 0.0)),
        "latencies_ms": [float(v) for v in summary.get("npu_compute_time_list", [])],
        "agreement": 100 * comparison["top1_agreement"] if comparison else None,
        "result_json": str(work / "results" / row.name / "result.json"),
    }


def check_gates(config: PipelineConfig, rows: list[dict[str, Any]],
                comparisons: dict[str, dict[str, Any]]) -> list[str]:
    """One message per gate a row misses (accuracy in percent; disagreement with the fp32 reference)."""
    failures = []
    gates = config.evaluate
    for row in rows:
        if gates.min_top1 is not None and row["top1"] < gates.min_top1:
            failures.append(f"{row['name']}: top-1 {row['top1']:.2f} % < {gates.min_top1:g} %")
        if gates.min_top5 is not None and row["top5"] is not None and row["top5"] < gates.min_top5:
            failures.append(f"{row['name']}: top-5 {row['top5']:.2f} % < {gates.min_top5:g} %")
    limit = config.compare.max_disagreement
    for name, comparison in comparisons.items():
        disagreement = 100 * (1 - comparison["top1_agreement"])
        if limit is not None and disagreement > limit:
            failures.append(f"{name}: top-1 disagrees with the fp32 ONNX model on {disagreement:.2f} % > {limit:g} %")
    return failures


def build_report_data(config: PipelineConfig, work: Path, spec: PreprocessSpec, model: ModelInfo,
                      rows: list[dict[str, Any]], outcomes: list[StageOutcome], labels: Path,
                      prep_info: dict[str, dict[str, Any]], train_info: dict[str, Any] | None = None) -> ReportData:
    main = next((r for r in rows if r["name"] != "onnx_fp32"), rows[0])
    details = read_json(work / "results" / main["name"] / "details.json", what="evaluation details")
    names = _class_names(model, labels, prep_info)

    def name(index: int, fallback: str | None = None) -> str:
        if 0 <= index < len(names):
            return names[index]
        return fallback or str(index)

    per_class = [(name(c["label"], c.get("name")), 100 * c["top1_accuracy"], c["images"]) for c in details["per_class"]]
    confusions = [(name(p["label"], p.get("label_name")), name(p["predicted"], p.get("predicted_name")), p["count"])
                  for p in details["confusion_pairs"][:MAX_CONFUSIONS]]
    missed = details["misclassified"][:MAX_THUMBNAILS]
    paths = _image_paths(config.data.images, {m["image"] for m in missed})
    misclassified = [Misclassified(paths.get(m["image"]), m["image"], name(m["label"]), name(m["predicted"][0]))
                     for m in missed]
    model_label = model.arch or config.name
    report_rows = [
        ReportRow(name=r["name"], model=model_label, backend=r["backend"], batch=r["batch"], precision=r["precision"],
                  top1=r["top1"], top5=r["top5"] or 0.0, images_per_s=r["images_per_s"],
                  compute_images_per_s=r["compute_images_per_s"], latency_p50_ms=r["latency_p50_ms"],
                  latency_p99_ms=r["latency_p99_ms"], latencies_ms=r["latencies_ms"], agreement=r["agreement"],
                  images=r["images"])
        for r in rows
    ]
    return ReportData(
        title=f"infer-kit report: {config.name}",
        rows=report_rows,
        spec=spec.describe(),
        aipp_config=_aipp_config(work),
        main_row=main["name"],
        headline=_headline(main, rows, train_info),
        per_class=per_class,
        confusions=confusions,
        misclassified=misclassified,
        stages=[(o.stage, o.status, o.seconds) for o in outcomes],
        provenance=_provenance(config, work),
    )


def _headline(main: dict[str, Any], rows: list[dict[str, Any]], train_info: dict[str, Any] | None) -> list[str]:
    top5 = "" if main["top5"] is None else f" / top-5 {main['top5']:.2f} %"
    lines = [f"{main['images']:,} images: top-1 {main['top1']:.2f} %{top5} ({main['name']})"]
    agreements = [r["agreement"] for r in rows if r["agreement"] is not None]
    if agreements:
        lines.append(f"every row agrees with the fp32 ONNX model on the top-1 of at least {min(agreements):.2f} % "
                     "of the images")
    if train_info and train_info.get("best_acc1") is not None:
        lines.append(f"the trainer's own evaluation: Acc@1 {train_info['best_acc1']:.2f} % "
                     f"(seeds' table row: {train_info.get('table_row', '').strip()})")
    return lines


def _class_names(model: ModelInfo, labels: Path, prep_info: dict[str, dict[str, Any]]) -> list[str]:
    """Human-readable names from a class_index.json (beside the labels or the tensors), else the checkpoint's."""
    candidates = [labels.parent / "class_index.json"]
    candidates += [Path(info["class_index"]) for info in prep_info.values() if info.get("class_index")]
    for candidate in candidates:
        if candidate.is_file():
            return [name for _, name in read_class_index(candidate)]
    classes = model.provenance.get("classes")
    return [str(c) for c in json.loads(classes)] if classes else []


def _image_paths(images: Path, keys: set[str]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if not keys:
        return found
    for path in images.rglob("*"):
        key = image_key(path.name)
        if key in keys and path.is_file():
            found.setdefault(key, path)
            if len(found) == len(keys):
                break
    return found


def _aipp_config(work: Path) -> str | None:
    for manifest in sorted((work / "om").glob("*.manifest.json")):
        text = read_json(manifest, what="artifact manifest").get("aipp_config")
        if text:
            return str(text)
    return None


def _provenance(config: PipelineConfig, work: Path) -> dict[str, Any]:
    from importlib import metadata

    from infer_kit import __version__

    versions = {}
    for package in ("torch", "onnx", "onnxruntime", "timm"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    manifests = sorted((work / "om").glob("*.manifest.json"))
    argv = read_json(manifests[0], what="artifact manifest").get("atc_argv") if manifests else None
    return {
        "config": str(config.source) if config.source else "flags",
        "images": str(config.data.images),
        "soc": config.atc.soc,
        "atc argv": " ".join(argv) if argv else None,
        "infer-kit": __version__,
        **versions,
        "python": platform.python_version(),
    }
