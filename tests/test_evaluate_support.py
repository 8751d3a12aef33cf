"""Generated run outputs for the evaluate/compare tests, and an independent ModelZoo scorer.

Outputs are written the way ais_bench writes them (its own ``np.savetxt`` loop for TXT,
``np.save``, ``tofile``), independently of infer-kit's run stage. Score rows are distinct
and rounded to 6 decimals, so TXT, NPY and BIN hold the same values and the ModelZoo's
unstable argsort has no ties to break.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def distinct_rows(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """``n`` rows of ``width`` distinct scores in [-3, 3), exactly representable with %f."""
    order = rng.permuted(np.tile(np.arange(width), (n, 1)), axis=1)
    return ((order + 0.5 * rng.random((n, width))) * (6 / width) - 3).round(6).astype(np.float32)


def put_label_at_rank(row: np.ndarray, label: int, rank: int) -> None:
    """Swap scores so that ``label`` is at position ``rank`` of the descending order."""
    other = int(np.argsort(-row)[rank])
    row[label], row[other] = row[other], row[label]


def write_ais_txt(path: Path, array: np.ndarray) -> None:
    """ais_bench's ``save_data_to_files`` for TXT: one line per row, ``%f`` values and a trailing space."""
    rows = array.reshape(-1, array.shape[-1])
    with open(path, "wb") as handle:
        for row in rows:
            np.savetxt(handle, np.c_[row], fmt="%f", newline=" ")
            handle.write(b"\n")


def write_run(folder: Path, rows: dict[str, np.ndarray], fmt: str = "txt", *, summary: bool = True,
              index: int = 0) -> Path:
    """``folder/{key}_{index}.{fmt}`` per row, plus ``folder_summary.json`` beside it as ``run`` writes."""
    folder.mkdir(parents=True, exist_ok=True)
    width = None
    for key, row in rows.items():
        path = folder / f"{key}_{index}.{fmt}"
        width = row.shape[-1]
        if fmt == "txt":
            write_ais_txt(path, row[None, :])
        elif fmt == "npy":
            np.save(path, row[None, :])
        else:
            row.tofile(path)
    if summary and rows:
        dtype = str(next(iter(rows.values())).dtype)
        block = {"outfmt": fmt.upper(), "outputs": [{"name": "output1", "dtype": dtype, "shape": [width],
                                                     "file_shape": [1, width]}]}
        summary_file = folder.parent / f"{folder.name}_summary.json"
        summary_file.write_text(json.dumps({"filesinfo": {}, "throughput": 1.0, "infer_kit": block}))
    return folder


def write_labels(path: Path, labels: dict[str, int], ext: str = "JPEG") -> Path:
    path.write_text("".join(f"{key}.{ext} {label}\n" for key, label in labels.items()))
    return path


def make_dataset(rng: np.random.Generator, n: int, width: int, ranks: list[int] | None = None,
                 offset: int = 0) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Rows and labels where image i's label sits at rank ``ranks[i]`` (``offset`` shifts the model index)."""
    rows = distinct_rows(rng, n, width)
    out_rows, labels = {}, {}
    for i in range(n):
        key = f"ILSVRC2012_val_{i + 1:08d}"
        label = int(rng.integers(0, width - offset))
        if ranks is not None:
            put_label_at_rank(rows[i], label + offset, ranks[i])
        out_rows[key] = rows[i]
        labels[key] = label
    return out_rows, labels


def modelzoo_result_json(result_dir: Path, label_file: Path) -> str:
    """The ModelZoo rules, written independently: what vision_metric_ImageNet.py would write."""
    gt = {}
    for line in label_file.read_text().splitlines():
        name, label = line.strip().split(" ")
        gt[name.split(".")[0]] = label
    count, n_labels, res_cnt, topn = 0, "", 0, 5
    count_hit = np.zeros(topn)
    for file_name in os.listdir(result_dir):
        count += 1
        stem = file_name.split(".")[0]
        image = stem[: stem.rfind("_")]
        with open(result_dir / file_name) as handle:
            temp = handle.readline().strip().split(" ")
        n_labels = len(temp)
        prediction = np.zeros(n_labels, dtype=np.float32)
        for i, value in enumerate(temp):
            prediction[i] = np.float32(value)
        order = np.argsort(-prediction)
        real = int(gt[image]) + 1 if n_labels == 1001 else int(gt[image])
        res_cnt = min(len(order), topn)
        for i in range(res_cnt):
            if str(real) == str(order[i]):
                count_hit[i] += 1
                break
    table = {"title": "Overall statistical evaluation", "value": []}
    table["value"].extend([{"key": "Number of images", "value": str(count)},
                           {"key": "Number of classes", "value": str(n_labels)}])
    accuracy = np.cumsum(count_hit) / count
    for i in range(res_cnt):
        table["value"].append({"key": "Top" + str(i + 1) + " accuracy",
                               "value": str(round(accuracy[i] * 100, 2)) + "%"})
    return json.dumps(table)
