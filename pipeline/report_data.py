"""What the report shows, gathered from the work folder: the rows, the main row's details, names, provenance."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer_kit.fsutil import read_json
from infer_kit.labels import image_key, read_class_index
from infer_kit.pipeline.layout import WorkFolder
from infer_kit.pipeline.report import ImageRow, Misclassified, ReportData
from infer_kit.pipeline.rows import Row, StageOutcome
from infer_kit.spec import PreprocessSpec

if TYPE_CHECKING:
    from infer_kit.metadata import ModelInfo
    from infer_kit.pipeline.config import PipelineConfig

MAX_THUMBNAILS = 12
MAX_CONFUSIONS = 10


def build_report_data(config: PipelineConfig, work: WorkFolder, spec: PreprocessSpec, model: ModelInfo,
                      rows: list[Row], outcomes: list[StageOutcome], labels: Path,
                      prep_info: dict[str, dict[str, Any]], train_info: dict[str, Any] | None = None,
                      per_image: dict[str, dict[str, Any]] | None = None) -> ReportData:
    main = next((r for r in rows if not r.is_reference), rows[0])
    details = read_json(work.details_json(main.name), what="evaluation details")
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
    images = _image_rows(config, labels, rows, per_image, name) if per_image else []
    return ReportData(
        title=f"infer-kit report: {config.name}",
        model_label=model.arch or config.name,
        rows=rows,
        spec=spec.describe(),
        aipp_config=_aipp_config(work),
        main_row=main.name,
        headline=_headline(main, rows, train_info),
        per_class=per_class,
        confusions=confusions,
        misclassified=misclassified,
        images=images,
        stages=[(o.stage, o.status, o.seconds) for o in outcomes],
        provenance=_provenance(config, work),
        layers=[(r.name, read_json(r.layers_json, what="layer comparison")) for r in rows if r.layers_json],
        agreement_gate=None if config.compare.max_disagreement is None else 100 - config.compare.max_disagreement,
    )


def _image_rows(config: PipelineConfig, labels: Path, rows: list[Row], per_image: dict[str, dict[str, Any]],
                name: Any) -> list[ImageRow]:
    """Every image with its true class and each row's top-1 (name, probability)."""
    from infer_kit.labels import read_val_labels

    truth = read_val_labels(labels)
    keys = sorted({key for found in per_image.values() for key in found})
    paths = _image_paths(config.data.images, set(keys))
    out = []
    for key in keys:
        predicted = {row.name: (name(p.top1), p.probabilities[0], p.top1)
                     for row in rows for p in [per_image.get(row.name, {}).get(key)] if p is not None}
        label = truth.get(key)
        out.append(ImageRow(paths.get(key), key, name(label) if label is not None else "-", label, predicted))
    return out


def _headline(main: Row, rows: list[Row], train_info: dict[str, Any] | None) -> list[str]:
    top5 = "" if main.top5 is None else f" / top-5 {main.top5:.2f} %"
    lines = [f"{main.images:,} images: top-1 {main.top1:.2f} %{top5} ({main.name})"]
    agreements = [r.agreement for r in rows if r.agreement is not None]
    reference = next((r for r in rows if r.is_reference), None)
    if reference is not None and reference.top1 is not None:
        deltas = [(r.delta_top1, r.name) for r in rows if r.delta_top1 is not None]
        if deltas:
            worst, name = min(deltas)
            lines.append(f"fp32 ONNX top-1 {reference.top1:.2f} %; the largest loss against it: {worst:+.2f} points "
                         f"({name})")
    warned = [r.name for r in rows if r.range_warning]
    if warned:
        lines.append(f"range check: tensors leave the float16/bfloat16 range in {', '.join(warned)} (see below)")
    if agreements:
        lines.append(f"every row agrees with the fp32 ONNX model on the top-1 of at least {min(agreements):.2f} % "
                     "of the images")
    with_torch = [r.agreement_torch for r in rows if r.agreement_torch is not None]
    if with_torch:
        lines.append(f"every row agrees with the checkpoint in eager torch on the top-1 of at least "
                     f"{min(with_torch):.2f} % of the images")
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


def _aipp_config(work: WorkFolder) -> str | None:
    for manifest in work.artifact_manifests():
        text = read_json(manifest, what="artifact manifest").get("aipp_config")
        if text:
            return str(text)
    return None


def _provenance(config: PipelineConfig, work: WorkFolder) -> dict[str, Any]:
    from importlib import metadata

    from infer_kit import __version__

    versions = {}
    for package in ("torch", "onnx", "onnxruntime", "timm"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    manifests = work.artifact_manifests()
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
