"""evaluate: every problem is a one-line error with counts and the first names, never a silent skip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_evaluate_support import make_dataset, write_ais_txt, write_labels, write_run

from infer_kit.errors import InferKitError
from infer_kit.postprocess import parallel
from infer_kit.postprocess.evaluation import evaluate


@pytest.fixture
def run(tmp_path):
    """A 12-image TXT run of width 8 and its labels; returns (folder, label file, rows, labels)."""
    rows, labels = make_dataset(np.random.default_rng(1), 12, 8, [0] * 9 + [1, 2, 6])
    folder = write_run(tmp_path / "result", rows, "txt")
    return folder, write_labels(tmp_path / "val_label.txt", labels), rows, labels


def _error(*args, **kwargs) -> str:
    with pytest.raises(InferKitError) as caught:
        evaluate(*args, **kwargs)
    message = caught.value.one_line()
    assert "\n" not in message
    return message


def _nothing_written(folder) -> bool:
    return not (folder.parent / "result.json").exists()


def test_outputs_without_a_label(run, tmp_path):
    folder, _, rows, labels = run
    fewer = dict(list(labels.items())[:8])
    message = _error(folder, write_labels(tmp_path / "short.txt", fewer))
    assert "4 of 12 outputs have no label" in message and "ILSVRC2012_val_00000009" in message
    assert _nothing_written(folder)


def test_labels_without_an_output_unless_allow_partial(run, tmp_path):
    folder, label_file, rows, labels = run
    for key in list(rows)[:5]:
        (folder / f"{key}_0.txt").unlink()
    message = _error(folder, label_file)
    assert "5 of 12 labelled images have no output" in message
    assert "ILSVRC2012_val_00000001, ILSVRC2012_val_00000002, ILSVRC2012_val_00000003, ..." in message
    assert "--allow-partial" in message and "58.33% coverage" in message
    assert evaluate(folder, label_file, allow_partial=True).images == 7


def test_malformed_label_line_names_file_and_line(run, tmp_path):
    folder, label_file, _, _ = run
    lines = label_file.read_text().splitlines()
    lines[3] = "ILSVRC2012_val_00000004.JPEG four"
    label_file.write_text("\n".join(lines) + "\n")
    assert f"{label_file}:4: malformed label line" in _error(folder, label_file)


def test_non_numeric_ragged_multirow_empty_and_nan_outputs_are_all_reported(run, monkeypatch):
    folder, label_file, rows, _ = run
    keys = list(rows)
    (folder / f"{keys[0]}_0.txt").write_text("0.1 0.2 abc 0.4 0.5 0.6 0.7 0.8 \n")
    (folder / f"{keys[1]}_0.txt").write_text("0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 \n0.1 0.2 \n")
    write_ais_txt(folder / f"{keys[2]}_0.txt", np.stack([rows[keys[2]], rows[keys[2]]]))
    (folder / f"{keys[3]}_0.txt").write_text("")
    (folder / f"{keys[4]}_0.txt").write_text("nan " * 8 + "\n")
    (folder / f"{keys[5]}_0.txt").write_text("1.0 " * 8 + "\n")  # fine: equal scores are legal
    monkeypatch.setattr(parallel, "CHUNK_FILES", 4)  # problems found in different chunks add up
    message = _error(folder, label_file, workers=2)
    assert "1 output file is not numeric (ILSVRC2012_val_00000001_0.txt: could not convert string 'abc'" in message
    assert "1 output file is ragged" in message and "ILSVRC2012_val_00000002_0.txt" in message
    assert "holds more than one row" in message and "ILSVRC2012_val_00000003_0.txt: 2 rows" in message
    assert "1 output file is empty (ILSVRC2012_val_00000004_0.txt" in message
    assert "contains NaN (ILSVRC2012_val_00000005_0.txt: 8 NaN values)" in message
    assert "ILSVRC2012_val_00000006" not in message
    assert _nothing_written(folder)


def test_mixed_widths_are_counted(run):
    folder, label_file, rows, _ = run
    keys = list(rows)
    for key in keys[3:6]:
        write_ais_txt(folder / f"{key}_0.txt", rows[key][None, :7])
    message = _error(folder, label_file)
    assert "mixed output widths: 9 output files have 8 values" in message
    assert "3 with 7" in message and "ILSVRC2012_val_00000004_0.txt (7)" in message


def test_width_from_the_summary_wins_over_the_first_file(run):
    folder, label_file, rows, _ = run
    first = list(rows)[0]
    write_ais_txt(folder / f"{first}_0.txt", rows[first][None, :5])
    message = _error(folder, label_file)
    assert "11 output files have 8 values (as the run summary says), 1 with 5" in message


def test_bin_without_summary_needs_dtype_and_width(tmp_path):
    rows, labels = make_dataset(np.random.default_rng(2), 6, 8, [0] * 6)
    folder = write_run(tmp_path / "result", rows, "bin", summary=False)
    label_file = write_labels(tmp_path / "val_label.txt", labels)
    message = _error(folder, label_file)
    assert "6 .bin outputs" in message and "result_summary.json" in message
    assert "pass --dtype and --width" in message
    assert "pass --width" in _error(folder, label_file, dtype="float32")
    assert evaluate(folder, label_file, dtype="float32", width=8).top1 == 1.0
    wrong = _error(folder, label_file, dtype="float64", width=8)
    assert "6 output files are ragged" in wrong and "expected 64" in wrong


def test_bin_holding_several_rows_is_refused(tmp_path):
    rows, labels = make_dataset(np.random.default_rng(2), 4, 8, [0] * 4)
    folder = write_run(tmp_path / "result", rows, "bin")
    label_file = write_labels(tmp_path / "val_label.txt", labels)
    key = next(iter(rows))
    np.concatenate([rows[key], rows[key]]).tofile(folder / f"{key}_0.bin")
    assert "holds more than one row (one sample per file expected) (ILSVRC2012_val_00000001_0.bin: 2 rows" in _error(
        folder, label_file)


def test_broken_summary_is_an_error(run):
    folder, label_file, _, _ = run
    (folder.parent / "result_summary.json").write_text(json.dumps({"infer_kit": {"outputs": []}}))
    assert "has no usable 'infer_kit.outputs' entry" in _error(folder, label_file)
    (folder.parent / "result_summary.json").write_text("{not json")
    assert "run summary" in _error(folder, label_file) and "not valid JSON" in _error(folder, label_file)


def test_labels_outside_the_output_width(run, tmp_path):
    folder, _, rows, labels = run
    bad = dict(labels)
    bad[list(bad)[2]] = 8
    message = _error(folder, write_labels(tmp_path / "bad.txt", bad))
    assert "1 label does not fit outputs of width 8 with label offset 0 (first: ILSVRC2012_val_00000003=8)" in message
    all_seven = write_labels(tmp_path / "max.txt", {k: 7 for k in labels})
    assert "12 labels do not fit" in _error(folder, all_seven, label_offset=1)


def test_shards_that_overlap_are_refused(run, tmp_path):
    folder, label_file, rows, _ = run
    other = write_run(tmp_path / "other", dict(list(rows.items())[:2]), "npy")
    message = _error([folder, other], label_file)
    assert "2 images have more than one output 0" in message and "ILSVRC2012_val_00000001" in message


def test_missing_or_empty_folders_and_label_files(run, tmp_path):
    folder, label_file, _, _ = run
    assert "result folder not found" in _error(tmp_path / "nope", label_file)
    (tmp_path / "empty" / "2024_01_01-10_00_00").mkdir(parents=True)
    message = _error(tmp_path / "empty", label_file)
    assert "no output files" in message and "sub-folders (2024_01_01-10_00_00)" in message
    assert "label file not found" in _error(folder, tmp_path / "missing.txt")
    (tmp_path / "class_index.json").write_text("{}")
    assert "is a JSON file, not a label file" in _error(folder, tmp_path / "class_index.json")
    (tmp_path / "prep").mkdir()
    assert "cannot find labels for folder" in _error(folder, tmp_path / "prep")


def test_bad_arguments(run):
    folder, label_file, _, _ = run
    assert "--label-offset must be auto, 0 or 1" in _error(folder, label_file, label_offset="2")
    assert "--topk must be at least 1" in _error(folder, label_file, topk=0)
    assert "unknown dtype" in _error(folder, label_file, dtype="floaty", width=8)


def test_details_into_the_result_file_is_refused(run, tmp_path):
    folder, label_file, _, _ = run
    target = tmp_path / "out.json"
    message = _error(folder, label_file, output=target, details=tmp_path / "." / "out.json")
    assert "is the result file itself" in message and not target.exists()  # result.json was replaced by details


def test_cli_errors_are_one_line_with_exit_1(run, cli, tmp_path):
    folder, label_file, rows, labels = run
    (folder / f"{next(iter(rows))}_0.txt").write_text("x\n")
    r = cli("evaluate", folder, "--labels", label_file)
    assert r.exit_code == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("infer-kit: error:")]
    assert len(errors) == 1 and "not numeric" in errors[0]
    assert "Traceback" not in r.stderr


def test_no_readable_output_at_all_reports_the_files_not_a_width(tmp_path):
    rows, labels = make_dataset(np.random.default_rng(5), 4, 8, [0] * 4)
    folder = write_run(tmp_path / "result", rows, "txt", summary=False)
    for key in rows:
        (folder / f"{key}_0.txt").write_text("\n")
    message = _error(folder, write_labels(tmp_path / "val_label.txt", labels))
    assert message.startswith("4 output files are empty (ILSVRC2012_val_00000001_0.txt: no values")
    assert "width" not in message
