"""The pipeline's work folder: every path it writes, decided here once.

::

    pipeline-state.json        stage keys (the cache)
    train/                     checkpoint.pth, model_best.pth   (with a [train] section)
    export/exported.onnx       the traced graph, as export wrote it
    model.onnx                 the same graph with the pipeline's spec stamped in
    om/model_bs16_force_fp16.* compiled or emulated artifacts, manifests, ATC scripts
    prep/aipp, prep/float      preprocessed tensors (+ manifest.json, label files)
    runs/<row>/, runs/<row>_summary.json   ais_bench-style outputs and summaries
    results/<row>/             result.json (ModelZoo), details.json, compare.json (vs fp32 ONNX),
                               compare_torch.json (vs eager torch, with [compare] torch = true), layers.json
    report.md, report.html, summary.json
    .pipeline.lock             held while a pipeline runs here
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infer_kit.artifacts import FOLDER_MANIFEST, artifact_paths
from infer_kit.checkpoint import BEST_NAME, CHECKPOINT_NAME
from infer_kit.run_summary import summary_path

# What the pipeline writes, replaces or deletes directly inside the work folder.
MANAGED = ("pipeline-state.json", "train", "export", "model.onnx", "om", "prep", "runs", "results", "report.md",
           "report.html", "summary.json")


@dataclass(frozen=True)
class WorkFolder:
    root: Path

    def managed_entry(self, path: Path) -> Path | None:
        """The entry of :data:`MANAGED` that ``path`` is or lies inside (which a rerun may replace), else None."""
        path, root = path.resolve(), self.root.resolve()
        for name in MANAGED:
            entry = root / name
            if path == entry or entry in path.parents:
                return entry
        return None

    @property
    def lock_file(self) -> Path:
        """Held while a pipeline runs here: one pipeline per work folder."""
        return self.root / ".pipeline.lock"

    # ---- model ----------------------------------------------------------------------------
    @property
    def train_dir(self) -> Path:
        return self.root / "train"

    @property
    def train_checkpoint(self) -> Path:
        return self.train_dir / CHECKPOINT_NAME

    @property
    def best_checkpoint(self) -> Path:
        return self.train_dir / BEST_NAME

    @property
    def exported(self) -> Path:
        return self.root / "export" / "exported.onnx"

    @property
    def model(self) -> Path:
        return self.root / "model.onnx"

    def artifact_base(self, row: str) -> Path:
        return self.root / "om" / f"model_{row}"

    def artifact_manifest(self, row: str) -> Path:
        return artifact_paths(self.artifact_base(row)).manifest

    def artifact_manifests(self) -> list[Path]:
        return sorted((self.root / "om").glob("*.manifest.json"))

    # ---- data and runs --------------------------------------------------------------------
    def prep_dir(self, layout: str) -> Path:
        return self.root / "prep" / layout

    def prep_manifest(self, layout: str) -> Path:
        return self.prep_dir(layout) / FOLDER_MANIFEST

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def run_dir(self, row: str) -> Path:
        return self.runs_dir / row

    def run_summary(self, row: str) -> Path:
        return summary_path(self.run_dir(row))

    def results_dir(self, row: str) -> Path:
        return self.root / "results" / row

    def result_json(self, row: str) -> Path:
        return self.results_dir(row) / "result.json"

    def details_json(self, row: str) -> Path:
        return self.results_dir(row) / "details.json"

    def compare_torch_json(self, row: str) -> Path:
        return self.results_dir(row) / "compare_torch.json"

    def compare_json(self, row: str) -> Path:
        return self.results_dir(row) / "compare.json"

    def layers_json(self, row: str) -> Path:
        return self.results_dir(row) / "layers.json"

    # ---- the report -----------------------------------------------------------------------
    @property
    def summary_json(self) -> Path:
        return self.root / "summary.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"
