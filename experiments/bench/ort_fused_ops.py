"""Would ONNX's own GroupNormalization and Mish operators make the exported U-Net faster?

    python experiments/bench/ort_fused_ops.py [--calls 3000] [--blocks 50] [--threads 1]

The exported U-Net spells GroupNorm and Mish out in elementwise nodes (`ReduceMean`, `Sub`,
`Div`, `Softplus`, `Tanh`...). This builds both spellings by hand at the U-Net's shapes
(batch 1, 256 channels, a horizon of 4, 8 groups) and times them in ONNX Runtime's CPU
provider: one GroupNorm and one Mish alone, and `--blocks` GroupNorm + Mish blocks in a chain,
as the U-Net stacks them. p50 per call over `--calls` calls after warm-up.
"""

import argparse

import numpy as np
import onnx
import onnxruntime as ort
from _ort import cpu_session, p50_us
from onnx import TensorProto, numpy_helper
from onnx import helper as oh

CHANNELS, LENGTH, GROUPS, EPS, OPSET = 256, 4, 8, 1e-5, 21


def _const(name: str, value, dtype=np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype), name)


def _model(nodes: list, output: str) -> bytes:
    rng = np.random.default_rng(0)
    scale, bias = rng.random(CHANNELS), rng.random(CHANNELS)
    inits = [_const("scale", scale), _const("bias", bias),
             _const("scale_c1", scale[:, None]), _const("bias_c1", bias[:, None]),
             _const("grouped", [1, GROUPS, -1], np.int64), _const("axis", [2], np.int64),
             _const("eps", EPS), _const("ungrouped", [1, CHANNELS, LENGTH], np.int64)]
    used = {name for node in nodes for name in node.input}
    value = [1, CHANNELS, LENGTH]
    graph = oh.make_graph(nodes, "blocks",
                          [oh.make_tensor_value_info("x", TensorProto.FLOAT, value)],
                          [oh.make_tensor_value_info(output, TensorProto.FLOAT, value)],
                          [init for init in inits if init.name in used])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", OPSET)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model.SerializeToString()


def group_norm(x: str, out: str, fused: bool) -> list:
    if fused:
        return [oh.make_node("GroupNormalization", [x, "scale", "bias"], [out],
                             num_groups=GROUPS, epsilon=EPS)]
    p = f"{out}_"
    return [oh.make_node("Reshape", [x, "grouped"], [p + "g"]),
            oh.make_node("ReduceMean", [p + "g", "axis"], [p + "mean"]),
            oh.make_node("Sub", [p + "g", p + "mean"], [p + "d"]),
            oh.make_node("Mul", [p + "d", p + "d"], [p + "d2"]),
            oh.make_node("ReduceMean", [p + "d2", "axis"], [p + "var"]),
            oh.make_node("Add", [p + "var", "eps"], [p + "var_eps"]),
            oh.make_node("Sqrt", [p + "var_eps"], [p + "std"]),
            oh.make_node("Div", [p + "d", p + "std"], [p + "n"]),
            oh.make_node("Reshape", [p + "n", "ungrouped"], [p + "nc"]),
            oh.make_node("Mul", [p + "nc", "scale_c1"], [p + "scaled"]),
            oh.make_node("Add", [p + "scaled", "bias_c1"], [out])]


def mish(x: str, out: str, fused: bool) -> list:
    if fused:
        return [oh.make_node("Mish", [x], [out])]
    return [oh.make_node("Softplus", [x], [f"{out}_sp"]),
            oh.make_node("Tanh", [f"{out}_sp"], [f"{out}_t"]),
            oh.make_node("Mul", [x, f"{out}_t"], [out])]


def chain(blocks: int, fused: bool) -> bytes:
    nodes, x = [], "x"
    for i in range(blocks):
        nodes += group_norm(x, f"gn{i}", fused) + mish(f"gn{i}", f"h{i}", fused)
        x = f"h{i}"
    return _model(nodes, x)


def timed(model: bytes, calls: int, threads: int) -> tuple[float, np.ndarray]:
    """p50 us per call, and the output."""
    session = cpu_session(model, threads)
    x = {"x": np.random.default_rng(1).standard_normal((1, CHANNELS, LENGTH)).astype(np.float32)}
    return p50_us(session, x, calls, warmup=min(calls, 200)), session.run(None, x)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--blocks", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(f"ONNX Runtime {ort.__version__}, {args.threads} intra-op thread(s), opset {OPSET}")
    print("| graph | ONNX operator, p50 us | spelled out, p50 us | operator / spelled out "
          "| max abs difference |")
    print("|---|---|---|---|---|")
    cases = [("one GroupNorm", lambda fused: _model(group_norm("x", "y", fused), "y"), args.calls),
             ("one Mish", lambda fused: _model(mish("x", "y", fused), "y"), args.calls),
             (f"{args.blocks} GroupNorm + Mish blocks", lambda fused: chain(args.blocks, fused),
              max(1, args.calls // 10))]  # a chain takes ~blocks times as long per call
    for name, build, calls in cases:
        (fused, a), (spelled, b) = (timed(build(f), calls, args.threads) for f in (True, False))
        print(f"| {name} | {fused:.1f} | {spelled:.1f} | {fused / spelled:.2f} "
              f"| {np.abs(a - b).max():.1e} |")


if __name__ == "__main__":
    main()
