"""The preprocess stage as a library: folders, manifests, labels, reruns, bad input, targets."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from infer_kit.artifacts import read_folder_manifest, write_artifact_manifest
from infer_kit.errors import InferKitError
from infer_kit.labels import read_class_index, read_val_labels
from infer_kit.preprocess.stage import preprocess, resolve_input
from infer_kit.preprocess.transforms import load_rgb, sample_bytes
from infer_kit.presets import get_preset

SYNSETS = ("n01440764", "n02123045")  # tench, tabby cat


def expected_bytes(path: Path, preset: str, layout: str) -> bytes:
    return sample_bytes(load_rgb(path), get_preset(preset), layout)


@pytest.fixture
def flat(photo_dir: Path, tmp_path: Path) -> Path:
    """ImageNet-val-like names over the real photos, plus a stray text file."""
    folder = tmp_path / "val"
    folder.mkdir()
    for index, path in enumerate(sorted(photo_dir.glob("*.jpg")), start=1):
        shutil.copyfile(path, folder / f"ILSVRC2012_val_{index:08d}.JPEG")
    (folder / "README.txt").write_text("not an image\n")
    (folder / "extra").mkdir()
    shutil.copyfile(photo_dir / "coffee.jpg", folder / "extra" / "ignored.jpg")
    return folder


@pytest.fixture
def tree(photo_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "tree"
    photos = sorted(photo_dir.glob("*.jpg"))
    for index, path in enumerate(photos):
        target = folder / SYNSETS[index % 2]
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / f"img{index}.{'JPEG' if index % 3 else 'jpg'}")
    return folder


def test_flat_folder_aipp_files_manifest_and_summary(flat, tmp_path):
    dst = tmp_path / "prep"
    result = preprocess(flat, dst, preset="resnet")
    bins = sorted(dst.glob("*.bin"))
    assert [b.stem for b in bins] == sorted(p.name.split(".")[0] for p in flat.glob("*.JPEG"))
    for path in flat.glob("*.JPEG"):
        assert (dst / f"{path.stem}.bin").read_bytes() == expected_bytes(path, "resnet", "aipp")
    assert (result.written, result.kept, result.skipped, result.layout) == (7, 0, [], "aipp")
    assert result.bytes_written == 7 * 196_608 and result.ignored == 1
    folder = read_folder_manifest(dst)
    assert folder is not None
    assert (folder.layout, folder.dtype, folder.shape, folder.bytes_per_file, folder.count) == (
        "aipp", "uint8", (256, 256, 3), 196_608, 7)
    assert folder.spec == get_preset("resnet")
    assert folder.raw["source"] == str(flat.resolve()) and folder.raw["skipped"] == []
    assert folder.raw["labels"] is None and folder.raw["complete"] is True
    assert not (dst / "val_label.txt").exists() and not (dst / "ignored.bin").exists()


def test_tree_float_bgr_labels_and_class_index(tree, tmp_path):
    dst = tmp_path / "prep"
    result = preprocess(tree, dst, preset="efficientnetB3", layout="float")
    images = sorted(tree.rglob("img*"))
    for path in images:
        assert (dst / f"{path.name.split('.')[0]}.bin").read_bytes() == expected_bytes(path, "efficientnetB3", "float")
    labels = read_val_labels(dst / "val_label.txt")
    assert labels == {p.name.split(".")[0]: SYNSETS.index(p.parent.name) for p in images}
    lines = (dst / "val_label.txt").read_text().splitlines()
    assert all(line.split()[0] in {p.name for p in images} for line in lines)
    assert read_class_index(dst / "class_index.json") == [("n01440764", "tench"), ("n02123045", "tabby cat")]
    folder = read_folder_manifest(dst)
    assert folder.layout == "float" and folder.shape == (3, 300, 300) and folder.bytes_per_file == 3 * 300 * 300 * 4
    assert folder.raw["labels"] == "val_label.txt" and folder.raw["class_index"] == "class_index.json"
    assert result.classes == 2 and result.source_kind == "tree"


def test_tree_with_plain_folder_names_keeps_them_as_names(photo_dir, tmp_path):
    src = tmp_path / "src"
    for name in ("dogs", "cats"):
        (src / name).mkdir(parents=True)
        shutil.copyfile(photo_dir / f"{'chelsea' if name == 'cats' else 'coffee'}.jpg", src / name / f"{name}1.jpg")
    preprocess(src, tmp_path / "out", preset="resnet")
    assert read_class_index(tmp_path / "out" / "class_index.json") == [("cats", "cats"), ("dogs", "dogs")]
    assert read_val_labels(tmp_path / "out" / "val_label.txt") == {"cats1": 0, "dogs1": 1}


def test_name_collision_is_refused_before_any_work(photo_dir, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copyfile(photo_dir / "chelsea.jpg", src / "cat.jpg")
    Image.open(photo_dir / "coffee.jpg").save(src / "cat.png")
    with pytest.raises(InferKitError, match=r"cat\.jpg and cat\.png would both be written to cat\.bin"):
        preprocess(src, tmp_path / "out", preset="resnet")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["truncated", "empty", "not_an_image"])
def test_bad_image_stops_with_its_name_or_is_skipped(flat, tmp_path, case):
    data = (flat / "ILSVRC2012_val_00000001.JPEG").read_bytes()
    content = {"truncated": data[: len(data) // 4], "empty": b"", "not_an_image": b"%PDF-1.4 hello"}[case]
    bad = flat / "ILSVRC2012_val_00000099.JPEG"
    bad.write_bytes(content)
    with pytest.raises(InferKitError, match=r"cannot preprocess .*ILSVRC2012_val_00000099\.JPEG") as info:
        preprocess(flat, tmp_path / "stop", preset="resnet")
    assert "--on-error skip" in str(info.value)
    assert read_folder_manifest(tmp_path / "stop").raw["complete"] is False

    result = preprocess(flat, tmp_path / "skip", preset="resnet", on_error="skip")
    assert result.written == 7 and [s["file"] for s in result.skipped] == [bad.name]
    manifest = read_folder_manifest(tmp_path / "skip")
    assert manifest.count == 7 and manifest.raw["skipped"][0]["file"] == bad.name
    assert manifest.raw["skipped"][0]["reason"] and not (tmp_path / "skip" / "ILSVRC2012_val_00000099.bin").exists()


def test_missing_source_and_empty_source(tmp_path):
    with pytest.raises(InferKitError, match="source folder not found"):
        preprocess(tmp_path / "nope", tmp_path / "out", preset="resnet")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(InferKitError, match="no images in"):
        preprocess(tmp_path / "empty", tmp_path / "out", preset="resnet")


def test_destination_of_another_spec_or_layout_is_refused(flat, tmp_path):
    dst = tmp_path / "prep"
    preprocess(flat, dst, preset="resnet", limit=2)
    before = {p.name: p.read_bytes() for p in dst.glob("*.bin")}
    with pytest.raises(InferKitError, match=r"holds aipp tensors of another spec \(destination vs this run: "
                       r"aipp geometry square 256 vs crop 300; resize 256 vs 342\)"):
        preprocess(flat, dst, preset="efficientnetB3", limit=2)
    with pytest.raises(InferKitError, match=r"holds aipp tensors \(uint8 256x256x3\), this run writes float tensors "
                       r"\(float32 3x224x224\)"):
        preprocess(flat, dst, preset="resnet", layout="float", limit=2)
    assert {p.name: p.read_bytes() for p in dst.glob("*.bin")} == before
    # Same source bytes for AIPP: another crop or mean is applied on the device, so it is allowed.
    preprocess(flat, dst, preset="resnet", limit=2, overrides={"crop": 200})
    assert read_folder_manifest(dst).spec.crop == 200


def test_destination_with_foreign_or_stale_bins_is_refused(flat, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x.bin").write_bytes(b"\0" * 10)
    with pytest.raises(InferKitError, match="without an infer-kit manifest"):
        preprocess(flat, foreign, preset="resnet")
    dst = tmp_path / "prep"
    preprocess(flat, dst, preset="resnet", limit=3)
    with pytest.raises(InferKitError, match="1 .bin files that this run would not write"):
        preprocess(flat, dst, preset="resnet", limit=2)


def test_rerun_is_identical_and_resume_keeps_complete_files(flat, tmp_path):
    dst = tmp_path / "prep"
    preprocess(flat, dst, preset="resnet")
    reference = {p.name: p.read_bytes() for p in dst.glob("*.bin")}
    rerun = preprocess(flat, dst, preset="resnet")
    assert rerun.written == 7 and {p.name: p.read_bytes() for p in dst.glob("*.bin")} == reference

    kept = dst / "ILSVRC2012_val_00000001.bin"
    os.utime(kept, (1, 1))
    partial = dst / "ILSVRC2012_val_00000002.bin"
    partial.write_bytes(reference[partial.name][:1000])
    (dst / "ILSVRC2012_val_00000003.bin").unlink()
    (dst / ".ILSVRC2012_val_00000004.bin.123.partial").write_bytes(b"junk")
    result = preprocess(flat, dst, preset="resnet", resume=True)
    assert (result.kept, result.written) == (5, 2)
    assert kept.stat().st_mtime == 1
    assert {p.name: p.read_bytes() for p in dst.glob("*.bin")} == reference
    assert not list(dst.glob(".*.partial"))


def test_label_file_is_checked(flat, tmp_path):
    labels = tmp_path / "val_label.txt"
    names = sorted(p.name for p in flat.glob("*.JPEG"))
    labels.write_text("".join(f"{n} {i}\n" for i, n in enumerate(names[:-2])))
    with pytest.raises(InferKitError, match=r"no label for 2 of 7 images \(e\.g\. ILSVRC2012_val_00000006\.JPEG"):
        preprocess(flat, tmp_path / "a", preset="resnet", labels=labels)
    assert not (tmp_path / "a").exists()
    result = preprocess(flat, tmp_path / "b", preset="resnet", labels=labels, on_error="skip")
    assert result.unlabelled == names[-2:] and result.written == 7
    assert read_folder_manifest(tmp_path / "b").raw["labels"] == "../val_label.txt"
    labels.write_text("".join(f"{n} {i}\n" for i, n in enumerate(names)))
    assert preprocess(flat, tmp_path / "c", preset="resnet", labels=labels).unlabelled == []


def test_limit_takes_the_first_images_in_sorted_order(flat, tmp_path):
    result = preprocess(flat, tmp_path / "prep", preset="resnet", limit=3)
    assert result.total == 3
    expected = [f"ILSVRC2012_val_0000000{i}" for i in (1, 2, 3)]
    assert sorted(p.stem for p in (tmp_path / "prep").glob("*.bin")) == expected


def test_parallel_workers_write_the_same_bytes(photo_dir, tmp_path):
    src = tmp_path / "many"
    src.mkdir()
    photos = [Image.open(p).convert("RGB") for p in sorted(photo_dir.glob("*.jpg"))]
    for index in range(30):
        photo = photos[index % len(photos)]
        photo.resize((120 + index * 7, 90 + index * 3)).save(src / f"im{index:03d}.jpg", quality=85)
    spec = get_preset("resnet").with_overrides(resize=96, crop=80)
    parallel = preprocess(src, tmp_path / "p", spec=spec, workers=2, layout="float")
    serial = preprocess(src, tmp_path / "s", spec=spec, workers=1, layout="float")
    assert parallel.workers == 2 and serial.workers == 1 and parallel.written == 30
    for path in (tmp_path / "s").glob("*.bin"):
        assert (tmp_path / "p" / path.name).read_bytes() == path.read_bytes()


def test_spec_source_must_be_exactly_one(tmp_path):
    with pytest.raises(InferKitError, match="needs to know which model"):
        resolve_input()
    with pytest.raises(InferKitError, match="give only one of --arch / --preset"):
        resolve_input(preset="resnet", arch="resnet50")
    resolved = resolve_input(arch="efficientnet_b3")
    assert resolved.layout == "aipp" and resolved.spec.channel_order == "BGR" and "efficientnet_b3" in resolved.source


def _stamped_onnx(path: Path, spec) -> Path:
    import onnx
    from onnx import TensorProto, helper

    from infer_kit.metadata import stamp

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, spec.crop, spec.crop])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, spec.crop, spec.crop])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    stamp(model, spec, arch="identity", num_classes=1000)
    onnx.save(model, path)
    return path


def test_target_model_decides_spec_and_layout(flat, tmp_path):
    spec = get_preset("efficientnetB3")
    onnx_path = _stamped_onnx(tmp_path / "m.onnx", spec)
    result = preprocess(flat, tmp_path / "f", target=onnx_path, limit=2)
    assert (result.layout, result.spec) == ("float", spec)
    assert read_folder_manifest(tmp_path / "f").raw["target"] == str(onnx_path)
    with pytest.raises(InferKitError, match="--layout aipp conflicts with .*m.onnx, which takes float tensors"):
        preprocess(flat, tmp_path / "g", target=onnx_path, layout="aipp")
    with pytest.raises(InferKitError, match="cannot be combined with --for"):
        preprocess(flat, tmp_path / "g", target=onnx_path, overrides={"crop": 200})

    base = tmp_path / "m_bs8"
    shutil.copyfile(onnx_path, tmp_path / "m_bs8.emu.onnx")
    write_artifact_manifest(f"{base}.manifest.json", {
        "kind": "emulated-om", "model_file": "m_bs8.emu.onnx", "spec": get_preset("resnet").to_dict(),
        "layout": "aipp", "batch": 8, "inputs": [], "outputs": []})
    result = preprocess(flat, tmp_path / "a", target=f"{base}.manifest.json", limit=2)
    assert (result.layout, result.spec) == ("aipp", get_preset("resnet"))
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["layout"] == "aipp"


def test_target_without_spec_is_refused(flat, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    onnx.save(helper.make_model(graph), tmp_path / "foreign.onnx")
    with pytest.raises(InferKitError, match="carries no preprocessing spec"):
        preprocess(flat, tmp_path / "out", target=tmp_path / "foreign.onnx")
