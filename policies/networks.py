"""Small network building blocks shared by the policy families and critics."""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from robojax.core.compiled import with_compiler_options

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "swish": nn.swish, "elu": nn.elu,
               "gelu": nn.gelu}


INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}
"""XLA options of `compiled_init`'s programs."""


def compiled_init(init):
    """`init` (a network's `init`, or a function of a key and example inputs returning
    parameters) as one compiled program, at XLA's optimization level 1.

    Run op by op, an init compiles each of its many small ops anew in every process. Compiled at
    XLA's default level, the initializers' random-number generation takes far longer to compile
    than the one call it serves (a U-Net's init: 22 s on 2 CPU cores). Level 1 compiles it in
    a third of that and draws bitwise the same parameters (tests/test_networks.py). Called
    inside a trace (`jax.eval_shape`, a jitted caller), `init` becomes part of that program."""
    return with_compiler_options(init, INIT_COMPILER_OPTIONS)


def activation(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class MLP(nn.Module):
    """Dense layers with `activation` between them; the last layer is linear."""

    hidden_sizes: Sequence[int]
    out_size: int
    activation: str = "tanh"
    out_scale: float = 1.0  # orthogonal-init gain of the output layer
    layer_norm: bool = False  # LayerNorm after each hidden Dense (RLPD's critics)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = activation(self.activation)
        for size in self.hidden_sizes:
            x = nn.Dense(size, kernel_init=nn.initializers.orthogonal(jnp.sqrt(2.0)))(x)
            x = act(nn.LayerNorm()(x) if self.layer_norm else x)
        return nn.Dense(self.out_size, kernel_init=nn.initializers.orthogonal(self.out_scale))(x)
