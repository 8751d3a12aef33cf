"""The ModelZoo ``result.json``, byte for byte.

``vision_metric_ImageNet.py`` (Ascend ModelZoo-PyTorch, ResNet50 inference recipe) writes
one line with ``json.dump`` (default separators, no trailing newline)::

    {"title": "Overall statistical evaluation", "value": [{"key": "Number of images", "value": "50000"},
     {"key": "Number of classes", "value": "1000"}, {"key": "Top1 accuracy", "value": "76.14%"}, ...]}

Every value is a string. The accuracies are cumulative (TopN = label within the first N),
computed in numpy float64 as ``np.cumsum(count_hit) / count`` and formatted as
``str(round(acc * 100, 2)) + '%'``, so 76.10 prints as ``76.1%`` and 100 as ``100.0%``.
There are ``min(width, 5)`` TopN rows (``min(width, topk)`` here, 5 by default).
Dashboards parse this file, so nothing else ever goes into it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from infer_kit.fsutil import write_text_atomic

TITLE = "Overall statistical evaluation"


def accuracy_strings(hits: Sequence[int], count: int) -> list[str]:
    """``hits[i]`` = images whose label is at rank i; returns the cumulative ``'76.1%'`` strings."""
    import numpy as np

    if count == 0:
        return []
    accuracy = np.cumsum(np.asarray(hits, dtype=np.float64)) / count
    return [str(round(accuracy[i] * 100, 2)) + "%" for i in range(len(hits))]


def result_json_text(images: int, classes: int, hits: Sequence[int]) -> str:
    """The exact text the ModelZoo script writes for these counts."""
    table = {"title": TITLE, "value": [
        {"key": "Number of images", "value": str(images)},
        {"key": "Number of classes", "value": str(classes)},
    ]}
    for i, text in enumerate(accuracy_strings(hits, images)):
        table["value"].append({"key": "Top" + str(i + 1) + " accuracy", "value": text})
    return json.dumps(table)


def write_result_json(path: str | os.PathLike[str], images: int, classes: int, hits: Sequence[int]) -> Path:
    """Write ``result.json`` atomically; returns its path."""
    path = Path(path)
    write_text_atomic(path, result_json_text(images, classes, hits))
    return path
