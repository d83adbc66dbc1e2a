"""Serializers, one per format: `policy(obs, *noise)` with a symbolic batch dimension in,
the model file's bytes out.

- StableHLO through `jax.export`: a serialized, versioned module that any jax at least as new
  as the exporter deserializes and calls (`load_stablehlo`), without robojax or flax code.
- ONNX through jax2onnx (the `export` extra), simplified by onnxslim, then checked by onnx's
  own model checker. The sampler's steps are unrolled into a flat graph by default
  (`unrolled_sampler_loops`), and layers with a faster graph spelling take it
  (`graph_export`).
"""

import contextlib
import logging
from collections.abc import Callable

import jax
import jax.numpy as jnp

from robojax.core.program import graph_export, unrolled_sampler_loops
from robojax.deploy.contract import BATCH
from robojax.export.graph import Signature

ONNX_OPSET = 21
"""Supported by ONNX Runtime 1.17 and later, so robots with older runtimes load the models."""


def _missing_converter() -> ImportError:
    return ImportError(
        "ONNX export needs jax2onnx, onnx and onnxslim. Install them with `make export-deps`, or "
        "`pip install 'robojax[export]' && pip install --no-deps jax2onnx==0.17.1` (jax2onnx's "
        "own requirements pin an older orbax-checkpoint than robojax needs, hence --no-deps). "
        "Or export only StableHLO with `--format stablehlo`.")


def stablehlo(policy: Callable, sig: Signature, *, unroll: bool = False) -> bytes:
    """`unroll` is ignored: XLA compiles a loop as well as straight-line code."""
    (batch,) = jax.export.symbolic_shape(BATCH)
    args = [jax.ShapeDtypeStruct((batch, *shape), jnp.float32) for shape in sig.inputs.values()]
    return bytes(jax.export.export(jax.jit(policy))(*args).serialize())


def load_stablehlo(path) -> Callable:
    """The exported function of a `.stablehlo` file, callable on arrays with any batch size."""
    with open(path, "rb") as f:
        return jax.export.deserialize(bytearray(f.read())).call


def onnx(policy: Callable, sig: Signature, *, unroll: bool = True) -> bytes:
    """`unroll`: the sampler's steps as a flat graph (ONNX Runtime runs a U-Net DDIM-10
    sampler ~6x faster so, but converting ten U-Nets takes minutes instead of seconds) or as
    one Loop node."""
    # jax2onnx logs a warning with a traceback for each optional plugin (equinox, dm-pix)
    # whose library is absent, and onnx-ir one per untyped shape constant it skips; robojax
    # uses none of those plugins and the checker below validates the model.
    for name in ("jax2onnx", "onnx_ir"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import onnx as onnx_lib
        import onnxslim
        from jax2onnx import to_onnx
    except ImportError as e:
        raise _missing_converter() from e
    shapes = [(BATCH, *shape) for shape in sig.inputs.values()]
    with graph_export(), unrolled_sampler_loops() if unroll else contextlib.nullcontext():
        model = to_onnx(policy, shapes, model_name="robojax_policy", opset=ONNX_OPSET,
                        input_names=list(sig.inputs), output_names=list(sig.outputs))
    # The converter computes every reshape's size from the symbolic batch at run time and
    # keeps chains of reshapes and subgraphs of constants; onnxslim folds them, a quarter of
    # a U-Net's nodes, and ONNX Runtime pays for each node it runs (~1 us at batch 1). Its
    # concat-reshape fusion leaves the energy descent's nodes out of order, and it breaks the
    # descent's Loop body (`unroll=False`), so it skips that fusion and graphs with loops.
    if not any(node.op_type in ("Loop", "Scan", "If") for node in model.graph.node):
        model = onnxslim.slim(model, skip_fusion_patterns=["FusionConcatReshape"])
    onnx_lib.checker.check_model(model)
    return model.SerializeToString()


SERIALIZERS = {"onnx": onnx, "stablehlo": stablehlo}
