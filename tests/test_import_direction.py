"""The core imports no stage, stages import only earlier stages' public names, no private names cross floors."""

from __future__ import annotations

import shutil
from pathlib import Path

from import_rules import cycles, module_graph, violations

ROOT = Path(__file__).resolve().parents[1]


def test_the_repository_keeps_the_direction_of_imports():
    assert violations(ROOT) == []


def test_no_module_imports_itself_through_others():
    graph = module_graph(ROOT)
    assert len(graph) > 100 and cycles(graph) == []
    graph["infer_kit.pipeline.rows"].add("infer_kit.pipeline.runner")  # plant the cycle the pipeline once had
    assert any({"infer_kit.pipeline.rows", "infer_kit.pipeline.runner"} <= set(c) for c in cycles(graph))


def _copy(tmp_path: Path) -> Path:
    for folder in ("infer_kit", "trainer", "aipp", "converter", "preprocess", "runtime", "postprocess", "pipeline",
                   "cli", "benchmarks"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_planted_violations_are_each_caught(tmp_path):
    root = _copy(tmp_path)
    (root / "infer_kit" / "planted_module.py").write_text("from infer_kit.runtime import run\n")
    (root / "infer_kit" / "planted_function.py").write_text(
        "def f():\n    from infer_kit.pipeline import run_pipeline\n    return run_pipeline\n")
    (root / "infer_kit" / "planted_dynamic.py").write_text(
        "import importlib\n\nstage = importlib.import_module('infer_kit.converter.checkpoint')\n")
    (root / "converter" / "planted_later.py").write_text("from infer_kit.postprocess import evaluate\n")
    (root / "runtime" / "planted_deep.py").write_text("from infer_kit.converter.export import export_onnx\n")
    (root / "runtime" / "planted_private.py").write_text("from infer_kit.fsutil import _UMASK\n")
    (root / "cli" / "planted_hidden.py").write_text("from infer_kit.runtime import with_batch\n")
    found = "\n".join(violations(root))
    for planted, what in (
        ("infer_kit/planted_module.py:1", "the core imports infer_kit.runtime"),
        ("infer_kit/planted_function.py:2", "the core imports infer_kit.pipeline"),
        ("infer_kit/planted_dynamic.py:3", "the core imports infer_kit.converter.checkpoint"),
        ("converter/planted_later.py:1", "stage converter imports infer_kit.postprocess"),
        ("runtime/planted_deep.py:1", "infer_kit.converter.export is not converter's public API"),
        ("runtime/planted_private.py:1", "private name(s) _UMASK"),
        ("cli/planted_hidden.py:1", "with_batch is not in infer_kit.runtime.__all__"),
    ):
        assert f"{planted}: {what}" in found, found
    assert len(violations(root)) == 7
