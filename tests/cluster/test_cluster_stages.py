"""preprocess, evaluate and the pipeline on a real multi-node cluster: the same files as one machine writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from ray_support import assert_same_tree, partials

from infer_kit.spec import PreprocessSpec

SPEC = PreprocessSpec(resize=36, crop=32)
TIMING_KEYS = {"updated", "seconds", "workers"}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(3)
    for i in range(120):
        h, w = rng.integers(40, 120, 2)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            folder / f"im{i:03d}.{'png' if i % 3 else 'jpg'}")
    return folder


def _manifest(folder: Path) -> dict:
    return {k: v for k, v in json.loads((folder / "manifest.json").read_text()).items() if k not in TIMING_KEYS}


def test_preprocess_writes_the_same_files_and_manifest(cluster, images, tmp_path):
    from infer_kit.preprocess import preprocess

    preprocess(images, tmp_path / "local", spec=SPEC, workers=1)
    result = preprocess(images, tmp_path / "ray", spec=SPEC, engine="ray", address=cluster.address)
    assert (result.written, result.workers) == (120, 2)  # the cluster's two CPUs
    assert_same_tree(tmp_path / "local", tmp_path / "ray", skip=("manifest.json",))
    assert _manifest(tmp_path / "local") == _manifest(tmp_path / "ray") and not partials(tmp_path / "ray")


def test_evaluate_gives_the_same_result_json_and_details(cluster, reference, data, tmp_path, monkeypatch):
    from infer_kit.postprocess import evaluate, parallel

    rng = np.random.default_rng(5)
    labels = tmp_path / "val_label.txt"
    keys = sorted(p.name.split(".")[0] for p in Path(data["prep"]).glob("*.bin"))
    labels.write_text("".join(f"{k}.JPEG {int(rng.integers(0, 10))}\n" for k in keys))
    monkeypatch.setattr(parallel, "CHUNK_FILES", 25)  # 9 chunks of the 203 outputs, merged in order
    local = evaluate(reference["dir"], labels, output=tmp_path / "local.json", details=tmp_path / "local_d.json",
                     workers=1)
    ray = evaluate(reference["dir"], labels, output=tmp_path / "ray.json", details=tmp_path / "ray_d.json",
                   engine="ray", address=cluster.address)
    assert (tmp_path / "local.json").read_bytes() == (tmp_path / "ray.json").read_bytes()
    a, b = (json.loads((tmp_path / name).read_text()) for name in ("local_d.json", "ray_d.json"))
    assert a.pop("result_json") != b.pop("result_json") and a == b and len(a["misclassified"]) > 100
    assert ray.hits == local.hits and ray.workers == 2


def test_pipeline_rows_as_ray_tasks_give_the_same_results(cluster, images, tmp_path):
    from test_run_support import float_model

    from infer_kit.pipeline import config_from_dict, run_pipeline

    model = float_model(tmp_path / "tiny.onnx", batch=None, spec=SPEC)
    labels = tmp_path / "val_label.txt"
    labels.write_text("".join(f"{p.name} {i % 10}\n" for i, p in enumerate(sorted(images.iterdir()))))

    def config(work: str, **cluster_section):
        raw = {"work_dir": str(tmp_path / work), "model": {"onnx": str(model)},
               "data": {"images": str(images), "labels": str(labels), "workers": 1},
               "atc": {"batch_sizes": [1, 4], "emulate": True}, "run": {"threads": 1}}
        if cluster_section:
            raw["cluster"] = cluster_section
        return config_from_dict(raw, base=tmp_path, where="test")

    local = run_pipeline(config("local"))
    ray = run_pipeline(config("ray", engine="ray", address=cluster.address))
    assert [r.name for r in ray.rows] == [r.name for r in local.rows] == ["bs1_force_fp16", "bs4_force_fp16",
                                                                          "onnx_fp32"]
    for a, b in zip(local.rows, ray.rows, strict=True):
        assert a.result_json.read_bytes() == b.result_json.read_bytes()
        assert (a.top1, a.agreement) == (b.top1, b.agreement)
        assert_same_tree(tmp_path / "local" / "runs" / a.name, tmp_path / "ray" / "runs" / b.name)
    assert sorted(ray.ran) == sorted(local.ran)
    again = run_pipeline(config("ray", engine="ray", address=cluster.address))
    assert again.ran == []  # the stage cache, kept by the driver, knows every stage the cluster ran
