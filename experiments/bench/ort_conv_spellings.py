"""How should an exported U-Net convolution (and its Mish) be spelled for ONNX Runtime?

    python experiments/bench/ort_conv_spellings.py [--calls 500] [--threads 1]

At batch 1 and the default U-Net's layer shapes (horizons 16, 8 and 4; kernel 5), each "same"
1D convolution is built three ways and timed in ONNX Runtime's CPU provider, p50 per call over
`--calls` calls after warm-up:
- `Conv` over (1, C, L), what a converter writes for XLA's convolution;
- `Conv` over (1, C, 1, L), the same as a 2D convolution;
- `MatMul` of the k windows side by side (1, L, k*C) by the kernel flattened to (k*C, C'), the
  spelling `robojax export` writes (`policies.unet._im2col_conv` under `graph_export`).
Then the elementwise operators a Mish can be spelled with, each alone on 65,536 values (the
energy MLP's 256 proposals x 256 units): `Softplus` against the `Exp`, `Mul` and `Div` of
`policies.unet.mish`.
"""

import argparse

import numpy as np
import onnxruntime as ort
from _ort import cpu_session, p50_us
from onnx import TensorProto, numpy_helper
from onnx import helper as oh

SHAPES = ((16, 64, 64), (8, 128, 128), (4, 256, 256), (4, 512, 256))
"""(length, in channels, out channels) of the default U-Net's convolutions."""
KERNEL, OPSET, WARMUP = 5, 21, 50


def session(nodes, inputs: dict, output: str, out_shape, inits, threads: int):
    graph = oh.make_graph(
        nodes, "g", [oh.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [oh.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", OPSET)])
    return cpu_session(model.SerializeToString(), threads)


def conv_row(length: int, cin: int, cout: int, calls: int, threads: int, rng) -> list[float]:
    w = (0.05 * rng.standard_normal((cout, cin, KERNEL))).astype(np.float32)
    x = rng.standard_normal((1, cin, length)).astype(np.float32)
    pad = (KERNEL - 1) // 2
    conv1d = session([oh.make_node("Conv", ["x", "w"], ["y"], pads=[pad, pad])],
                     {"x": [1, cin, length]}, "y", [1, cout, length], {"w": w}, threads)
    conv2d = session([oh.make_node("Conv", ["x", "w"], ["y"], pads=[0, pad, 0, pad])],
                     {"x": [1, cin, 1, length]}, "y", [1, cout, 1, length],
                     {"w": w[:, :, None]}, threads)
    flat = w.transpose(2, 1, 0).reshape(KERNEL * cin, cout)
    matmul = session([oh.make_node("MatMul", ["x", "w"], ["y"])], {"x": [length, KERNEL * cin]},
                     "y", [length, cout], {"w": flat}, threads)
    windows = rng.standard_normal((length, KERNEL * cin)).astype(np.float32)
    return [p50_us(conv1d, {"x": x}, calls, WARMUP),
            p50_us(conv2d, {"x": x[:, :, None]}, calls, WARMUP),
            p50_us(matmul, {"x": windows}, calls, WARMUP)]


def elementwise_us(op: str, calls: int, threads: int, rng) -> float:
    size = 65_536
    args = ["x", "x"] if op in ("Mul", "Div") else ["x"]
    sess = session([oh.make_node(op, args, ["y"])], {"x": [size]}, "y", [size], {}, threads)
    return p50_us(sess, {"x": rng.standard_normal(size).astype(np.float32)}, calls, WARMUP)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"onnxruntime {ort.__version__}, {args.threads} intra-op thread(s), batch 1, kernel "
          f"{KERNEL}\n")
    print("| length, channels in -> out | Conv 1D us | Conv 2D us | MatMul of windows us "
          "| Conv 1D / MatMul |\n|---|---|---|---|---|")
    for length, cin, cout in SHAPES:
        c1, c2, mm = conv_row(length, cin, cout, args.calls, args.threads, rng)
        print(f"| {length}, {cin} -> {cout} | {c1:.1f} | {c2:.1f} | {mm:.1f} | {c1 / mm:.1f} |")
    print("\n| operator on 65,536 values | us |\n|---|---|")
    for op in ("Identity", "Mul", "Div", "Exp", "Tanh", "Sigmoid", "Softplus"):
        print(f"| {op} | {elementwise_us(op, args.calls, args.threads, rng):.1f} |")


if __name__ == "__main__":
    main()
