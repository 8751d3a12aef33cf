"""How equal scores are ordered: the ModelZoo scorer's rule, the stable rule, and a machine-independent one.

``vision_metric_ImageNet.py`` parses each value with ``np.float32`` and ranks with
``np.argsort(-prediction)``: numpy's default sort kind, which is not stable. Equal scores
(common in float16- or integer-valued outputs) come out in whatever order that numpy build
produces on that CPU: deterministic for one array, one numpy version and one CPU dispatch,
but different between numpy 1.x and 2.x and between CPUs with and without AVX-512. Three
rules are offered:

* ``numpy`` (default): call numpy's argsort on the float32 values exactly as the scorer does,
  in this interpreter. ``result.json`` is then byte-identical to the ModelZoo scorer run with
  the same numpy on the same machine.
* ``index``: equal scores in class-index order (a stable sort), the same everywhere.
* ``numpy-scalar``: numpy's scalar introsort (the algorithm of numpy <= 1.24 and of every numpy
  without a SIMD argsort: what the ModelZoo's pinned numpy 1.21.5 does), restated here in
  Python, so its order is the same on every machine. Slow (pure Python), used only for the
  rows whose ranking a tie can change.

A score row needs its full order only where a tie can move something inside the top-k
window; every other row is ranked by counting (see :mod:`infer_kit.postprocess.scoring`).
"""

from __future__ import annotations

from typing import Any

from infer_kit.errors import InferKitError

TIE_BREAKS = ("numpy", "index", "numpy-scalar")
DEFAULT_TIE_BREAK = "numpy"
SMALL_SEGMENT = 15  # numpy's SMALL_QUICKSORT: segments of up to 16 items are insertion-sorted


def check_tie_break(name: str) -> str:
    if name not in TIE_BREAKS:
        raise InferKitError(f"unknown tie rule {name!r}", hint=f"use one of {', '.join(TIE_BREAKS)}")
    return name


def descending_order(rows: Any, tie_break: str) -> Any:
    """Each row's class indices from the highest score down, equal scores ordered by ``tie_break``."""
    import numpy as np

    rows = np.asarray(rows)
    if tie_break == "index":
        return np.argsort(-rows, axis=1, kind="stable")
    keys = -np.asarray(rows, dtype=np.float32)
    if tie_break == "numpy":
        # Row-wise argsort of a 2-D array gives each row the order a 1-D argsort of that row gives.
        return np.argsort(keys, axis=1)
    check_tie_break(tie_break)
    return np.array([scalar_argsort(row.tolist()) for row in keys], dtype=np.int64).reshape(keys.shape)


def scalar_argsort(keys: list[float]) -> list[int]:
    """Ascending argsort of ``keys`` in the order numpy's scalar (non-SIMD) quicksort produces.

    The algorithm: an index array; while a segment has more than ``SMALL_SEGMENT + 1`` items,
    order its first, middle and last entries (median of three), take the middle as pivot, park it
    next to the end, partition Hoare-style (left scans while below the pivot, right while above),
    put the pivot where the scans met, keep the smaller side and push the larger with one less
    depth allowance (start: twice the bit length of ``n`` minus one); a pushed segment whose
    allowance has run out is heap-sorted when it is popped; short segments are insertion-sorted.
    """
    n = len(keys)
    order = list(range(n))
    if n < 2:
        return order
    v = keys
    stack: list[tuple[int, int, int]] = []
    lo, hi = 0, n - 1
    depth = 2 * (n.bit_length() - 1)
    while True:
        if depth < 0:
            _heapsort(v, order, lo, hi - lo + 1)
        else:
            while hi - lo > SMALL_SEGMENT:
                mid = lo + ((hi - lo) >> 1)
                if v[order[mid]] < v[order[lo]]:
                    order[mid], order[lo] = order[lo], order[mid]
                if v[order[hi]] < v[order[mid]]:
                    order[hi], order[mid] = order[mid], order[hi]
                if v[order[mid]] < v[order[lo]]:
                    order[mid], order[lo] = order[lo], order[mid]
                pivot = v[order[mid]]
                i, j = lo, hi - 1
                order[mid], order[j] = order[j], order[mid]
                while True:
                    i += 1
                    while v[order[i]] < pivot:
                        i += 1
                    j -= 1
                    while pivot < v[order[j]]:
                        j -= 1
                    if i >= j:
                        break
                    order[i], order[j] = order[j], order[i]
                order[i], order[hi - 1] = order[hi - 1], order[i]
                depth -= 1
                if i - lo < hi - i:
                    stack.append((i + 1, hi, depth))
                    hi = i - 1
                else:
                    stack.append((lo, i - 1, depth))
                    lo = i + 1
            for i in range(lo + 1, hi + 1):
                item = order[i]
                value = v[item]
                j = i
                while j > lo and value < v[order[j - 1]]:
                    order[j] = order[j - 1]
                    j -= 1
                order[j] = item
        if not stack:
            return order
        lo, hi, depth = stack.pop()


def _heapsort(v: list[float], order: list[int], start: int, n: int) -> None:
    """Heap-sort ``order[start:start + n]`` by ``v`` (numpy's scalar argheapsort, 1-based heap)."""

    def at(k: int) -> int:  # 1-based heap position -> list index
        return start + k - 1

    for top in range(n >> 1, 0, -1):
        _sift(v, order, at, top, n)
    while n > 1:
        item = order[at(n)]
        order[at(n)] = order[at(1)]
        n -= 1
        order[at(1)] = item
        _sift(v, order, at, 1, n)


def _sift(v: list[float], order: list[int], at: Any, i: int, n: int) -> None:
    item = order[at(i)]
    j = i << 1
    while j <= n:
        if j < n and v[order[at(j)]] < v[order[at(j + 1)]]:
            j += 1
        if v[item] < v[order[at(j)]]:
            order[at(i)] = order[at(j)]
            i = j
            j += j
        else:
            break
    order[at(i)] = item
