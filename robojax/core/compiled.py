"""A function compiled as one program with XLA options of its own."""

from collections.abc import Callable

import jax


def with_compiler_options(fn: Callable, options: dict) -> Callable:
    """`fn` as one program compiled with the XLA `options`, when called on concrete arrays.
    Called inside a trace (`jax.eval_shape`, a jitted caller), `fn` runs as part of that
    program: jax refuses compiler options on a nested jit."""
    def run(*args):
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(args)):
            return fn(*args)
        return jax.jit(fn, compiler_options=options)(*args)
    return run
