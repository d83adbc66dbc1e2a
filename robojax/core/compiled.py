"""A function compiled as one program with XLA options of its own."""

import functools
from collections.abc import Callable

import jax


def with_compiler_options(fn: Callable, options: dict) -> Callable:
    """`fn` as one program compiled with the XLA `options`, when called on concrete arrays.
    Called inside a trace (`jax.eval_shape`, a jitted caller), `fn` runs as part of that
    program: jax refuses compiler options on a nested jit. The same `fn` (a bound method of
    the same object counts as the same) is traced once per argument shape, however often it
    is wrapped: a run of several seeds draws each seed's first states with one program (the
    last 64 wrapped functions stay jitted, with the objects they are bound to)."""
    def run(*args):
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(args)):
            return fn(*args)
        return _jitted(fn, tuple(sorted(options.items())))(*args)
    return run


@functools.lru_cache(maxsize=64)
def _jitted(fn: Callable, options: tuple) -> Callable:
    return jax.jit(fn, compiler_options=dict(options))
