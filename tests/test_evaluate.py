"""evaluate: result.json equal to the ModelZoo's, formats, shards, labels, details, gates."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_evaluate_support import make_dataset, modelzoo_result_json, write_labels, write_run

from infer_kit.errors import GateFailed
from infer_kit.gates import Gates, raise_for_failures
from infer_kit.labels import write_class_index
from infer_kit.postprocess import parallel
from infer_kit.postprocess.evaluation import evaluate
from infer_kit.postprocess.result_json import accuracy_strings, result_json_text
from infer_kit.postprocess.scoring import label_ranks, top_indices


@pytest.fixture(scope="module")
def dataset() -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """60 images of width 1000: label at rank 0 for most, then ranks 1..4, then far down."""
    rng = np.random.default_rng(6)
    ranks = [0] * 38 + [1] * 5 + [2] * 4 + [3] * 3 + [4] * 2 + [7, 30, 500, 999] * 2
    return make_dataset(rng, len(ranks), 1000, ranks)


@pytest.mark.parametrize("width, offset", [(1000, 0), (1001, 1)])
def test_result_json_is_byte_for_byte_the_modelzoo_one(tmp_path, width, offset):
    rng = np.random.default_rng(width)
    ranks = rng.choice([0, 0, 0, 1, 2, 3, 4, 5, 60], size=45).tolist()
    rows, labels = make_dataset(rng, 45, width, ranks, offset=offset)
    folder = write_run(tmp_path / "result", rows, "txt", summary=False)
    label_file = write_labels(tmp_path / "val_label.txt", labels)

    result = evaluate(folder, label_file)

    assert result.result_path == tmp_path / "result.json"  # beside the result folder, as the recipe does
    assert result.result_path.read_text() == modelzoo_result_json(folder, label_file)
    assert result.label_offset == offset and result.classes == width
    expected_top1 = sum(r == 0 for r in ranks) / len(ranks)
    assert result.top1 == pytest.approx(expected_top1)


def test_1001_outputs_scored_without_the_shift_lose_their_hits(tmp_path):
    rng = np.random.default_rng(3)
    rows, labels = make_dataset(rng, 20, 1001, [0] * 20, offset=1)
    folder = write_run(tmp_path / "result", rows, "txt")
    label_file = write_labels(tmp_path / "val_label.txt", labels)
    assert evaluate(folder, label_file, label_offset="auto").top1 == 1.0
    assert evaluate(folder, label_file, label_offset=0, output=tmp_path / "r0.json").top1 < 0.2


def test_accuracy_rounding_follows_the_modelzoo(tmp_path):
    # 761 of 1000 -> 76.1 (not "76.10"); cumulative TopN; 100 -> "100.0%".
    rng = np.random.default_rng(0)
    ranks = [0] * 761 + [1] * 100 + [4] * 139
    rows, labels = make_dataset(rng, 1000, 6, ranks)
    folder = write_run(tmp_path / "result", rows, "bin")
    label_file = write_labels(tmp_path / "val_label.txt", labels)
    result = evaluate(folder, label_file, output=tmp_path / "out.json")
    text = (tmp_path / "out.json").read_text()
    assert json.loads(text)["value"][2] == {"key": "Top1 accuracy", "value": "76.1%"}
    assert [v["value"] for v in json.loads(text)["value"][2:]] == ["76.1%", "86.1%", "86.1%", "86.1%", "100.0%"]
    assert not text.endswith("\n") and ", " in text and ": " in text
    txt_folder = write_run(tmp_path / "txt", rows, "txt")
    assert text == modelzoo_result_json(txt_folder, label_file)
    assert result.hits == (761, 100, 0, 0, 139)


@given(st.lists(st.integers(0, 50), min_size=1, max_size=5), st.integers(1, 60))
@settings(max_examples=60, deadline=None)
def test_accuracy_strings_match_the_modelzoo_arithmetic(hits, extra):
    count = sum(hits) + extra
    expected = [str(round(a * 100, 2)) + "%" for a in np.cumsum(np.array(hits, dtype=float)) / count]
    assert accuracy_strings(hits, count) == expected


def test_fewer_classes_than_topk_gives_fewer_rows():
    text = result_json_text(10, 3, [5, 2, 1])
    assert [v["key"] for v in json.loads(text)["value"]][2:] == ["Top1 accuracy", "Top2 accuracy", "Top3 accuracy"]


@given(st.integers(1, 6), st.integers(2, 12), st.integers(0, 3), st.data())
@settings(max_examples=80, deadline=None)
def test_ranks_and_top_indices_follow_a_stable_descending_sort(n, width, levels, data):
    # Few distinct levels -> many ties: the tie rule (lower class index first) is what is tested.
    values = data.draw(st.lists(st.integers(0, levels), min_size=n * width, max_size=n * width))
    rows = np.array(values, dtype=np.float32).reshape(n, width)
    labels = np.array(data.draw(st.lists(st.integers(0, width - 1), min_size=n, max_size=n)))
    order = np.argsort(-rows, axis=1, kind="stable")
    expected_ranks = [int(np.nonzero(order[i] == labels[i])[0][0]) for i in range(n)]
    assert label_ranks(rows, labels).tolist() == expected_ranks
    k = data.draw(st.integers(1, width))
    assert top_indices(rows, k).tolist() == order[:, :k].tolist()


def test_txt_npy_and_bin_outputs_score_identically(tmp_path, dataset):
    rows, labels = dataset
    label_file = write_labels(tmp_path / "val_label.txt", labels)
    texts = {}
    for fmt in ("txt", "npy", "bin"):
        folder = write_run(tmp_path / fmt, rows, fmt)
        result = evaluate(folder, label_file, output=tmp_path / f"{fmt}.json")
        texts[fmt] = result.result_path.read_text()
        assert result.formats == {fmt: len(rows)}
    assert texts["txt"] == texts["npy"] == texts["bin"]
    assert texts["txt"] == modelzoo_result_json(tmp_path / "txt", label_file)


def test_float16_bin_and_int_npy_outputs_are_decoded(tmp_path, dataset):
    rows, labels = dataset
    label_file = write_labels(tmp_path / "val_label.txt", labels)
    reference = evaluate(write_run(tmp_path / "ref", rows, "npy"), label_file, output=tmp_path / "ref.json")
    ranked = {k: np.argsort(np.argsort(v)).astype(np.float16) for k, v in rows.items()}  # exact in fp16
    half = evaluate(write_run(tmp_path / "half", ranked, "bin"), label_file, output=tmp_path / "half.json")
    ints = evaluate(write_run(tmp_path / "ints", {k: v.astype(np.int32) for k, v in ranked.items()}, "npy"),
                    label_file, output=tmp_path / "ints.json")
    assert half.hits == ints.hits == reference.hits


def test_shards_merge_into_one_result(tmp_path, dataset):
    rows, labels = dataset
    label_file = write_labels(tmp_path / "val_label.txt", labels)
    whole = evaluate(write_run(tmp_path / "whole", rows, "txt"), label_file, output=tmp_path / "whole.json")
    keys = list(rows)
    shard_a = write_run(tmp_path / "out" / "shard0", {k: rows[k] for k in keys[::2]}, "txt")
    shard_b = write_run(tmp_path / "out" / "shard1", {k: rows[k] for k in keys[1::2]}, "npy")
    merged = evaluate(f"{shard_a},{shard_b}", label_file)
    assert merged.result_path == tmp_path / "out" / "result.json"
    assert merged.result_path.read_text() == whole.result_path.read_text()
    assert merged.formats == {"npy": len(keys[1::2]), "txt": len(keys[::2])}
    assert evaluate([shard_a, shard_b], label_file, output=tmp_path / "list.json").hits == whole.hits


def test_parallel_scoring_equals_in_process_scoring(tmp_path, dataset, monkeypatch):
    rows, labels = dataset
    label_file = write_labels(tmp_path / "val_label.txt", labels)
    folder = write_run(tmp_path / "result", rows, "txt")
    monkeypatch.setattr(parallel, "CHUNK_FILES", 7)
    one = evaluate(folder, label_file, output=tmp_path / "one.json", workers=1, details=tmp_path / "d1.json")
    two = evaluate(folder, label_file, output=tmp_path / "two.json", workers=2, details=tmp_path / "d2.json")
    assert two.workers == 2
    assert one.result_path.read_text() == two.result_path.read_text()
    d1, d2 = (json.loads((tmp_path / f"d{i}.json").read_text()) for i in (1, 2))
    for key in ("per_class", "confusion_pairs", "misclassified"):
        assert d1[key] == d2[key]


def test_stray_files_and_the_summary_are_never_scored(tmp_path, dataset, caplog):
    rows, labels = dataset
    label_file = write_labels(tmp_path / "val_label.txt", labels)
    folder = write_run(tmp_path / "result", rows, "txt")
    (folder / "sumary.json").write_text("{}")  # ais_infer put its summary inside the folder
    (folder / "notes.txt").write_text("hello")
    (folder / "timestamp").mkdir()
    write_run(tmp_path / "result", {k: rows[k][:10] for k in list(rows)[:3]}, "txt", index=1, summary=False)
    with caplog.at_level(logging.INFO, logger="infer_kit"):
        result = evaluate(folder, label_file)
    assert result.images == len(rows)
    assert "ignored 2 files that are not outputs" in caplog.text and "notes.txt" in caplog.text
    assert "ignored 1 sub-folders" in caplog.text
    assert "3 files of other outputs" in caplog.text


def test_details_hold_per_class_accuracy_confusions_and_misses(tmp_path, dataset):
    rows, labels = dataset
    label_file = write_labels(tmp_path / "val_label.txt", labels)
    folder = write_run(tmp_path / "result", rows, "npy")
    result = evaluate(folder, label_file, details=tmp_path / "details.json")
    details = json.loads((tmp_path / "details.json").read_text())

    ranks, top1 = {}, {}
    for key, row in rows.items():
        order = np.argsort(-row)
        ranks[key] = int(np.nonzero(order == labels[key])[0][0])
        top1[key] = int(order[0])
    missed = sorted(k for k, r in ranks.items() if r)
    assert [m["image"] for m in details["misclassified"]] == missed
    for miss in details["misclassified"]:
        order = np.argsort(-rows[miss["image"]])
        assert miss["predicted"] == order[:5].tolist()
        assert miss["rank"] == (ranks[miss["image"]] if ranks[miss["image"]] < 5 else None)
    pairs = {}
    for key in missed:
        pairs[(labels[key], top1[key])] = pairs.get((labels[key], top1[key]), 0) + 1
    assert {(p["label"], p["predicted"]): p["count"] for p in details["confusion_pairs"]} == pairs
    per_class = {c["label"]: c for c in details["per_class"]}
    assert sum(c["images"] for c in per_class.values()) == len(rows)
    for label, stats in per_class.items():
        members = [k for k in rows if labels[k] == label]
        assert stats["top1"] == sum(ranks[k] == 0 for k in members)
        assert stats["top5"] == sum(ranks[k] < 5 for k in members)
    assert details["accuracy"]["top1"] == result.top1
    assert details["coverage"] == 1.0 and details["missing"] == []
    # result.json itself holds none of it
    assert set(json.loads(result.result_path.read_text())) == {"title", "value"}


def test_labels_from_a_preprocessed_folder_with_class_names(tmp_path):
    rng = np.random.default_rng(9)
    rows, labels = make_dataset(rng, 12, 4, [0] * 9 + [1] * 3)
    prep = tmp_path / "prep"
    prep.mkdir()
    write_labels(prep / "labels.txt", labels)
    write_class_index(prep / "class_index.json", ["n01", "n02", "n03", "n04"], ["tench", "goldfish", "shark", "ray"])
    (prep / "manifest.json").write_text(json.dumps({"format": "infer-kit/preprocessed", "labels": "labels.txt"}))
    folder = write_run(tmp_path / "result", rows, "txt")
    result = evaluate(folder, prep, details=tmp_path / "d.json")
    assert result.top1 == 0.75
    names = {c["label"]: c["name"] for c in json.loads((tmp_path / "d.json").read_text())["per_class"]}
    assert names and set(names.values()) <= {"tench", "goldfish", "shark", "ray"}
    assert all(names[label] == ["tench", "goldfish", "shark", "ray"][label] for label in names)


def test_allow_partial_scores_what_is_there_and_reports_coverage(tmp_path, dataset, cli):
    rows, labels = dataset
    label_file = write_labels(tmp_path / "val_label.txt", labels)
    present = dict(list(rows.items())[:45])
    folder = write_run(tmp_path / "result", present, "txt")
    result = evaluate(folder, label_file, allow_partial=True, details=tmp_path / "d.json")
    assert result.images == 45 and result.labelled == 60 and result.coverage == 0.75
    assert len(result.missing) == 15
    assert json.loads((tmp_path / "d.json").read_text())["coverage"] == 0.75
    r = cli("evaluate", folder, "--labels", label_file, "--allow-partial")
    assert r.exit_code == 0 and "75.00% (15 labelled images missing)" in r.stdout


def test_cli_prints_the_table_and_writes_where_asked(tmp_path, dataset, cli):
    rows, labels = dataset
    label_file = write_labels(tmp_path / "val_label.txt", labels)
    folder = write_run(tmp_path / "result", rows, "txt")
    out_dir = tmp_path / "reports"
    out_dir.mkdir()
    r = cli("evaluate", folder, "--labels", label_file, "-o", out_dir, "--details", tmp_path / "d.json")
    assert r.exit_code == 0, r.stderr
    values = [v["value"] for v in json.loads((out_dir / "result.json").read_text())["value"]]
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["images", values[0]] and lines[1].split() == ["classes", values[1]]
    assert [line.split()[1] for line in lines[2:7]] == values[2:]
    assert "label offset 0" in r.stderr
    assert (tmp_path / "d.json").is_file()


def test_gates_exit_3_after_writing_result_json(tmp_path, dataset, cli):
    rows, labels = dataset
    label_file = write_labels(tmp_path / "val_label.txt", labels)
    folder = write_run(tmp_path / "result", rows, "txt")
    top1 = 100 * 38 / 60
    out = tmp_path / "gated.json"
    r = cli("evaluate", folder, "--labels", label_file, "-o", out, "--min-top1", f"{top1 + 0.5:.2f}")
    assert r.exit_code == 3
    assert out.is_file() and "Top1 accuracy" in out.read_text()
    error_lines = [line for line in r.stderr.splitlines() if line.startswith("infer-kit: error:")]
    assert len(error_lines) == 1 and "top-1 accuracy 63.333% is below the gate" in error_lines[0]
    assert "top-1" in r.stdout  # the table is still printed
    assert cli("evaluate", folder, "--labels", label_file, "-o", out, "--min-top1", f"{top1 - 0.5:.2f}",
               "--min-top5", "85").exit_code == 0
    r = cli("evaluate", folder, "--labels", label_file, "-o", out, "--min-top5", "95")
    assert r.exit_code == 3 and "top-5 accuracy 86.667% is below the gate 95%" in r.stderr
    result = evaluate(folder, label_file, output=out)
    with pytest.raises(GateFailed) as caught:
        raise_for_failures(Gates(min_top1=99).accuracy_failures(top1=result.top1, top5=result.top5,
                                                                classes=result.classes))
    assert caught.value.exit_code == 3 and result.images == 60


def test_gate_arguments_are_checked_before_any_work(tmp_path, dataset, cli):
    rows, labels = dataset
    label_file = write_labels(tmp_path / "val_label.txt", labels)
    folder = write_run(tmp_path / "result", rows, "txt")
    r = cli("evaluate", folder, "--labels", label_file, "--topk", "3", "--min-top5", "50")
    assert r.exit_code == 1 and "--min-top5 needs --topk 5" in r.stderr
    r = cli("evaluate", folder, "--labels", label_file, "--min-top1", "120")
    assert r.exit_code == 1 and "between 0 and 100" in r.stderr
    assert not (tmp_path / "result.json").exists()


def test_topk_option_changes_the_number_of_rows(tmp_path, dataset):
    rows, labels = dataset
    label_file = write_labels(tmp_path / "val_label.txt", labels)
    folder = write_run(tmp_path / "result", rows, "txt")
    result = evaluate(folder, label_file, topk=10)
    values = json.loads(result.result_path.read_text())["value"]
    assert len(values) == 12 and values[-1]["key"] == "Top10 accuracy"
    assert values[11]["value"] == f"{round(100 * 54 / 60, 2)}%"  # ranks 0..4 and the two rank-7 images


def test_library_accepts_a_label_mapping(tmp_path, dataset):
    rows, labels = dataset
    folder = write_run(tmp_path / "result", rows, "txt")
    result = evaluate(folder, labels, output=tmp_path / "r.json")
    assert result.images == 60 and result.label_source == "<mapping>"
