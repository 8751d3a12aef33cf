"""Small hand-built ONNX graphs with known arithmetic for the precision tests, and their numpy references.

``residual_net``: Conv -> BN -> Relu -> MaxPool -> Conv -> Add -> Relu -> {GAP, Flatten -> Gemm}, on
fixed-point data: conv1's operands sit on grids (x = k/16, w = k/64, biases = k/1024), so its float32
sums are exact in any order but need more bits than float16 has; conv2 and the Gemm have exactly two
non-zero taps per output (a sum of two exact products rounds once in float32, in any order). So the
emulation and the numpy reference must agree bit for bit whatever the kernels' summation order, and
every misplaced or missing rounding shows. (Do not test exactness on timm models with their default
init: ``zero_init_last`` makes every block's last conv zero after BN folding.)
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from infer_kit.converter.rounding import round_bf16, round_fp16


def conv_nchw(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, pad: int) -> np.ndarray:
    """Direct convolution (stride 1) as im2col + matmul in float32."""
    n, c, h, wd = x.shape
    k, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    cols = np.empty((n, c * kh * kw, oh * ow), np.float32)
    idx = 0
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                cols[:, idx] = xp[:, ci, i:i + oh, j:j + ow].reshape(n, -1)
                idx += 1
    out = np.matmul(w.reshape(k, -1).astype(np.float32), cols)
    if b is not None:
        out = out + b.astype(np.float32).reshape(1, k, 1)
    return out.reshape(n, k, oh, ow)


def two_taps(rng: np.random.Generator, shape: tuple[int, ...], values: list[float]) -> np.ndarray:
    w = np.zeros((shape[0], int(np.prod(shape[1:]))), np.float32)
    for o in range(shape[0]):
        taps = rng.choice(w.shape[1], 2, replace=False)
        w[o, taps] = rng.choice(values, 2)
    return w.reshape(shape)


def residual_net(rng: np.random.Generator, c: int = 16, batch: int = 2, opset: int = 13):
    p = {
        "w1": (rng.integers(-63, 64, (c, 3, 3, 3)) / 64).astype(np.float32),
        "b1": (rng.integers(-4096, 4097, c) / 1024).astype(np.float32),
        "bn_scale": np.full(c, 2.0, np.float32), "bn_bias": (rng.integers(-4096, 4097, c) / 1024).astype(np.float32),
        "bn_mean": np.zeros(c, np.float32), "bn_var": np.ones(c, np.float32),
        "w2": two_taps(rng, (c, c, 3, 3), [-1.0, -0.5, -0.25, 0.25, 0.5, 1.0]),
        "b2": np.zeros(c, np.float32),
        "wfc": two_taps(rng, (10, c * 8 * 8), [-0.5, -0.25, 0.25, 0.5]), "bfc": np.zeros(10, np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn1"],
                         name="bn1", epsilon=0.0),
        helper.make_node("Relu", ["bn1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "p1"], ["a2"], name="add2"),
        helper.make_node("Relu", ["a2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["r2"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wfc", "bfc"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "residual", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10]),
         helper.make_tensor_value_info("r2", TensorProto.FLOAT, [batch, c, 8, 8])],
        initializer=[numpy_helper.from_array(v, k) for k, v in p.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), p


def fixed_point_input(rng: np.random.Generator, batch: int = 2) -> np.ndarray:
    """Values k/16 with |k| < 4096: exact in float32, and half of them need 12 significant bits, one more than
    float16 has (so the rounded copy of the input shows)."""
    return (rng.integers(-4095, 4096, (batch, 3, 16, 16)) / 16).astype(np.float32)


def residual_reference(x: np.ndarray, p: dict, fmt: str = "fp16") -> dict[str, np.ndarray]:
    """numpy: low-precision operands, float32 arithmetic, a low-precision result where the device writes one."""
    r = round_fp16 if fmt == "fp16" else round_bf16
    k = p["bn_scale"] / np.sqrt(p["bn_var"])
    w1 = r(p["w1"] * k.reshape(-1, 1, 1, 1))
    b1 = r((p["b1"] - p["bn_mean"]) * k + p["bn_bias"])
    c1 = r(np.maximum(conv_nchw(r(x), w1, b1, 1), 0))          # Conv(+BN)+Relu: one rounding
    p1 = c1.reshape(*c1.shape[:2], 8, 2, 8, 2).max(axis=(3, 5))  # exact on representable values
    c2 = r(conv_nchw(p1, r(p["w2"]), r(p["b2"]), 1))             # the conv's result is written
    r2 = r(np.maximum(c2 + p1, 0))                               # the add, rounded once (+relu)
    y = r(r2.reshape(len(x), -1) @ r(p["wfc"]).T + r(p["bfc"]))
    return {"y": y, "r2": r2}


def single_op(op: str, rng: np.random.Generator) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """A one-node Conv, MatMul or Gemm on grids where every float32 sum is exact, with its reference
    (float16 operands, float32 accumulation, float16 result)."""
    r = round_fp16
    x = (rng.integers(-4095, 4096, (4, 3, 12, 12) if op == "Conv" else (8, 32)) / 16).astype(np.float32)
    if op == "Conv":
        w = (rng.integers(-31, 32, (8, 3, 3, 3)) / 64).astype(np.float32)
        b = (rng.integers(-255, 256, 8) / 64).astype(np.float32)
        node = helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])
        expected = r(conv_nchw(r(x), r(w), r(b), 1))
    elif op == "MatMul":
        w = (rng.integers(-31, 32, (32, 16)) / 64).astype(np.float32)
        b = None
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
        expected = r(r(x) @ r(w))
    else:
        w = (rng.integers(-31, 32, (16, 32)) / 64).astype(np.float32)
        b = (rng.integers(-255, 256, 16) / 64).astype(np.float32)
        node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)
        expected = r(r(x) @ r(w).T + r(b))
    inits = [numpy_helper.from_array(w, "w")] + ([numpy_helper.from_array(b, "b")] if b is not None else [])
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(expected.shape))],
                              initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), x, expected


def session(model: onnx.ModelProto, level: str = "all"):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}[level]
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run(model: onnx.ModelProto, feeds: dict, level: str = "all") -> list[np.ndarray]:
    return session(model, level).run(None, feeds)
