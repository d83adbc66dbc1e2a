"""Reverse-mode gradients through MJX tasks: `differentiable(env)`.

MJX iterates its constraint solver in a `lax.while_loop`, which reverse-mode differentiation
cannot pass, and its line search's bracketing has NaN derivatives. `differentiable(env)` returns
a copy of an MJX task whose step runs one Newton iteration (a straight-line computation, and
usually converged: Newton from the warm start) and differentiates the line search with the
chosen step length held fixed (the search's forward values are MJX's own). Train through the
copy; evaluate in the task itself:

    env = differentiable(envs.make("hopper"))
    grad = jax.grad(lambda a: env.step(state, a).reward)(action)

Without it, `jax.grad` through a task that needs the iterated solver fails with an error that
names this switch. The switch is local: only steps of a `differentiable` env, traced in the
calling thread, use the fixed-step line search; other envs and threads keep MJX's own.
"""

import contextlib
import contextvars
import copy
from collections.abc import Callable

import jax
import jax.numpy as jnp

_FIXED_STEP_LINESEARCH = contextvars.ContextVar("robojax_fixed_step_linesearch", default=False)


def differentiable(env):
    """A copy of the MJX task `env` (unwrapped) that reverse-mode differentiation passes
    through; `env` itself when it already is one."""
    from robojax.core.mjx_env import MjxEnv

    if not isinstance(env, MjxEnv):
        raise TypeError(f"differentiable() needs a robojax MJX task, got {type(env).__name__}; "
                        "build one with robojax.envs.make(NAME) and wrap it afterwards.")
    if env.differentiable:
        return env
    twin = copy.copy(env)
    model = env.mjx_model
    twin._mjx_model = model.replace(opt=model.opt.replace(iterations=1))
    twin.differentiable = True
    twin._build_programs()
    return twin


@contextlib.contextmanager
def fixed_step_linesearch():
    """While tracing inside this context (in this thread), MJX's line search passes gradients
    with its step length held fixed."""
    _install_dispatch()
    token = _FIXED_STEP_LINESEARCH.set(True)
    try:
        yield
    finally:
        _FIXED_STEP_LINESEARCH.reset(token)


def _install_dispatch() -> None:
    """Route MJX's `solver._linesearch` through a dispatcher, once: it calls MJX's own search
    unless the calling context asked for the fixed-step one, so nothing changes elsewhere."""
    from mujoco.mjx._src import solver

    if getattr(solver._linesearch, "robojax_dispatch", False):
        return
    original = solver._linesearch
    fixed = _linesearch_fixed_step(original)

    def dispatch(m, d, ctx):
        return (fixed if _FIXED_STEP_LINESEARCH.get() else original)(m, d, ctx)

    dispatch.robojax_dispatch = True
    solver._linesearch = dispatch


def _linesearch_fixed_step(original: Callable) -> Callable:
    """MJX's solver line search with the step length held constant in the backward pass.

    The search's bracketing (square roots at zero, Newton steps with zero curvature) has
    NaN derivatives; the step it picks is a choice, not a function worth differentiating. The
    forward values are the original's, bit for bit; gradients flow through the start point
    and the search direction."""
    from mujoco.mjx._src import support

    def linesearch(m, d, ctx):
        sg = jax.lax.stop_gradient
        new = original(m, sg(d), sg(ctx))
        delta = new.qacc - sg(ctx.qacc)
        search = sg(ctx.search)
        alpha = jnp.dot(delta, search) / jnp.maximum(jnp.dot(search, search), 1e-30)
        mv = support.mul_m(m, d, ctx.search)
        jv = d._impl.efc_J @ ctx.search
        moved = lambda new_x, x, dx: new_x + (x - sg(x)) + alpha * (dx - sg(dx))  # noqa: E731
        return new.replace(qacc=moved(new.qacc, ctx.qacc, ctx.search),
                           Ma=moved(new.Ma, ctx.Ma, mv), Jaref=moved(new.Jaref, ctx.Jaref, jv))

    return linesearch


def guard_reverse_mode(step: Callable, env_name: str) -> Callable:
    """`step(data, ctrl) -> data` unchanged forward; in reverse mode, MJX's own error ("does
    not work for lax.while_loop") becomes one that names `differentiable()`."""

    @jax.custom_vjp
    def guarded(data, ctrl):
        return step(data, ctrl)

    def forward(data, ctrl):
        return step(data, ctrl), (data, ctrl)

    def backward(residuals, cotangent):
        try:
            _, pullback = jax.vjp(step, *residuals)
            return pullback(cotangent)
        except ValueError as err:
            if "while_loop" not in str(err):
                raise
            raise NotDifferentiableError(
                f"{env_name}'s step is not reverse-differentiable as built: MJX iterates its "
                "constraint solver in a while_loop. Differentiate a differentiable copy "
                "instead: `from robojax.core.differentiable import differentiable; "
                "env = differentiable(env)` (its solver runs one Newton iteration)."
            ) from None

    guarded.defvjp(forward, backward)
    return guarded


class NotDifferentiableError(ValueError):
    """Reverse-mode differentiation reached an MJX task built without `differentiable()`."""
