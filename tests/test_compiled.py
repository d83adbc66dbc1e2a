"""`core.compiled.with_compiler_options`: one trace per wrapped function, whatever wraps it."""

import jax.numpy as jnp

from robojax.core.compiled import with_compiler_options

LEVEL_0 = {"xla_backend_optimization_level": 0}


class _Counting:
    """An object whose method counts how often jax traces it."""

    def __init__(self):
        self.traces = 0

    def double(self, x):
        self.traces += 1
        return 2 * x


def test_a_function_wrapped_again_is_traced_once_per_shape():
    counting = _Counting()
    for _ in range(3):  # as each seed of a run wraps the env's reset anew
        assert float(with_compiler_options(counting.double, LEVEL_0)(jnp.ones(()))) == 2.0
    assert counting.traces == 1
    with_compiler_options(counting.double, LEVEL_0)(jnp.ones(3))
    assert counting.traces == 2
