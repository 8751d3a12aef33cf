"""Ties: result.json equals the ModelZoo scorer's (restated in test_evaluate_support) when scores are equal.

float16-valued outputs (what a force_fp16 OM writes) and integer-valued outputs are full of
ties; the scorer ranks them with numpy's default (unstable) argsort on float32 values, so
infer-kit's default does the same and ``--tie-break index`` keeps the stable order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_evaluate_support import modelzoo_result_json, write_ais_txt, write_labels

from infer_kit.postprocess import evaluate, scalar_argsort
from infer_kit.postprocess.scoring import label_ranks, top_indices

NO_SIMD = "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"  # numpy's x86 dispatch targets above the baseline


def _float16_rows(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return (rng.normal(0, 2.5, (n, width))).astype(np.float16)


def _integer_rows(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return rng.integers(0, 5, (n, width)).astype(np.int32)


def _write_int_txt(path: Path, row: np.ndarray) -> None:
    path.write_bytes(("".join(f"{int(v)} " for v in row) + "\n").encode())  # ais_bench's "%d " per value


def _tied_labels(rng: np.random.Generator, rows: np.ndarray) -> list[int]:
    """A label tied with the top score in most rows (so the tie rule decides top-1), else any class."""
    labels = []
    for row in rows.astype(np.float32):
        top = np.flatnonzero(row == row.max())
        labels.append(int(rng.choice(top)) if len(top) > 1 or rng.random() < 0.5 else int(rng.integers(len(row))))
    return labels


def _run_folder(tmp_path: Path, rows: np.ndarray, kind: str) -> tuple[Path, Path]:
    folder = tmp_path / kind
    folder.mkdir()
    labels = {}
    rng = np.random.default_rng(7)
    for i, (row, label) in enumerate(zip(rows, _tied_labels(rng, rows), strict=True)):
        key = f"ILSVRC2012_val_{i + 1:08d}"
        if kind == "int":
            _write_int_txt(folder / f"{key}_0.txt", row)
        else:
            write_ais_txt(folder / f"{key}_0.txt", row[None, :])
        labels[key] = label
    return folder, write_labels(tmp_path / f"{kind}_label.txt", labels)


@pytest.mark.parametrize("kind", ["float16", "int"])
def test_result_json_equals_the_modelzoo_scorer_under_ties(tmp_path, kind):
    rng = np.random.default_rng(0 if kind == "float16" else 1)
    rows = _float16_rows(rng, 400, 1000) if kind == "float16" else _integer_rows(rng, 120, 1000)
    folder, label_file = _run_folder(tmp_path, rows, kind)
    expected = modelzoo_result_json(folder, label_file)
    result = evaluate(folder, label_file, output=tmp_path / "result.json", workers=1)
    assert result.result_path.read_text() == expected
    assert result.tie_break == "numpy"
    stable = evaluate(folder, label_file, output=tmp_path / "stable.json", workers=1, tie_break="index")
    assert stable.result_path.read_text() == _stable_scorer(folder, label_file)
    if kind == "int":  # the two rules really differ here: the test above could fail
        assert stable.result_path.read_text() != expected


def test_the_parallel_path_ranks_ties_as_one_process_does(tmp_path):
    rows = _float16_rows(np.random.default_rng(3), 300, 1000)
    folder, label_file = _run_folder(tmp_path, rows, "float16")
    one = evaluate(folder, label_file, output=tmp_path / "one.json", workers=1)
    two = evaluate(folder, label_file, output=tmp_path / "two.json", workers=2)
    assert one.result_path.read_text() == two.result_path.read_text() == modelzoo_result_json(folder, label_file)


def test_txt_values_parse_to_the_scorers_float32(tmp_path):
    from infer_kit.postprocess.run_outputs import OutputFile, read_output

    row = _float16_rows(np.random.default_rng(4), 1, 1000)[0]
    path = tmp_path / "a_0.txt"
    write_ais_txt(path, row[None, :])
    tokens = path.read_text().splitlines()[0].strip().split(" ")
    scorer = np.array([np.float32(t) for t in tokens], dtype=np.float32)
    ours = read_output(OutputFile("a", 0, str(path), "txt"), None)
    assert ours.dtype == np.float32 and np.array_equal(ours, scorer)


def test_details_record_the_tie_rule(tmp_path):
    rows = _integer_rows(np.random.default_rng(5), 20, 50)
    folder, label_file = _run_folder(tmp_path, rows, "int")
    evaluate(folder, label_file, output=tmp_path / "r.json", details=tmp_path / "d.json", tie_break="index")
    assert json.loads((tmp_path / "d.json").read_text())["tie_break"] == "index"


def test_ranks_and_top_indices_follow_numpys_argsort_and_the_scalar_rule():
    rng = np.random.default_rng(6)
    rows = rng.integers(0, 4, (40, 300)).astype(np.float32)
    labels = rng.integers(0, 300, 40)
    for rule, orders in (("numpy", np.argsort(-rows, axis=1)),
                         ("numpy-scalar", np.array([scalar_argsort((-r).tolist()) for r in rows]))):
        expected = [int(np.nonzero(orders[i] == labels[i])[0][0]) for i in range(40)]
        got = label_ranks(rows, labels, rule, window=5).tolist()
        assert [min(g, 5) for g in got] == [min(e, 5) for e in expected]
        assert top_indices(rows, 5, rule).tolist() == orders[:, :5].tolist()


def test_the_scalar_rule_equals_numpy_without_its_simd_sort(tmp_path):
    """Against numpy's own scalar introsort (its x86 SIMD dispatch switched off in a child process)."""
    rng = np.random.default_rng(8)
    rows = [rng.integers(0, 5, w).astype(np.float32) for w in (3, 16, 17, 18, 40, 257, 1000, 1001) for _ in range(6)]
    rows += [np.zeros(1000, np.float32), (rng.integers(0, 40, 1000) / 2).astype(np.float32),
             _float16_rows(rng, 1, 1000)[0].astype(np.float32)]
    data = tmp_path / "rows.npz"
    np.savez(data, *rows)
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        from numpy._core._multiarray_umath import __cpu_features__
        rows = np.load(sys.argv[1])
        orders = [np.argsort(-rows[k]).tolist() for k in sorted(rows.files, key=lambda k: int(k.split('_')[1]))]
        print(json.dumps({"x86": "SSE2" in __cpu_features__, "orders": orders}))
    """)
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": NO_SIMD}
    done = subprocess.run([sys.executable, "-c", script, str(data)], capture_output=True, text=True, env=env,
                          timeout=120)
    if done.returncode != 0:
        pytest.skip(f"numpy's CPU dispatch cannot be switched off here: {done.stderr.strip()[-200:]}")
    reply = json.loads(done.stdout)
    if not reply["x86"]:
        pytest.skip("not an x86 CPU: numpy's dispatch targets there have other names")
    mismatched = [i for i, (row, order) in enumerate(zip(rows, reply["orders"], strict=True))
                  if scalar_argsort((-row).tolist()) != order]
    assert mismatched == []


def _stable_scorer(result_dir: Path, label_file: Path) -> str:
    """The scorer with a stable sort: what --tie-break index must give."""
    original = np.argsort
    try:
        np.argsort = lambda a, *args, **kwargs: original(a, kind="stable")  # type: ignore[assignment]
        return modelzoo_result_json(result_dir, label_file)
    finally:
        np.argsort = original  # type: ignore[assignment]
