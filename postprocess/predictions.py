"""Each image's best classes and their probabilities, for reports on a handful of images.

:func:`predictions` reads output 0 of every image in a run's result folder (the same readers as
``evaluate``) and returns the ``top`` classes with their softmax probabilities. It holds every
row in memory, so it refuses more than ``limit`` images: it is for a report's per-image table,
not for scoring a validation set (that is :func:`~infer_kit.postprocess.evaluate`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from infer_kit.errors import InferKitError
from infer_kit.postprocess.run_outputs import OutputProblem, find_outputs, read_output

DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class ImagePrediction:
    """The classes an image scored highest (output indices, best first) and their softmax probabilities."""

    image: str
    classes: tuple[int, ...]
    probabilities: tuple[float, ...]

    @property
    def top1(self) -> int:
        return self.classes[0]


def predictions(folders: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *, top: int = 5,
                limit: int = DEFAULT_LIMIT) -> dict[str, ImagePrediction]:
    """``image key -> ImagePrediction`` for every output in ``folders`` (at most ``limit`` images)."""
    import numpy as np

    outputs = find_outputs(folders)
    if len(outputs.files) > limit:
        raise InferKitError(f"{outputs.describe()}: {len(outputs.files)} images is more than the {limit} a "
                            "per-image listing takes", hint="use 'infer-kit evaluate' for a whole set")
    found = {}
    for file in outputs.files:
        try:
            scores = read_output(file, outputs.bin_layout).astype(np.float64)
        except OutputProblem as problem:
            raise InferKitError(f"output {file.path} cannot be read ({problem})") from None
        probabilities = np.exp(scores - scores.max())
        probabilities /= probabilities.sum()
        best = np.argsort(-scores, kind="stable")[:top]
        found[file.key] = ImagePrediction(file.key, tuple(int(i) for i in best),
                                          tuple(float(probabilities[i]) for i in best))
    return found
