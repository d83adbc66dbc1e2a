"""Return estimates over time-major trajectories, shared by PPO's advantages and SHAC's critic."""

import jax
import jax.numpy as jnp


def compute_gae(rewards: jax.Array, values: jax.Array, next_values: jax.Array,
                done: jax.Array, truncated: jax.Array, discount: float,
                gae_lambda: float) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimates and value (TD(lambda)) targets over a (T, ...)
    trajectory.

    `next_values[t]` is the value of the observation step t reached (before autoreset). A
    terminated step bootstraps from zero; a truncated one from `next_values`; either way the
    advantage does not leak across the episode boundary.
    """
    terminated = done & ~truncated
    bootstrap = jnp.where(terminated, 0.0, next_values)  # where, not *, so NaN cannot leak
    deltas = rewards + discount * bootstrap - values
    not_done = 1.0 - done.astype(values.dtype)

    def backward(advantage, inputs):
        delta, continues = inputs
        advantage = delta + discount * gae_lambda * continues * advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(values[0]), (deltas, not_done),
                                 reverse=True)
    return advantages, advantages + values


def n_step_transitions(steps: dict, n: int, discount: float) -> dict:
    """Transitions of a (T, ...) rollout turned into n-step ones, as off-policy learners with
    n-step returns store them (DrQ-v2, Acme): step t's `reward` becomes
    sum_k discount**k * reward[t + k] over the m = min(n, T - t) steps from t that stay in
    t's episode, its `next_obs` the observation the last of them reached, and its `discount`
    discount**(m - 1) times that step's own, so `reward + discount * stored_discount * V(
    next_obs)` is the m-step TD target. An episode's end (`last`: terminated or cut by a time
    limit) and any step stored with discount 0 (a relabelled takeover, a diverged env) stop the
    sum there, their discount 0 carrying into the target. The `last` flags are consumed; n = 1
    returns the steps as they were, without them."""
    steps = dict(steps)
    last = steps.pop("last")
    if n == 1:
        return steps
    length = last.shape[0]

    def ahead(x: jax.Array, k: int) -> jax.Array:  # x[t + k], zeros past the end
        return jnp.concatenate([x[k:], jnp.zeros_like(x[:k])])

    reward, stored, next_obs = steps["reward"], steps["discount"], steps["next_obs"]
    stops = last | (stored == 0)
    going = ~stops  # whether t's sum may take in step t + k
    for k in range(1, min(n, length)):
        valid = going & (jnp.arange(length) + k < length).reshape((-1,) + (1,) * (last.ndim - 1))
        reward = reward + jnp.where(valid, discount**k * ahead(steps["reward"], k), 0.0)
        stored = jnp.where(valid, discount**k * ahead(steps["discount"], k), stored)
        next_obs = jnp.where(valid[..., None], ahead(steps["next_obs"], k), next_obs)
        going = valid & ~ahead(stops, k)
    return {**steps, "reward": reward, "discount": stored, "next_obs": next_obs}
