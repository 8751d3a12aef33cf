"""Preprocessing speed: infer-kit against the ModelZoo loop and the JPEG-decode ceiling.

Builds a few hundred real JPEGs of ImageNet-like size (varied sizes around 500x375, some
portrait) from the photographs shipped in scikit-image, scikit-learn and matplotlib, then
measures in one run, repeated, medians reported:

  (a) modelzoo  one process, written the way imagenet_torch_preprocess.py works
                (PIL open, convert('RGB'), resize, centre crop, np.array(int8).tofile)
  (b) infer-kit infer_kit.preprocess.stage.preprocess on all cores
  (c) decode    JPEG decode alone (Image.open(...).load()) on all cores, same process pool

and checks that (a) and (b) wrote byte-identical files. The machine is shared and noisy:
only ratios measured in the same run mean anything, and nothing here is asserted.

    .venv/bin/python benchmarks/bench_preprocess.py --images 300 --repeats 5
    .venv/bin/python benchmarks/bench_preprocess.py --layout float
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image


def photos() -> list[Image.Image]:
    """The packaged real photographs, as RGB images (a grayscale one kept as L)."""
    import matplotlib.cbook
    import skimage.data
    import sklearn.datasets

    images = [Image.fromarray(getattr(skimage.data, name)()) for name in ("chelsea", "coffee", "astronaut", "rocket")]
    images.append(Image.fromarray(skimage.data.camera()))
    folder = Path(sklearn.datasets.__file__).parent / "images"
    images += [Image.open(folder / "china.jpg"), Image.open(folder / "flower.jpg")]
    images.append(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    return [image.convert("RGB") if image.mode not in ("RGB", "L") else image for image in images]


def build_images(folder: Path, count: int, seed: int = 0) -> None:
    """``count`` JPEGs named like ImageNet val, sizes around 500x375, a quarter portrait."""
    rng = random.Random(seed)
    sources = photos()
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(1, count + 1):
        source = rng.choice(sources)
        width, height = rng.randint(420, 560), rng.randint(320, 420)
        if rng.random() < 0.25:
            width, height = height, width
        sw, sh = source.size
        scale = rng.uniform(0.6, 1.0)
        cw, ch = int(sw * scale), int(sh * scale)
        left, top = rng.randint(0, sw - cw), rng.randint(0, sh - ch)
        image = source.crop((left, top, left + cw, top + ch)).resize((width, height), Image.Resampling.BICUBIC)
        image.save(folder / f"ILSVRC2012_val_{index:08d}.JPEG", quality=rng.choice((75, 85, 92)))


# ---- (a) the ModelZoo loop --------------------------------------------------------------
def _modelzoo_resize(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    if (w <= h and w == size) or (h <= w and h == size):
        return img
    if w < h:
        return img.resize((size, int(size * h / w)), Image.BILINEAR)
    return img.resize((int(size * w / h), size), Image.BILINEAR)


def _modelzoo_center_crop(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def modelzoo_loop(src: Path, dst: Path, layout: str = "aipp") -> int:
    """What ``imagenet_torch_preprocess.py resnet SRC DST`` does in one process: the AIPP
    recipe (256 -> 256, raw int8 bytes) or the float recipe (256 -> 224, normalised float32)."""
    dst.mkdir(parents=True, exist_ok=True)
    files = sorted(os.listdir(src))
    for name in files:
        image = Image.open(os.path.join(src, name)).convert("RGB")
        out = os.path.join(dst, name.split(".")[0] + ".bin")
        if layout == "aipp":
            image = _modelzoo_center_crop(_modelzoo_resize(image, 256), 256)
            np.array(image, dtype=np.int8).tofile(out)
            continue
        image = _modelzoo_center_crop(_modelzoo_resize(image, 256), 224)
        img = np.array(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
        img -= np.array(MEAN, dtype=np.float32)[:, None, None]
        img /= np.array(STD, dtype=np.float32)[:, None, None]
        img.tofile(out)
    return len(files)


def breakdown(src: Path, layout: str, limit: int = 100) -> dict[str, float]:
    """Milliseconds per image of each step, in this process, over the first ``limit`` images."""
    from infer_kit.imageops import center_crop, resize_short_side
    from infer_kit.preprocess import load_rgb, normalised_planes
    from infer_kit.presets import get_preset

    spec = get_preset("resnet")
    paths = sorted(src.iterdir())[:limit]
    steps = {"decode": 0.0, "resize": 0.0, "crop+bytes": 0.0, "write": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for index, path in enumerate(paths):
            t0 = time.perf_counter()
            image = load_rgb(path)
            t1 = time.perf_counter()
            resized = resize_short_side(image, spec)
            t2 = time.perf_counter()
            if layout == "aipp":
                data = center_crop(resized, 256).tobytes()
            else:
                data = normalised_planes(center_crop(resized, 224), spec).tobytes()
            t3 = time.perf_counter()
            Path(tmp, f"{index}.bin").write_bytes(data)
            t4 = time.perf_counter()
            for step, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                steps[step] += seconds * 1000 / len(paths)
    return steps


# ---- (c) decode only ----------------------------------------------------------------------
def _decode(paths: list[str]) -> int:
    for path in paths:
        with Image.open(path) as image:
            image.load()
    return len(paths)


def decode_only(src: Path, workers: int) -> int:
    from infer_kit.workers import pool_context

    files = [str(src / name) for name in sorted(os.listdir(src))]
    chunks = [files[i : i + 16] for i in range(0, len(files), 16)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context()) as pool:
        return sum(pool.map(_decode, chunks))


# ---- the run ---------------------------------------------------------------------------------
def timed(func, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    value = func(*args, **kwargs)
    return time.perf_counter() - start, value


def identical(a: Path, b: Path) -> tuple[int, int]:
    """(files compared, files that differ) between two folders of .bin files."""
    names = sorted(p.name for p in a.glob("*.bin"))
    differ = sum((a / n).read_bytes() != (b / n).read_bytes() for n in names)
    missing = len({p.name for p in b.glob("*.bin")} ^ set(names))
    return len(names), differ + missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None, help="default: all cores")
    parser.add_argument("--layout", choices=("aipp", "float"), default="aipp",
                        help="aipp: the AIPP recipe (256x256 uint8); float: the float recipe (224 crop, float32)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the images here (default: a temp dir)")
    args = parser.parse_args(argv)

    from infer_kit.preprocess import preprocess
    from infer_kit.workers import cpu_count

    workers = args.workers or cpu_count()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="bench_preprocess_"))
    src = root / "val"
    if not src.is_dir() or len(os.listdir(src)) != args.images:
        shutil.rmtree(src, ignore_errors=True)
        build_images(src, args.images)
    sizes = [Image.open(p).size for p in sorted(src.iterdir())[:50]]
    print(f"{args.images} JPEGs in {src}, e.g. {sizes[:3]}, mean {np.mean([w for w, _ in sizes]):.0f}x"
          f"{np.mean([h for _, h in sizes]):.0f}; layout {args.layout}; {workers} workers; {args.repeats} repeats; "
          f"load average {os.getloadavg()[0]:.2f}")

    rates: dict[str, list[float]] = {"modelzoo": [], "infer-kit": [], "decode": []}
    ratios: list[float] = []
    mismatched = compared = 0
    for repeat in range(args.repeats):
        out_a, out_b = root / f"a{repeat}", root / f"b{repeat}"
        # Alternate the order so that neither side always meets the other's disk writeback.
        for name in ("modelzoo", "infer-kit", "decode")[:: 1 if repeat % 2 == 0 else -1]:
            if name == "modelzoo":
                seconds, count = timed(modelzoo_loop, src, out_a, args.layout)
            elif name == "infer-kit":
                seconds, result = timed(preprocess, src, out_b, preset="resnet", layout=args.layout, workers=workers)
                count = result.written
            else:
                seconds, count = timed(decode_only, src, workers)
            rates[name].append(count / seconds)
        ratios.append(rates["infer-kit"][-1] / rates["modelzoo"][-1])
        n, bad = identical(out_a, out_b)
        compared, mismatched = compared + n, mismatched + bad
        shutil.rmtree(out_a)
        shutil.rmtree(out_b)
        print(f"  repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.0f} img/s" for k, v in rates.items()))

    med = {k: statistics.median(v) for k, v in rates.items()}
    print()
    print(f"{'(a) modelzoo loop, 1 process':<40}{med['modelzoo']:>8.0f} img/s")
    print(f"{'(b) infer-kit preprocess, ' + str(workers) + ' workers':<40}{med['infer-kit']:>8.0f} img/s")
    print(f"{'(c) JPEG decode only, ' + str(workers) + ' workers':<40}{med['decode']:>8.0f} img/s")
    print(f"(b)/(a) = {med['infer-kit'] / med['modelzoo']:.2f}x   (goal >= 1.8x; median of the per-repeat ratios "
          f"{statistics.median(ratios):.2f}x)")
    print(f"(b)/(c) = {med['infer-kit'] / med['decode']:.2f}    (goal >= 0.75)")
    print(f"byte-identical (a) vs (b): {compared - mismatched}/{compared} files"
          + ("" if not mismatched else "  <-- MISMATCH"))
    steps = breakdown(src, args.layout)
    print("one process, ms per image: " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items())
          + f"; decode is {steps['decode'] / sum(steps.values()):.0%} of the total")
    if args.workdir is None:
        shutil.rmtree(root)
    return 1 if mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
