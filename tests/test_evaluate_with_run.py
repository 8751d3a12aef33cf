"""evaluate and compare read what ``infer-kit run`` really writes: names, formats, the summary beside the folder."""

from __future__ import annotations

import json

import numpy as np
from test_evaluate_support import write_labels
from test_run_support import CLASSES, float_folder, float_model

from infer_kit.postprocess.comparison import compare
from infer_kit.postprocess.evaluation import evaluate
from infer_kit.runtime.stage import run


def test_evaluate_and_compare_read_every_format_run_writes(tmp_path):
    model = float_model(tmp_path / "tiny.onnx", batch=2)
    prep = float_folder(tmp_path / "prep", 9)
    results = {fmt: run(model, prep, tmp_path / "out", output_dirname=fmt, outfmt=fmt.upper(), warmup_count=0)
               for fmt in ("bin", "npy", "txt")}
    bin_dir = results["bin"].result_dir
    assert (tmp_path / "out" / "bin_summary.json").is_file()  # beside the folder, never inside it

    # Labels read independently from the raw BIN bytes: image k's label is its 2nd-best class,
    # except the first three, labelled with their top-1.
    labels = {}
    for k in range(9):
        scores = np.fromfile(bin_dir / f"img_{k}_0.bin", dtype=np.float32)
        assert scores.shape == (CLASSES,)
        labels[f"img_{k}"] = int(np.argsort(-scores, kind="stable")[0 if k < 3 else 1])
    label_file = write_labels(tmp_path / "val_label.txt", labels, ext="bin")

    texts = {}
    for fmt, result in results.items():
        scored = evaluate(result.result_dir, label_file, output=tmp_path / f"{fmt}.json")
        assert scored.images == 9 and scored.classes == CLASSES and scored.formats == {fmt: 9}
        assert scored.hits[:2] == (3, 6)
        texts[fmt] = scored.result_path.read_text()
    assert texts["bin"] == texts["npy"] == texts["txt"]
    assert json.loads(texts["bin"])["value"][2]["value"] == "33.33%"

    same = compare(bin_dir, results["txt"].result_dir, labels=label_file)
    assert same.top1_agreement == 1.0 and same.max_abs_diff <= 1e-6  # TXT keeps 6 decimals


def test_sharded_runs_merge_in_evaluate(tmp_path):
    model = float_model(tmp_path / "tiny.onnx", batch=1)
    prep = float_folder(tmp_path / "prep", 7)
    whole = run(model, prep, tmp_path / "out", output_dirname="whole", outfmt="NPY", warmup_count=0)
    shards = [run(model, prep, tmp_path / "out", output_dirname=f"s{k}", outfmt="BIN", shard=f"{k}/2",
                  warmup_count=0).result_dir for k in (1, 2)]
    labels = {f"img_{k}": k % CLASSES for k in range(7)}
    label_file = write_labels(tmp_path / "val_label.txt", labels, ext="bin")
    merged = evaluate(shards, label_file, output=tmp_path / "merged.json")
    single = evaluate(whole.result_dir, label_file, output=tmp_path / "single.json")
    assert merged.images == 7 and merged.hits == single.hits
    assert merged.result_path.read_text() == single.result_path.read_text()


def test_labels_from_the_folder_preprocess_wrote(tmp_path, photo_dir, cli):
    import shutil

    from test_run_support import SPEC

    from infer_kit.preprocess.stage import preprocess

    tree = tmp_path / "val"
    photos = sorted(photo_dir.glob("*.jpg"))
    for i, photo in enumerate(photos):
        (tree / ("cats" if i % 2 else "dogs")).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photo, tree / ("cats" if i % 2 else "dogs") / photo.name)
    prep = tmp_path / "prep"
    preprocess(tree, prep, spec=SPEC, layout="float", workers=1)
    model = float_model(tmp_path / "tiny.onnx", batch=1)
    result_dir = run(model, prep, tmp_path / "out", output_dirname="result", outfmt="TXT", warmup_count=0).result_dir

    r = cli("evaluate", result_dir, "--labels", prep, "--details", tmp_path / "details.json")
    assert r.exit_code == 0, r.stderr
    details = json.loads((tmp_path / "details.json").read_text())
    assert details["images"] == len(photos) and details["coverage"] == 1.0
    per_class = {c["label"]: (c["name"], c["images"]) for c in details["per_class"]}
    assert per_class == {0: ("cats", len(photos) // 2), 1: ("dogs", len(photos) - len(photos) // 2)}
    # label = index of the class folder in sorted order: cats 0, dogs 1; checked against the raw outputs
    hits = 0
    for photo in photos:
        scores = np.loadtxt(result_dir / f"{photo.stem}_0.txt", dtype=np.float32)
        hits += int(np.argmax(scores)) == (0 if photos.index(photo) % 2 else 1)
    assert details["hits_by_rank"][0] == hits
