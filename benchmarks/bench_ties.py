"""Ties in evaluate: each tie rule against the ModelZoo scorer (restated in tests/test_evaluate_support.py).

3,000 float16-valued and 600 integer-valued outputs of width 1000, written as ais_bench writes TXT,
with labels tied with the top score (where the tie rule decides top-1). Prints, per rule, whether
result.json is byte-identical to the scorer's run in this interpreter, the top-1 and the seconds.

Run: .venv/bin/python benchmarks/bench_ties.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_evaluate_support import modelzoo_result_json, write_ais_txt, write_labels  # noqa: E402

from infer_kit.postprocess import TIE_BREAKS, evaluate  # noqa: E402


def _write(folder: Path, rows: np.ndarray, rng: np.random.Generator) -> dict[str, int]:
    folder.mkdir()
    labels = {}
    for i, row in enumerate(rows):
        key = f"ILSVRC2012_val_{i + 1:08d}"
        scores = row.astype(np.float32)
        labels[key] = int(rng.choice(np.flatnonzero(scores == scores.max())))
        if row.dtype.kind == "i":
            (folder / f"{key}_0.txt").write_bytes(("".join(f"{int(v)} " for v in row) + "\n").encode())
        else:
            write_ais_txt(folder / f"{key}_0.txt", row[None, :])
    return labels


def main() -> None:
    work = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    cases = {"float16": rng.normal(0, 2.5, (3000, 1000)).astype(np.float16),
             "integer": rng.integers(0, 5, (600, 1000)).astype(np.int32)}
    for kind, rows in cases.items():
        folder = work / kind
        labels = write_labels(work / f"{kind}.txt", _write(folder, rows, rng))
        began = time.perf_counter()
        reference = modelzoo_result_json(folder, labels)
        scorer_s = time.perf_counter() - began
        top1 = json.loads(reference)["value"][2]["value"]
        print(f"{kind}: {len(rows)} outputs, ModelZoo scorer top-1 {top1} ({scorer_s:.2f} s)")
        for rule in TIE_BREAKS:
            began = time.perf_counter()
            result = evaluate(folder, labels, output=work / f"{kind}_{rule}.json", tie_break=rule, workers=1)
            same = result.result_path.read_text() == reference
            print(f"  --tie-break {rule:<13} top-1 {100 * result.top1:6.2f} %  identical result.json: {same!s:<5}  "
                  f"{time.perf_counter() - began:.2f} s")


if __name__ == "__main__":
    main()
