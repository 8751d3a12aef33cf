"""Shared fixtures: real photographs shipped inside packages, and a CLI runner.

No test downloads anything: photos come from scikit-image, scikit-learn and matplotlib.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _packaged_photos() -> dict[str, Path | np.ndarray]:
    import matplotlib.cbook
    import skimage.data
    import sklearn.datasets

    photos: dict[str, Path | np.ndarray] = {}
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        photos[name] = getattr(skimage.data, name)()
    images = Path(sklearn.datasets.__file__).parent / "images"
    photos["china"] = images / "china.jpg"
    photos["flower"] = images / "flower.jpg"
    photos["grace_hopper"] = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return photos


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat folder of 7 real photos as JPEG files (varied sizes, ImageNet-like)."""
    folder = tmp_path_factory.mktemp("photos")
    for name, source in _packaged_photos().items():
        target = folder / f"{name}.jpg"
        if isinstance(source, Path):
            shutil.copyfile(source, target)
        else:
            Image.fromarray(source).convert("RGB").save(target, quality=92)
    return folder


@pytest.fixture(scope="session")
def photos(photo_dir: Path) -> dict[str, Image.Image]:
    """The same real photos, decoded as RGB PIL images."""
    return {p.stem: Image.open(p).convert("RGB") for p in sorted(photo_dir.glob("*.jpg"))}


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run ``infer-kit ARGS`` in-process through the real entry point (errors included)."""
    from infer_kit.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run
