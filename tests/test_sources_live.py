"""Checkpoints written in the test by the source frameworks themselves, where they are installed.

pycls 0.1.1 declares opencv-python (60+ MB) although its EffNet never imports it, so it is not in
the test extra: ``make test`` installs it with ``--no-deps`` (with yacs), and CI runs the pycls
test. MindSpore is an 800 MB wheel and no dependency: its test runs where it is installed. The
committed fixtures (test_sources.py) always run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "foreign"


def test_pycls_effnet_written_by_pycls_exports_with_pyclss_logits(tmp_path):
    pytest.importorskip("pycls")
    pytest.importorskip("yacs")
    import pycls.core.checkpoint as checkpoint
    import pycls.core.optimizer as optimizer
    import torch
    from pycls.core.config import cfg
    from pycls.models.effnet import EffNet

    from infer_kit.converter import export_onnx

    params = dict(stem_w=16, ds=[1, 2, 1, 1, 2, 1, 1], ws=[8, 16, 24, 32, 40, 48, 64], exp_rs=[1, 6, 6, 6, 6, 6, 6],
                  se_r=0.25, ss=[1, 2, 2, 2, 1, 2, 1], ks=[3, 3, 5, 3, 5, 5, 3], head_w=96, nc=7)
    cfg.MODEL.TYPE, cfg.MODEL.NUM_CLASSES, cfg.OUT_DIR, cfg.NUM_GPUS = "effnet", 7, str(tmp_path), 1
    cfg.EN.STEM_W, cfg.EN.DEPTHS, cfg.EN.WIDTHS, cfg.EN.STRIDES = 16, params["ds"], params["ws"], params["ss"]
    torch.manual_seed(1)
    model = EffNet(**params)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
    model.eval()
    path = Path(checkpoint.save_checkpoint(model, optimizer.construct_optimizer(model), 0))
    x = np.load(FIXTURES / "photos_96.npy")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    result = export_onnx(None, path, tmp_path / "b.onnx", spec_overrides={"resize": 96, "crop": 96})
    assert result.checkpoint.source == "pycls" and result.verification.passed
    import onnxruntime as ort

    got = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"]).run(None, {"actual_input_1": x})[0]
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_mindspore_save_checkpoint_reads_back_equal(tmp_path):
    ms = pytest.importorskip("mindspore")
    from infer_kit.converter.mindspore_ckpt import read_mindspore_checkpoint

    rng = np.random.default_rng(0)
    values = {"w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "h": rng.standard_normal(5).astype(np.float16),
              "i": np.arange(6, dtype=np.int64).reshape(2, 3), "s": np.float32(0.5)}
    params = [{"name": k, "data": ms.Tensor(v)} for k, v in values.items()]
    for crc in (False, True):
        path = tmp_path / f"m{int(crc)}.ckpt"
        ms.save_checkpoint(params, str(path), crc_check=crc, append_dict={"note": "text"})
        checkpoint = read_mindspore_checkpoint(path)
        assert checkpoint.crc_checked == crc and checkpoint.text == {"note": "text"}
        for name, value in values.items():
            assert np.array_equal(checkpoint.tensors[name], np.asarray(value)), name
