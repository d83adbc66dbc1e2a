"""Differentiable rollouts through MJX and the gradient hygiene that APG, SHAC and ILD share.

Roll out in `robojax.core.differentiable.differentiable(env)`, a copy of the task that
reverse-mode differentiation passes through.

Analytic policy gradients push a loss through hundreds of physics steps, where contacts make
gradients explode and long scans make memory grow with the horizon. The tools here:

- `rollout`: a `lax.scan` of policy + env steps that stays differentiable end to end;
- truncation windows (the state's gradient is cut every `truncation_length` steps);
- contact gradient scaling (steps where constraint forces act pass a scaled gradient, 0 cuts);
- per-step cotangent clipping in the backward pass (the norm of each env's state gradient);
- remat: `jax.checkpoint` over segments of the time scan, so memory grows ~sqrt(H), not H;
- `guarded_update`: an optimizer step that is skipped, and counted, when a gradient is NaN/inf.
"""

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from robojax.core.env import Env
from robojax.core.types import State


@dataclasses.dataclass(frozen=True)
class GradientConfig:
    """How gradients travel back through a differentiable rollout."""

    truncation_length: int | None = None
    """Cut the gradient through the env state every this many steps; None: never."""
    contact_grad_scale: float = 1.0
    """Multiply the gradient through steps where constraint forces act (contacts, joint limits)
    by this; 0 truncates the gradient at contacts, 1 leaves it alone."""
    step_grad_clip: float | None = None
    """Clip the norm of each env's state gradient at every step of the backward pass; None: off."""
    remat: bool = True
    """Recompute the forward pass during the backward pass (jax.checkpoint) in segments of the
    time scan, so memory grows about as sqrt(horizon) instead of linearly."""
    remat_segment: int | None = None
    """Steps per remat segment; None picks the divisor of the horizon nearest its square root."""

    def validate(self) -> None:
        if self.truncation_length is not None and self.truncation_length < 1:
            raise ValueError(f"truncation_length must be >= 1 or None, got "
                             f"{self.truncation_length}.")
        if not 0.0 <= self.contact_grad_scale <= 1.0:
            raise ValueError(f"contact_grad_scale must be in [0, 1], got "
                             f"{self.contact_grad_scale}.")
        if self.step_grad_clip is not None and self.step_grad_clip <= 0:
            raise ValueError(f"step_grad_clip must be > 0 or None, got {self.step_grad_clip}.")


class Step(NamedTuple):
    """What a differentiable rollout records per step (time-major, batched)."""

    obs: jax.Array  # observation the action was chosen from
    action: jax.Array
    reward: jax.Array
    done: jax.Array
    truncated: jax.Array
    final_obs: jax.Array  # observation the step reached, before any autoreset


def _is_float(x) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)


def _per_env(scale: jax.Array, x: jax.Array) -> jax.Array:
    return scale.reshape(scale.shape + (1,) * (x.ndim - scale.ndim))


def scale_grad(tree, scale: jax.Array):
    """Identity forward; the backward pass multiplies each env's gradient by `scale` (batch,).
    Where `scale` is 0 the gradient is cut exactly (no 0 * inf)."""

    def one(x):
        if not _is_float(x):
            return x
        s = _per_env(scale, x)
        stopped = jax.lax.stop_gradient(x)
        scaled = stopped + s * (x - stopped)
        return jnp.where(s == 0, stopped, scaled)

    return jax.tree.map(one, tree)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _clip_cotangent(leaves: list, max_norm: float) -> list:
    return leaves


def _clip_fwd(leaves, max_norm):
    return leaves, None


def _clip_bwd(max_norm, _, grads):
    batch = grads[0].shape[:1]
    sq = sum(jnp.sum(g.reshape(batch + (-1,)) ** 2, axis=-1) for g in grads)
    factor = jnp.minimum(1.0, max_norm / (jnp.sqrt(sq) + 1e-12))  # NaN stays NaN: it is counted
    return ([g * _per_env(factor, g) for g in grads],)


_clip_cotangent.defvjp(_clip_fwd, _clip_bwd)


def clip_state_grad(tree, max_norm: float):
    """Identity forward; the backward pass clips the norm of each env's gradient (over all float
    leaves of `tree`, batch axis first) to `max_norm`."""
    leaves, treedef = jax.tree.flatten(tree)
    idx = [i for i, x in enumerate(leaves) if _is_float(x)]
    clipped = _clip_cotangent([leaves[i] for i in idx], max_norm)
    for i, x in zip(idx, clipped, strict=True):
        leaves[i] = x
    return jax.tree.unflatten(treedef, leaves)


def constraint_active(env: Env, state: State) -> jax.Array:
    """Per env: constraint forces (contacts, joint limits) act on the current physics state."""
    data = env.unwrapped.physics(state.data)
    force = data.qfrc_constraint
    return jnp.any(jnp.abs(force.reshape(force.shape[:1] + (-1,))) > 0, axis=-1)


def _hygiene(cfg: GradientConfig, env: Env, state: State, t: jax.Array) -> State:
    """Apply truncation, contact scaling and cotangent clipping to the state entering step t."""
    batch = state.reward.shape
    scale = jnp.ones(batch)
    if cfg.truncation_length is not None:
        scale = jnp.where(t % cfg.truncation_length == 0, 0.0, scale)
    if cfg.contact_grad_scale != 1.0:
        scale = jnp.where(constraint_active(env, state), scale * cfg.contact_grad_scale, scale)
    grad_part = {"data": state.data, "obs": state.obs}
    if cfg.truncation_length is not None or cfg.contact_grad_scale != 1.0:
        grad_part = scale_grad(grad_part, scale)
    if cfg.step_grad_clip is not None:
        grad_part = clip_state_grad(grad_part, cfg.step_grad_clip)
    return state.replace(**grad_part)


def remat_segment(cfg: GradientConfig, length: int) -> int:
    if cfg.remat_segment is not None:
        if length % cfg.remat_segment:
            raise ValueError(f"remat_segment {cfg.remat_segment} does not divide the horizon "
                             f"{length}; pick a divisor.")
        return cfg.remat_segment
    divisors = [d for d in range(1, length + 1) if length % d == 0]
    return min(divisors, key=lambda d: abs(d - math.sqrt(length)))


def scan(cfg: GradientConfig, f: Callable, carry, xs, length: int):
    """`lax.scan(f, carry, xs)`, rematerialized in segments when `cfg.remat` is on: the backward
    pass keeps one carry per segment boundary and recomputes each segment's steps."""
    if not cfg.remat:
        return jax.lax.scan(f, carry, xs, length=length)
    step = jax.checkpoint(f)
    segment = remat_segment(cfg, length)
    if segment in (1, length):
        return jax.lax.scan(step, carry, xs, length=length)
    num = length // segment
    split = jax.tree.map(lambda x: x.reshape((num, segment, *x.shape[1:])), xs)
    inner = jax.checkpoint(lambda c, x: jax.lax.scan(step, c, x, length=segment))
    carry, ys = jax.lax.scan(inner, carry, split, length=num)
    return carry, jax.tree.map(lambda y: y.reshape((length, *y.shape[2:])), ys)


def rollout(cfg: GradientConfig, env: Env, act: Callable[[jax.Array, jax.Array], jax.Array],
            state: State, key: jax.Array, length: int) -> tuple[State, Step]:
    """Differentiable rollout of `act(obs, key) -> action` in the batched `env` from `state`.

    Gradients flow from anything computed on the returned steps back through the physics into
    whatever `act` closes over (policy parameters), shaped by `cfg`.
    """

    def one_step(state, inputs):
        t, key_step = inputs
        state = _hygiene(cfg, env, state, t)
        action = act(state.obs, key_step)
        nxt = env.step(state, action)
        final_obs = nxt.extras.get("final_obs", nxt.obs)
        return nxt, Step(state.obs, action, nxt.reward, nxt.done, nxt.truncated, final_obs)

    xs = (jnp.arange(length), jax.random.split(key, length))
    return scan(cfg, one_step, state, xs, length)


def all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def guarded_update(optimizer: optax.GradientTransformation, grads, opt_state, params
                   ) -> tuple[dict, optax.OptState, jax.Array]:
    """An optimizer step, or no change at all when any gradient is NaN/inf.

    Returns (params, opt_state, skipped) with `skipped` 1.0 when the update was dropped."""
    ok = all_finite(grads)
    safe = jax.tree.map(lambda g: jnp.where(ok, g, 0.0), grads)
    updates, new_opt_state = optimizer.update(safe, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)  # noqa: E731
    return keep(new_params, params), keep(new_opt_state, opt_state), 1.0 - ok.astype(jnp.float32)


def squashed_action(policy, params: dict, obs: jax.Array, key: jax.Array | None) -> jax.Array:
    """tanh of a Gaussian policy's reparameterized sample (of its mean when `key` is None):
    actions stay in [-1, 1] with a gradient everywhere, unlike clipping."""
    return jnp.tanh(unsquashed_action(policy, params, obs, key))


def unsquashed_action(policy, params: dict, obs: jax.Array, key: jax.Array | None) -> jax.Array:
    """`squashed_action` before its tanh."""
    return policy.mode(params, obs) if key is None else policy.sample(params, obs, key)


def validate_saturation(cost: float, bound: float) -> None:
    if cost < 0:
        raise ValueError(f"saturation_cost must be >= 0 (0 turns the penalty off), got {cost}.")
    if bound <= 0:
        raise ValueError(f"saturation_bound must be > 0 (a pre-tanh magnitude; 3.0 is tanh "
                         f"0.995), got {bound}.")


def saturation_penalty(policy, params: dict, obs: jax.Array, bound: float
                       ) -> tuple[jax.Array, jax.Array]:
    """Mean squared excess of the policy mean's pre-tanh magnitude over `bound` on `obs`, and
    the fraction of action entries beyond it.

    tanh's slope vanishes past |u| ~ 3 (tanh'(3) = 0.01, tanh'(10) = 8e-9): an actor whose mean
    drifts there, as bang-bang controls such as pumping invite, receives no gradient from the
    physics at all and stays there. Penalising the excess keeps the mean where the gradient
    reaches it; it is zero inside [-bound, bound] and touches only the policy's parameters."""
    mean = policy.mode(params, jax.lax.stop_gradient(obs))
    excess = jax.nn.relu(jnp.abs(mean) - bound)
    return jnp.mean(excess**2), jnp.mean((excess > 0).astype(jnp.float32))
