"""Hostile inputs and faults: each case once broke the one-line contract or lost, mixed or left work running.

Add a test here for every new bug of this kind (issue 12 started it with the cases found by
145 hostile inputs). Each asserts the documented exit code, one line, and what must stay intact.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_preprocess_transforms import modelzoo_aipp

from infer_kit.imageops import to_rgb
from infer_kit.preprocess.transforms import BadImage, load_rgb, sample_bytes
from infer_kit.presets import get_preset

SPEC = get_preset("resnet").with_overrides(resize=16, crop=12)


def _photo(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (21, 29, 3), dtype=np.uint8), "RGB")


def _save(image: Image.Image, path: Path) -> Path:
    image.save(path)
    return path


# ---- every PIL mode: the ModelZoo's convert('RGB') bytes where that is right; never silent garbage ----
# (mode, file suffix): PNG where PIL writes the mode to PNG, TIFF otherwise.
EIGHT_BIT = [("1", "png"), ("L", "png"), ("LA", "png"), ("P", "png"), ("PA", "tiff"), ("RGB", "png"),
             ("RGBA", "png"), ("CMYK", "tiff"), ("YCbCr", "tiff"), ("LAB", "tiff")]


@pytest.mark.parametrize("mode, suffix", EIGHT_BIT)
def test_eight_bit_modes_give_the_modelzoo_bytes(tmp_path, mode, suffix):
    path = _save(_photo().convert(mode), tmp_path / f"img.{suffix}")
    assert Image.open(path).mode == mode
    assert sample_bytes(load_rgb(path), SPEC, "aipp") == modelzoo_aipp(path, SPEC.resize)


def test_hsv_which_no_format_stores_converts_like_the_modelzoo():
    image = _photo().convert("HSV")
    assert to_rgb(image).tobytes() == image.convert("RGB").tobytes()


@pytest.mark.parametrize("mode", ["I;16", "I;16B"])
def test_sixteen_bit_greyscale_is_scaled_not_clipped_to_white(tmp_path, mode):
    grey = np.asarray(_photo().convert("L"), dtype=np.uint16)
    wide = grey * 257  # the same picture at 16 bits: 0 -> 0, 255 -> 65535
    raw = wide.astype(">u2" if mode == "I;16B" else "<u2").tobytes()
    image = Image.frombytes(mode, (wide.shape[1], wide.shape[0]), raw)
    path = _save(image, tmp_path / ("img.png" if mode == "I;16" else "img.tiff"))
    assert Image.open(path).mode in ("I;16", "I;16B")
    eight_bit = _save(Image.fromarray(grey.astype(np.uint8), "L"), tmp_path / "grey.png")
    ours = sample_bytes(load_rgb(path), SPEC, "aipp")
    assert ours == sample_bytes(load_rgb(eight_bit), SPEC, "aipp")
    clipped = np.frombuffer(modelzoo_aipp(path, SPEC.resize), np.uint8)
    assert (clipped == 255).mean() > 0.9  # what convert('RGB') alone gives: the bug this guards against


def test_integer_pixels_within_eight_bits_match_and_wider_ones_are_refused(tmp_path):
    small = _save(Image.fromarray(np.asarray(_photo().convert("L"), dtype=np.int32), "I"), tmp_path / "small.tiff")
    assert Image.open(small).mode == "I"
    assert sample_bytes(load_rgb(small), SPEC, "aipp") == modelzoo_aipp(small, SPEC.resize)
    wide = _save(Image.fromarray(np.full((9, 9), 4095, np.int32), "I"), tmp_path / "wide.tiff")
    with pytest.raises(BadImage, match="32-bit integer pixels from 4095 to 4095: their bit depth is not known"):
        load_rgb(wide)


def test_float_pixels_are_refused(tmp_path):
    path = _save(Image.fromarray(np.full((9, 9), 0.5, np.float32), "F"), tmp_path / "f.tiff")
    with pytest.raises(BadImage, match="32-bit float pixels: their scale is not known"):
        load_rgb(path)


def test_a_sixteen_bit_png_through_the_cli_is_not_white(tmp_path, cli):
    src = tmp_path / "src"
    src.mkdir()
    grey = (np.asarray(_photo().convert("L"), dtype=np.uint16) * 257).astype("<u2")
    Image.frombytes("I;16", (grey.shape[1], grey.shape[0]), grey.tobytes()).save(src / "deep.png")
    result = cli("preprocess", "--preset", "resnet", src, tmp_path / "prep")
    assert result.exit_code == 0, result.stderr
    data = np.fromfile(tmp_path / "prep" / "deep.bin", np.uint8)
    assert (data == 255).mean() < 0.1 and data.std() > 20


# ---- output paths: one line naming the path, before any work -------------------------------------------------
@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody may write into, root included (``chattr +i``; a plain chmod for other users)."""
    import os
    import shutil
    import subprocess

    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", folder]).returncode != 0:
            pytest.skip("chattr +i is not available, and root writes through chmod")
        yield folder
        subprocess.run(["chattr", "-i", folder], check=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


def _one_line(result, code: int = 1) -> str:
    assert result.exit_code == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("infer-kit:")]
    assert len(lines) == 1 and lines[0].startswith("infer-kit: error: "), result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert "Usage:" not in result.stderr
    return lines[0]


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for seed in range(3):
        _photo(seed).save(folder / f"img{seed}.jpg")
    return folder


def test_read_only_output_folders_are_one_line_naming_the_path(read_only_dir, images, tmp_path, cli):
    from test_run_support import float_folder, float_model

    line = _one_line(cli("preprocess", "--preset", "resnet", images, read_only_dir / "prep"))
    assert f"{read_only_dir}" in line and "not writable" in line
    line = _one_line(cli("aipp", "generate", "--preset", "resnet", "-o", read_only_dir / "a.cfg"))
    assert "not writable" in line and "a.cfg" in line
    model = float_model(tmp_path / "m.onnx")
    prep = float_folder(tmp_path / "fprep", 2)
    line = _one_line(cli("run", "-m", model, "-i", prep, "-o", read_only_dir, "--output-dirname", "r"))
    assert "not writable" in line
    run = cli("run", "-m", model, "-i", prep, "-o", tmp_path / "out", "--output-dirname", "r")
    assert run.exit_code == 0, run.stderr
    labels = tmp_path / "labels.txt"
    labels.write_text("img_0.bin 1\nimg_1.bin 2\n")
    line = _one_line(cli("evaluate", tmp_path / "out" / "r", "--labels", labels, "-o", read_only_dir / "result.json"))
    assert "not writable" in line and "result.json" in line
    line = _one_line(cli("atc", "-m", model, "--soc", "Ascend910A", "-b", "1", "--aipp", "none", "-o",
                         read_only_dir / "m_bs1"))
    assert "not writable" in line
    line = _one_line(cli("export", "--arch", "test_resnet", "--random-init", "-o", read_only_dir / "m.onnx"))
    assert "output model" in line and "not writable" in line


def test_a_folder_where_a_file_goes_is_refused_before_any_work(tmp_path, cli):
    from test_run_support import float_folder, float_model

    model = float_model(tmp_path / "m.onnx")
    prep = float_folder(tmp_path / "fprep", 2)
    (tmp_path / "out" / "r_summary.json").mkdir(parents=True)
    line = _one_line(cli("run", "-m", model, "-i", prep, "-o", tmp_path / "out", "--output-dirname", "r"))
    assert "r_summary.json is a folder" in line
    assert not (tmp_path / "out" / "r").exists()  # refused before a single output was written
    assert cli("run", "-m", model, "-i", prep, "-o", tmp_path / "out", "--output-dirname", "ok").exit_code == 0
    labels = tmp_path / "labels.txt"
    labels.write_text("img_0.bin 1\nimg_1.bin 2\n")
    (tmp_path / "details").mkdir()
    line = _one_line(cli("evaluate", tmp_path / "out" / "ok", "--labels", labels, "--details", tmp_path / "details"))
    assert "details file" in line and "is a folder" in line
    line = _one_line(cli("compare", tmp_path / "out" / "ok", tmp_path / "out" / "ok", "-o", tmp_path / "details"))
    assert "is a folder" in line
    (tmp_path / "afile").write_text("not a folder")
    line = _one_line(cli("atc", "-m", model, "--soc", "Ascend910A", "-b", "2", "--aipp", "none", "-o",
                         tmp_path / "afile" / "m_bs2"))
    assert "afile is a file, not a folder" in line


def test_a_full_disk_during_export_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, cli):
    import errno
    import os

    import torch

    from infer_kit import fsutil
    from infer_kit.registry import create_model

    torch.manual_seed(0)
    checkpoint = tmp_path / "c.pth"
    torch.save(create_model("test_resnet", num_classes=4).state_dict(), checkpoint)
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def flush(self):
            pass

    monkeypatch.setattr(fsutil.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    line = _one_line(cli("export", "--arch", "test_resnet", "--checkpoint", checkpoint, "--resize", "32", "--crop",
                         "32", "-o", tmp_path / "m.onnx", "--no-verify"))
    assert "No space left on device" in line and "m.onnx" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pth"]


def test_a_bad_aipp_config_given_to_the_pipeline_is_one_line(tmp_path, cli):
    from test_run_support import float_model

    config = tmp_path / "broken.cfg"
    config.write_text("aipp_op {\n  aipp_mode: static\n  input_format: NOT_A_FORMAT\n}\n")
    (tmp_path / "img").mkdir()
    _photo().save(tmp_path / "img" / "a.jpg")
    toml = tmp_path / "p.toml"
    toml.write_text(f'work_dir = "work"\n[model]\nonnx = "{float_model(tmp_path / "m.onnx")}"\n'
                    f'spec = {{ resize = 10, crop = 8 }}\n[data]\nimages = "img"\nlabels = "l.txt"\n'
                    f'[atc]\nbatch_sizes = [1]\naipp = "{config}"\n[compare]\nreference = false\n')
    (tmp_path / "l.txt").write_text("a.jpg 0\n")
    line = _one_line(cli("pipeline", toml))
    assert "pipeline stage 'atc bs1_force_fp16' failed" in line and "broken.cfg:3" in line


def test_usage_mistakes_are_one_line_exit_1(tmp_path, cli):
    for args in (["export", "--opset", "99"], ["export", "-o", tmp_path], ["atc", "-b", "0"], ["atc", "-b", "-1"],
                 ["atc", "-b", "abc"], ["run", "-o", __file__], ["dataset", "no-such-set", tmp_path]):
        line = _one_line(cli(*args))
        assert "Usage:" not in line and "--help" in line
    for command, option in (("export", "-o"), ("run", "--output_dir"), ("evaluate", "--labels")):
        line = _one_line(cli(command, option))  # click's parser gives this error no context: the line names it
        assert "requires an argument" in line and line.endswith(f"see 'infer-kit {command} --help'"), line


def test_a_ten_megabyte_token_is_not_echoed(tmp_path, cli):
    config = tmp_path / "huge.cfg"
    config.write_text("aipp_op { aipp_mode: " + "x" * 10_000_000 + " }\n")
    line = _one_line(cli("aipp", "check", config))
    assert len(line) < 400 and "huge.cfg:1:22" in line and "(10,000,002 characters)" in line


def test_a_byte_order_mark_is_accepted_in_every_text_input(tmp_path):
    from infer_kit.aipp import read_config
    from infer_kit.labels import read_class_index, read_val_labels
    from infer_kit.pipeline import read_toml

    bom = "\ufeff"
    (tmp_path / "val_label.txt").write_text(bom + "astronaut.png 3\nchelsea.png 1\n", encoding="utf-8")
    assert read_val_labels(tmp_path / "val_label.txt") == {"astronaut": 3, "chelsea": 1}
    (tmp_path / "a.cfg").write_text(bom + "aipp_op {\n aipp_mode: static\n input_format: RGB888_U8\n}\n",
                                    encoding="utf-8")
    assert read_config(tmp_path / "a.cfg").ops[0].input_format == "RGB888_U8"
    (tmp_path / "p.toml").write_text(bom + 'work_dir = "w"\n', encoding="utf-8")
    assert read_toml(tmp_path / "p.toml") == {"work_dir": "w"}
    (tmp_path / "class_index.json").write_text(bom + '{"0": ["n0", "zero"]}', encoding="utf-8")
    assert read_class_index(tmp_path / "class_index.json") == [("n0", "zero")]


# ---- symlinks in the image folder ------------------------------------------------------------------------
def test_a_symlink_to_itself_is_one_line(images, tmp_path, cli):
    (images / "loop").symlink_to("loop")
    line = _one_line(cli("preprocess", "--preset", "resnet", images, tmp_path / "prep"))
    assert "symlink loop in the image folder" in line and "loop -> loop" in line


def test_a_symlink_loop_in_a_class_tree_is_named_not_followed(tmp_path, cli):
    tree = tmp_path / "tree"
    for name in ("c1", "c2"):
        (tree / name).mkdir(parents=True)
        _photo().save(tree / name / f"{name}.jpg")
    (tree / "c1" / "up").symlink_to("..")
    line = _one_line(cli("preprocess", "--preset", "resnet", tree, tmp_path / "prep"))
    assert "c1/up -> .. leads back into itself" in line and "would both be written" not in line


# ---- resume never mixes two runs -------------------------------------------------------------------------------
def test_run_resume_into_another_models_outputs_is_refused(tmp_path, cli):
    from test_run_support import float_folder, float_model

    prep = float_folder(tmp_path / "prep", 6)
    model_a = float_model(tmp_path / "a.onnx")
    model_b = float_model(tmp_path / "b.onnx")
    import onnx

    proto = onnx.load(model_b)  # the same graph with other weights
    proto.graph.initializer[0].raw_data = bytes(len(proto.graph.initializer[0].raw_data))
    onnx.save(proto, model_b)
    out = tmp_path / "out"
    assert cli("run", "-m", model_b, "-i", prep, "-o", out, "--output-dirname", "res").exit_code == 0
    result = out / "res"
    for name in ("img_4_0.bin", "img_5_0.bin"):
        (result / name).unlink()
    kept = {p.name: p.read_bytes() for p in result.iterdir()}
    line = _one_line(cli("run", "-m", model_a, "-i", prep, "-o", out, "--output-dirname", "res", "--resume"))
    assert "its outputs were written by a run with another model file, another model (its sha256 differs)" in line
    assert {p.name: p.read_bytes() for p in result.iterdir()} == kept
    other = float_folder(tmp_path / "prep2", 6)
    line = _one_line(cli("run", "-m", model_b, "-i", other, "-o", out, "--output-dirname", "res", "--resume"))
    assert "other input files" in line
    line = _one_line(cli("run", "-m", model_b, "-i", prep, "-o", out, "--output-dirname", "res", "--resume",
                         "--outfmt", "NPY"))
    assert "--outfmt NPY" in line or "another --outfmt" in line
    finished = cli("run", "-m", model_b, "-i", prep, "-o", out, "--output-dirname", "res", "--resume")
    assert finished.exit_code == 0 and "4 file(s) already have their outputs" in finished.stderr


def test_run_resume_into_outputs_without_a_record_is_refused(tmp_path, cli):
    from test_run_support import float_folder, float_model

    prep = float_folder(tmp_path / "prep", 2)
    (tmp_path / "out" / "res").mkdir(parents=True)
    (tmp_path / "out" / "res" / "img_0_0.bin").write_bytes(b"from some other tool")
    line = _one_line(cli("run", "-m", float_model(tmp_path / "m.onnx"), "-i", prep, "-o", tmp_path / "out",
                         "--output-dirname", "res", "--resume"))
    assert "there is no record of the run that wrote its outputs" in line
    assert (tmp_path / "out" / "res" / "img_0_0.bin").read_bytes() == b"from some other tool"


def test_preprocess_resume_with_another_spec_or_layout_is_refused(images, tmp_path, cli):
    dst = tmp_path / "prep"
    assert cli("preprocess", "--preset", "resnet", images, dst).exit_code == 0
    before = {p.name: p.read_bytes() for p in dst.glob("*.bin")}
    line = _one_line(cli("preprocess", "--preset", "resnet", "--resize", "240", "--resume", images, dst))
    assert "holds aipp tensors of another spec" in line
    line = _one_line(cli("preprocess", "--preset", "resnet", "--layout", "float", "--resume", images, dst))
    assert "holds aipp tensors" in line and "this run writes float tensors" in line
    assert {p.name: p.read_bytes() for p in dst.glob("*.bin")} == before


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path, cli):
    from test_run_support import float_folder, float_model

    from infer_kit.locks import hold

    prep = float_folder(tmp_path / "prep", 2)
    out = tmp_path / "out"
    with hold(out / ".res.lock", what=f"result folder {out / 'res'}"):
        line = _one_line(cli("run", "-m", float_model(tmp_path / "m.onnx"), "-i", prep, "-o", out,
                             "--output-dirname", "res"))
    assert f"result folder {out / 'res'} is in use by pid {os.getpid()}" in line
    assert not (out / "res").exists()
