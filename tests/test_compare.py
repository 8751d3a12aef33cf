"""compare: two runs that differ in known images, in different formats, with labels, tolerances and a gate."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_evaluate_support import distinct_rows, put_label_at_rank, write_labels, write_run

from infer_kit.errors import GateFailed, InferKitError
from infer_kit.gates import Gates, raise_for_failures
from infer_kit.labels import write_class_index
from infer_kit.postprocess import parallel
from infer_kit.postprocess.comparison import compare

WIDTH = 10
CHANGED = ("img3", "img7", "img12")


@pytest.fixture
def runs(tmp_path):
    """Run A (TXT) and run B (BIN): B's top-1 differs on CHANGED, B adds small noise on img5 only.

    Labels: every image's label is A's top-1, except img12 where the label is B's new top-1.
    """
    rng = np.random.default_rng(4)
    base = distinct_rows(rng, 16, WIDTH)
    rows_a, rows_b, labels = {}, {}, {}
    for i, row in enumerate(base):
        key = f"img{i}"
        a = row.copy()
        b = row.copy()
        if key in CHANGED:
            put_label_at_rank(b, int(np.argmax(a)), 2)  # A's winner drops to third place in B
        if key == "img5":
            b = (b + rng.normal(0, 0.01, WIDTH)).round(6).astype(np.float32)
            b[np.argmax(a)] = a.max()  # same winner
        rows_a[key], rows_b[key] = a, b
        labels[key] = int(np.argmax(b)) if key == "img12" else int(np.argmax(a))
    folder_a = write_run(tmp_path / "onnx", rows_a, "txt")
    folder_b = write_run(tmp_path / "om", rows_b, "bin")
    label_file = write_labels(tmp_path / "val_label.txt", labels)
    return folder_a, folder_b, label_file, rows_a, rows_b, labels


def test_compare_pinpoints_the_images_whose_top1_changed(runs, tmp_path):
    folder_a, folder_b, label_file, rows_a, rows_b, labels = runs
    result = compare(folder_a, folder_b, labels=label_file, output=tmp_path / "cmp.json")

    assert sorted(c.image for c in result.changed) == sorted(CHANGED)
    assert result.images == 16 and result.top1_agreements == 13
    assert result.top1_agreement == pytest.approx(13 / 16)
    diffs = {k: np.abs(rows_a[k].astype(np.float64) - rows_b[k]) for k in rows_a}
    assert result.max_abs_diff == pytest.approx(max(d.max() for d in diffs.values()))
    assert result.mean_abs_diff == pytest.approx(np.mean([d.mean() for d in diffs.values()]))
    cosines = [float(np.dot(rows_a[k], rows_b[k]) / np.linalg.norm(rows_a[k]) / np.linalg.norm(rows_b[k]))
               for k in rows_a]
    assert result.cosine_min == pytest.approx(min(cosines), abs=1e-6)
    assert result.cosine_mean == pytest.approx(np.mean(cosines), abs=1e-6)
    overlaps = [len(set(np.argsort(-rows_a[k])[:5]) & set(np.argsort(-rows_b[k])[:5])) / 5 for k in rows_a]
    assert result.topk_overlap_mean == pytest.approx(np.mean(overlaps))

    by_image = {c.image: c for c in result.changed}
    for key in CHANGED:
        assert by_image[key].top1_a == int(np.argmax(rows_a[key]))
        assert by_image[key].top1_b == int(np.argmax(rows_b[key]))
        assert by_image[key].label == labels[key]
    assert result.accuracy_a == pytest.approx(15 / 16) and result.accuracy_b == pytest.approx(14 / 16)

    report = json.loads((tmp_path / "cmp.json").read_text())
    correct = {c["image"]: c["correct"] for c in report["changed"]}
    assert correct == {"img3": "a", "img7": "a", "img12": "b"}
    assert report["run_a"]["formats"] == {"txt": 16} and report["run_b"]["formats"] == {"bin": 16}
    assert report["largest_differences"][0]["max_abs_diff"] == pytest.approx(result.max_abs_diff)


def test_identical_runs_agree_everywhere(runs, tmp_path):
    folder_a, _, _, rows_a, _, _ = runs
    same = write_run(tmp_path / "npy", rows_a, "npy")
    result = compare(folder_a, same)
    assert result.changed == () and result.top1_agreement == 1.0 and result.topk_overlap_mean == 1.0
    assert result.max_abs_diff == 0.0 and result.cosine_min == pytest.approx(1.0)


def test_atol_counts_images_whose_scores_moved(runs):
    folder_a, folder_b, _, rows_a, rows_b, _ = runs
    atol = 0.005
    result = compare(folder_a, folder_b, atol=atol)
    expected = sorted(k for k in rows_a if np.abs(rows_a[k].astype(np.float64) - rows_b[k]).max() > atol)
    assert sorted(result.beyond_atol) == expected and "img5" in expected
    assert result.disagreements == len(set(expected) | set(CHANGED))
    assert compare(folder_a, folder_b).disagreements == len(CHANGED)


@pytest.mark.parametrize("atol", [-1.0, float("nan")])
def test_a_negative_or_nan_atol_is_refused(runs, atol):
    folder_a, folder_b = runs[:2]
    with pytest.raises(InferKitError, match="--atol must be a number of 0 or more"):
        compare(folder_a, folder_b, atol=atol)  # NaN counted no image as beyond it


def test_gate_exits_3_past_the_disagreement_limit(runs, tmp_path, cli):
    folder_a, folder_b, label_file, *_ = runs
    out = tmp_path / "cmp.json"
    r = cli("compare", folder_a, folder_b, "--labels", label_file, "-o", out, "--max-disagreement", "15")
    assert r.exit_code == 3
    assert "runs disagree on 3 of 16 images (top-1 changed): 18.750% is above the limit 15%" in r.stderr
    assert out.is_file() and "img3" in r.stdout
    r = cli("compare", folder_a, folder_b, "--max-disagreement", "20")
    assert r.exit_code == 0 and "81.25% (3 changed)" in r.stdout
    result = compare(folder_a, folder_b)
    with pytest.raises(GateFailed) as caught:
        raise_for_failures(Gates(max_disagreement=0).agreement_failures(disagreements=result.disagreements,
                                                                        images=result.images))
    assert caught.value.exit_code == 3 and len(result.changed) == 3


def test_cli_summary_names_classes_when_a_class_index_is_known(runs, tmp_path, cli):
    folder_a, folder_b, label_file, *_ = runs
    write_class_index(tmp_path / "class_index.json", [f"n{i}" for i in range(WIDTH)], [f"cls{i}" for i in range(WIDTH)])
    r = cli("compare", folder_a, folder_b, "--labels", label_file, "--show", "1")
    assert r.exit_code == 0, r.stderr
    assert "top-1 accuracy" in r.stdout and "A 93.75%, B 87.50%" in r.stdout
    changed = [line for line in r.stdout.splitlines() if line.startswith("  img")]
    assert len(changed) == 1 and "(cls" in changed[0] and "... and 2 more" in r.stdout


def test_sharded_runs_and_parallel_chunks_compare_like_whole_runs(runs, tmp_path, monkeypatch):
    folder_a, folder_b, _, rows_a, _, _ = runs
    keys = list(rows_a)
    shard0 = write_run(tmp_path / "a" / "s0", {k: rows_a[k] for k in keys[:9]}, "npy")
    shard1 = write_run(tmp_path / "a" / "s1", {k: rows_a[k] for k in keys[9:]}, "txt")
    whole = compare(folder_a, folder_b)
    monkeypatch.setattr(parallel, "CHUNK_FILES", 5)
    sharded = compare(f"{shard0},{shard1}", folder_b, workers=2)
    assert sorted(c.image for c in sharded.changed) == sorted(c.image for c in whole.changed)
    assert sharded.max_abs_diff == whole.max_abs_diff
    assert sharded.cosine_mean == pytest.approx(whole.cosine_mean)


def test_runs_over_different_images_or_widths_are_refused(runs, tmp_path):
    folder_a, folder_b, _, rows_a, _, _ = runs
    fewer = write_run(tmp_path / "fewer", dict(list(rows_a.items())[2:]), "txt")
    with pytest.raises(InferKitError, match="2 only in run A .first: img0, img1"):
        compare(folder_a, fewer)
    narrow = write_run(tmp_path / "narrow", {k: v[:8] for k, v in rows_a.items()}, "txt")
    with pytest.raises(InferKitError, match="different output widths: run A 10 .* run B 8"):
        compare(folder_a, narrow)


def test_bad_files_in_one_run_are_reported_with_the_run(runs):
    folder_a, folder_b, *_ = runs
    (folder_b / "img4_0.bin").write_bytes(b"\x00" * 7)
    with pytest.raises(InferKitError, match=r"1 output file of run B \(.*om\) is ragged"):
        compare(folder_a, folder_b)
