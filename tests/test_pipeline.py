"""`infer-kit pipeline`: end to end on a tiny real dataset, caching and invalidation, failures, report."""

from __future__ import annotations

import html.parser
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from infer_kit.errors import InferKitError
from infer_kit.pipeline import REFERENCE_ROW, config_from_dict, load_config, run_pipeline
from infer_kit.registry import create_model

SPEC = {"resize": 20, "crop": 16, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "interpolation": "bilinear"}


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    from infer_kit.trainer.datasets import write_digits

    root = tmp_path_factory.mktemp("digits")
    write_digits(root, size=20, limit_train=200, limit_val=30)
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "test_resnet.pth"
    torch.save({"arch": "test_resnet", "state_dict": create_model("test_resnet", num_classes=10).state_dict()}, path)
    return path


def _raw(work: Path, digits: Path, checkpoint: Path, **extra) -> dict:
    raw = {
        "work_dir": str(work),
        "name": "tiny",
        "model": {"checkpoint": str(checkpoint), "spec": dict(SPEC)},
        "data": {"images": str(digits / "val_flat"), "labels": str(digits / "val_label.txt"), "workers": 1},
        "atc": {"batch_sizes": [1, 4]},
        "run": {"threads": 1},
    }
    for section, values in extra.items():
        raw.setdefault(section, {}).update(values)
    return raw


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.slow
def test_pipeline_end_to_end_then_cached_then_spec_change(tmp_path, digits, checkpoint):
    work = tmp_path / "work"
    config = config_from_dict(_raw(work, digits, checkpoint), base=tmp_path, where="test")
    first = run_pipeline(config)

    names = [row.name for row in first.rows]
    assert names == ["bs1_force_fp16", "bs4_force_fp16", REFERENCE_ROW]
    for row in first.rows:
        assert row.images == 30
        text = row.result_json.read_text()
        data = json.loads(text)
        assert data["title"] == "Overall statistical evaluation" and "\n" not in text
        assert data["value"][0] == {"key": "Number of images", "value": "30"}
        assert data["value"][2]["value"] == str(round(row.top1, 2)) + "%"
    assert all(row.agreement is not None and row.agreement >= 90 for row in first.rows[:2])
    assert first.rows[0].top1 == pytest.approx(first.rows[1].top1)  # same images, same model, any batch

    parser = _Tags()
    parser.feed(first.report_html.read_text())
    images = [attrs["src"] for tag, attrs in parser.tags if tag == "img"]
    assert len(images) >= 2 and all(src.startswith("data:image/png;base64,") for src in images)
    assert sum(1 for tag, _ in parser.tags if tag == "tr") >= 4
    assert "bs4_force_fp16" in "".join(parser.text)
    assert "aipp_op" in first.report_md.read_text()

    second = run_pipeline(config)
    assert second.ran == [] and len(second.cached) == len(first.ran)

    changed = config_from_dict(_raw(work, digits, checkpoint, model={"spec": {**SPEC, "resize": 24}}),
                               base=tmp_path, where="test")
    third = run_pipeline(changed)
    assert "export" in third.cached
    assert "stamp spec" in third.ran
    assert {"preprocess aipp", "preprocess float", "run bs1_force_fp16", "evaluate bs1_force_fp16",
            "atc bs4_force_fp16"} <= set(third.ran)


@pytest.mark.slow
def test_failing_stage_is_named_and_earlier_outputs_stay(tmp_path, digits, checkpoint):
    labels = tmp_path / "val_label.txt"
    lines = (digits / "val_label.txt").read_text().splitlines()
    labels.write_text("\n".join([lines[0].split()[0] + " 99"] + lines[1:]) + "\n")  # a class the model lacks
    work = tmp_path / "work"
    raw = _raw(work, digits, checkpoint, data={"labels": str(labels)}, atc={"batch_sizes": [4]},
               compare={"reference": False})
    with pytest.raises(InferKitError) as err:
        run_pipeline(config_from_dict(raw, base=tmp_path, where="test"))
    message = err.value.one_line()
    assert message.startswith("pipeline stage 'evaluate bs4_force_fp16' failed")
    assert "outputs of earlier stages are kept" in message
    assert (work / "model.onnx").is_file() and (work / "prep" / "aipp" / "manifest.json").is_file()
    assert len(list((work / "runs" / "bs4_force_fp16").glob("*.bin"))) == 30

    labels.write_text("\n".join(lines + ["ghost_1.png 1", "ghost_2.png 2"]) + "\n")  # labels without an image
    rerun = run_pipeline(config_from_dict(raw, base=tmp_path, where="test"))
    assert "run bs4_force_fp16" in rerun.cached and "evaluate bs4_force_fp16" in rerun.ran
    # the full label file beside a subset of its images is scored, as the ModelZoo scorer does (it failed here)
    assert rerun.rows[0].images == 30


@pytest.mark.slow
def test_train_section_and_gates_through_the_cli(tmp_path, digits, cli):
    config = tmp_path / "p.toml"
    config.write_text(f"""
work_dir = "work"
name = "trained"

[train]
arch = "test_resnet"
data = "{digits}"
options = {{ epochs = 1, batch_size = 50, lr = 0.05, workers = 0, augment = "none" }}

[model]
spec = {{ resize = 20, crop = 16 }}

[data]
images = "{digits / 'val'}"

[atc]
batch_sizes = [2]

[compare]
reference = false

[evaluate]
min_top1 = 100.0
""")
    result = cli("pipeline", str(config), "--threads", "1")
    assert result.exit_code == 3, result.stderr
    assert "bs2_force_fp16: top-1 accuracy" in result.stderr and "is below the gate 100%" in result.stderr
    assert (tmp_path / "work" / "train" / "model_best.pth").is_file()
    assert (tmp_path / "work" / "report.html").is_file()
    assert "7 stage(s) ran, 0 reused" in result.stdout
    again = cli("pipeline", str(config), "--threads", "1", "--min-top1", "0")
    assert again.exit_code == 0 and "reused: train, export" in again.stdout


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[data]\nimages = 'x'\n[model]\ncheckpoint = 'c.pth'\n[atc]\nbatch = [1]\n", "[atc] unknown key(s) batch"),
        ("[data]\nimages = 'x'\n", "[model] needs checkpoint"),
        ("[data]\nimages = 'x'\n[model]\nonnx = 'm.onnx'\n[atc]\nprecision_modes = ['fp8']\n", "precision mode 'fp8'"),
        ("[data]\nimages = 'x'\n[model]\nonnx = 'm.onnx'\n[atc]\nsoc = 'Ascend999'\n", "soc 'Ascend999' is not a chip"),
        ("[data]\nimages = 'x'\n[model]\nonnx = 'm.onnx'\n[atc]\nprecision_modes = ['allow_fp32_to_bf16']\n",
         "needs bfloat16, which Ascend910A does not compute"),
        ("[data]\nimages = 'x'\n[model]\nonnx = 'm.onnx'\nspec = { size = 3 }\n", "spec has unknown key(s) size"),
        ("[data]\nimages = 'x'\n[model]\nonnx = 'm.onnx'\n[run]\nthreads = 'two'\n", "threads must be a positive"),
        ("[data\n", "not valid TOML"),
        ("[data]\nimages = 'x'\n[model]\nonnx = 'm.onnx'\nspec = { mean = [1, 2] }\n",
         "[model] spec: mean must be three finite numbers"),
        ("[data]\nimages = 'x'\n[model]\nonnx = 'm.onnx'\nspec = { resize = 16, crop = 20 }\n",
         "[model] spec: crop 20 is larger than resize 16"),
        ("[data]\nimages = 'x'\n[model]\nonnx = 'm.onnx'\nspec = { crop = '16' }\n",
         "[model] spec: crop must be a positive integer"),
        ("[data]\nimages = 'x'\n[train]\narch = 'a'\ndata = 'd'\n[model]\nonnx = 'm.onnx'\n",
         "[model] onnx and a [train] section exclude each other"),
        ("[data]\nimages = 'x'\n[model]\nonnx = 'm.onnx'\n[compare]\ntorch = true\n",
         "[compare] torch = true needs a checkpoint"),
        ("[data]\nlimit = 3\n[model]\nonnx = 'm.onnx'\n", "[data] is missing key(s) images"),
        ("[data]\nimages = 'x'\n[model]\nonnx = 'm.onnx'\n[atc]\nbatch_sizes = [1, true]\n",
         "batch_sizes must be a non-empty list of positive integers"),
        ("[data]\nimages = 'x'\n[train]\narch = 'a'\ndata = 'd'\noptions = { epoch = 2 }\n",
         "[train] options has unknown key epoch"),
        ("[data]\nimages = 'x'\n[train]\narch = 'a'\ndata = 'd'\noptions = { epochs = 'two' }\n",
         "[train] options epochs must be of type int"),
        ("[data]\nimages = 'x'\n[train]\narch = 'a'\ndata = 'd'\noptions = { output = 'o' }\n",
         "[train] options output is set by the pipeline itself"),
    ],
)
def test_config_errors_name_file_section_and_key(tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InferKitError) as err:
        load_config(path)
    assert str(path) in err.value.one_line() and fragment in err.value.one_line()


def test_a_dangling_symlink_among_the_images_keys_the_folder_and_does_not_crash(tmp_path):
    from infer_kit.pipeline.cache import folder_fingerprint

    (tmp_path / "a.png").write_bytes(b"x")
    before = folder_fingerprint(tmp_path)
    (tmp_path / "broken.png").symlink_to(tmp_path / "nowhere.png")  # was FileNotFoundError: "internal error"
    assert folder_fingerprint(tmp_path) != before


def test_a_state_file_entry_of_another_shape_is_a_stage_to_rerun(tmp_path):
    from infer_kit.pipeline.cache import STATE_FILE, StageCache

    (tmp_path / STATE_FILE).write_text('{"export": 5, "train": {"key": "k", "status": "done"}}')
    cache = StageCache(tmp_path)  # 'int' object has no attribute 'get' was an internal error
    assert cache.hit("export", "k", []) is None and cache.hit("train", "k", []) is not None


def test_the_make_demo_config_parses_and_says_what_the_readme_says():
    config = load_config(Path(__file__).resolve().parents[1] / "examples" / "fashion_mnist.toml")
    assert (config.train.arch, config.train.options["epochs"]) == ("resnet10t", 2)  # the README's Quick start
    assert config.atc.batch_sizes == (1, 16) and config.atc.precision_modes == ("force_fp16",)
    assert config.compare.reference and config.evaluate.min_top1 == 80.0
    assert config.work_dir.parts[-2:] == ("demo-work", "pipeline") and config.data.images.name == "val_flat"


def test_run_warmup_count_may_be_zero_as_for_run(tmp_path):
    raw = {"model": {"onnx": "m.onnx"}, "data": {"images": "x"}, "run": {"warmup_count": 0}}
    assert config_from_dict(raw, base=tmp_path, where="p.toml").run.warmup_count == 0
    with pytest.raises(InferKitError, match=r"\[run\] warmup_count must be an integer of 0 or more, got -1"):
        config_from_dict({**raw, "run": {"warmup_count": -1}}, base=tmp_path, where="p.toml")


def test_an_aipp_config_path_is_relative_to_the_config_file(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "p.toml").write_text("[data]\nimages = 'x'\n[model]\nonnx = 'm.onnx'\n[atc]\naipp = 'my.aippconfig'\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(folder / "p.toml").atc.aipp == str(folder / "my.aippconfig")
    (folder / "p.toml").write_text("[data]\nimages = 'x'\n[model]\nonnx = 'm.onnx'\n[atc]\naipp = 'none'\n")
    assert load_config(folder / "p.toml").atc.aipp == "none"


@pytest.mark.parametrize("key", ["checkpoint", "labels", "images", "calibration", "aipp"])
def test_a_missing_input_is_named_before_any_stage_runs(tmp_path, digits, checkpoint, key):
    raw = _raw(tmp_path / "work", digits, checkpoint)
    section = {"checkpoint": "model", "labels": "data", "images": "data", "calibration": "atc", "aipp": "atc"}[key]
    raw[section][key] = "no_such_thing"
    config = config_from_dict(raw, base=tmp_path, where="p.toml", source=tmp_path / "p.toml")
    with pytest.raises(InferKitError) as err:
        run_pipeline(config)
    assert f"[{section}] {key} {tmp_path / 'no_such_thing'} does not exist" in err.value.one_line()
    assert not (tmp_path / "work").exists()  # nothing ran, not even the work folder


def test_a_work_dir_that_is_a_file_is_one_line(tmp_path, digits, checkpoint):
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(InferKitError, match=r"work_dir of .*p.toml .*taken is a file, not a folder"):  # FileExistsError
        run_pipeline(config_from_dict(_raw(tmp_path / "taken", digits, checkpoint), base=tmp_path, where="p",
                                     source=tmp_path / "p.toml"))


def test_a_second_pipeline_on_the_same_work_folder_is_refused(tmp_path, digits, checkpoint):
    from infer_kit.locks import hold

    work = tmp_path / "work"
    with hold(work / ".pipeline.lock", what="held by this test"):  # as a pipeline running elsewhere holds it
        with pytest.raises(InferKitError, match=r"pipeline work folder .*work is in use by pid"):
            run_pipeline(config_from_dict(_raw(work, digits, checkpoint), base=tmp_path, where="p.toml"))
    assert sorted(p.name for p in work.iterdir()) == []  # nothing written under the other run


def test_a_label_folder_is_refused_before_any_stage_runs(tmp_path, digits, checkpoint):
    raw = _raw(tmp_path / "work", digits, checkpoint)
    raw["data"]["labels"] = str(digits)  # evaluate takes a folder, the report's image list did not
    with pytest.raises(InferKitError, match=r"\[data\] labels .* is not a file"):
        run_pipeline(config_from_dict(raw, base=tmp_path, where="p.toml"))


def test_a_work_dir_holding_the_inputs_is_refused_before_anything_is_deleted(tmp_path, digits, checkpoint):
    data = tmp_path / "data"
    shutil.copytree(digits, data)
    raw = {"work_dir": str(data), "train": {"arch": "test_resnet", "data": str(data), "options": {"epochs": 1}},
           "data": {"images": str(data / "val_flat")}}
    with pytest.raises(InferKitError, match=r"work_dir .*data is inside \[train\] data"):
        run_pipeline(config_from_dict(raw, base=tmp_path, where="p.toml"))
    assert (data / "train").is_dir()  # the train stage cleared work_dir/train: the training images went with it
    raw = _raw(tmp_path / "work", digits, checkpoint)
    (tmp_path / "work" / "prep").mkdir(parents=True)
    raw["model"]["checkpoint"] = str(shutil.copy(checkpoint, tmp_path / "work" / "prep" / "c.pth"))
    with pytest.raises(InferKitError, match=r"\[model\] checkpoint .*c.pth is inside .*prep, which the pipeline"):
        run_pipeline(config_from_dict(raw, base=tmp_path, where="p.toml"))


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
@pytest.mark.slow
def test_report_renders_headless(tmp_path, digits, checkpoint):
    config = config_from_dict(_raw(tmp_path / "work", digits, checkpoint, atc={"batch_sizes": [4]}),
                              base=tmp_path, where="test")
    result = run_pipeline(config)
    png = tmp_path / "report.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium'}", f"--screenshot={png}", "--window-size=1200,2400",
         result.report_html.as_uri()],
        capture_output=True, timeout=120, check=False,
    )
    from PIL import Image

    with Image.open(png) as image:
        assert image.size == (1200, 2400)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, tables and plots, not a blank page


def test_a_larger_crop_than_the_checkpoints_resize_exports(tmp_path, digits):
    path = tmp_path / "small.pth"
    torch.save({"arch": "test_resnet", "preprocess_spec": {"resize": 16, "crop": 16},
                "state_dict": create_model("test_resnet", num_classes=10).state_dict()}, path)
    raw = _raw(tmp_path / "work", digits, path, model={"spec": {"resize": 24, "crop": 20}}, atc={"batch_sizes": [2]},
               data={"limit": 4})
    result = run_pipeline(config_from_dict(raw, base=tmp_path, where="test"))
    from infer_kit.artifacts import describe_model

    model = describe_model(result.work_dir / "model.onnx")
    assert model.inputs[0].shape[1:] == (3, 20, 20) and (model.spec.resize, model.spec.crop) == (24, 20)
    assert result.rows[0].images == 4


@pytest.mark.slow
def test_precision_sweep_has_one_row_per_mode_and_blames_the_layer(tmp_path, digits):
    """``precision_modes = ["all", "int8"]``: one row per mode. A planted underflow (the classifier's
    logits ~1e-9, below float16's smallest subnormal) costs every float16 row its agreement: the range
    check names the Gemm, and the per-layer comparison finds it first diverging."""
    torch.manual_seed(0)
    model = create_model("test_resnet", num_classes=10)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.zero_()
        model.fc.weight[9] = 1e-10  # float32: class 9 wins; float16: every logit flushes to 0, class 0 wins
    checkpoint = tmp_path / "tiny_logits.pth"
    torch.save({"arch": "test_resnet", "state_dict": model.state_dict()}, checkpoint)
    raw = _raw(tmp_path / "work", digits, checkpoint, atc={"batch_sizes": [4], "precision_modes": ["all", "int8"],
                                                                 "soc": "Ascend910B3"},
               compare={"max_disagreement": 0.0})
    result = run_pipeline(config_from_dict(raw, base=tmp_path, where="test"))
    from infer_kit.converter import ALL_MODES

    assert [row.name for row in result.rows] == [f"bs4_{mode}" for mode in (*ALL_MODES, "int8")] + [REFERENCE_ROW]
    reference = result.rows[-1]
    fp16_rows = {"bs4_force_fp16", "bs4_allow_fp32_to_fp16", "bs4_cube_fp16in_fp32out", "bs4_allow_mix_precision_fp16"}
    for row in result.rows[:-1]:
        assert row.delta_top1 == pytest.approx(row.top1 - reference.top1) and row.images_per_s > 0
        if row.name in fp16_rows:
            assert row.agreement == 0 and row.range_warning and "/fc/Gemm (Gemm)" in row.range_check
            layers = json.loads(row.layers_json.read_text())
            assert layers["first_divergence"]["node"] == "/fc/Gemm"
        else:
            assert row.agreement == 100 and row.layers_json is None and not row.range_warning
    assert result.rows[0].range_check and result.rows[3].range_check is None  # must_keep_origin_dtype: float32
    manifest = json.loads((tmp_path / "work" / "om" / "model_bs4_int8.manifest.json").read_text())
    assert manifest["calibration"]["folder"] == str(tmp_path / "work" / "prep" / "float")  # the pipeline's tensors
    assert {f.split(":")[0] for f in result.gate_failures} == fp16_rows
    md = result.report_md.read_text()
    assert "## Range check (float16 / bfloat16)" in md and "first diverging layer: `/fc/Gemm`" in md
    assert "| Δ top-1 | Δ top-5 | agree % | images/s |" in md
    parser = _Tags()
    parser.feed(result.report_html.read_text())
    assert any(tag == "figure" and attrs.get("id") == "layers_bs4_force_fp16" for tag, attrs in parser.tags)
