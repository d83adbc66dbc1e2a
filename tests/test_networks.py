import jax
import jax.numpy as jnp
import numpy as np
import pytest
from robojax.policies.networks import MLP, compiled_init
from robojax.policies.unet import ConditionalResidualBlock1D, TimeEncoder

# The initializers robojax's networks use: orthogonal (MLP), LeCun-normal and zeros (U-Net
# convolutions, Dense layers), ones (GroupNorm), LayerNorm's; a whole U-Net is these blocks.
NETWORKS = {
    "mlp": (MLP((16, 16), 3, layer_norm=True), (jnp.zeros((1, 5)),)),
    "unet-block": (ConditionalResidualBlock1D(8, 3, 4), (jnp.zeros((1, 4, 2)), jnp.zeros((1, 6)))),
    "time-encoder": (TimeEncoder(8), (jnp.zeros((1, 2)),)),
}


@pytest.mark.parametrize("name", NETWORKS)
def test_compiled_init_draws_the_parameters_of_the_default_compilation(name):
    """`compiled_init` compiles at XLA's optimization level 1, for compile time alone: the
    parameters are bitwise those of the same init compiled with XLA's defaults."""
    net, inputs = NETWORKS[name]
    key = jax.random.PRNGKey(7)
    ours = compiled_init(net.init)(key, *inputs)
    default = jax.jit(net.init)(key, *inputs)
    assert jax.tree.structure(ours) == jax.tree.structure(default)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(default), strict=True):
        np.testing.assert_array_equal(a, b)


def test_compiled_init_inside_a_trace_becomes_part_of_its_program():
    net, inputs = NETWORKS["mlp"]
    shapes = jax.eval_shape(compiled_init(net.init), jax.random.PRNGKey(0), *inputs)
    params = jax.jit(compiled_init(net.init))(jax.random.PRNGKey(0), *inputs)
    assert jax.tree.map(lambda x: x.shape, shapes) == jax.tree.map(lambda x: x.shape, params)
