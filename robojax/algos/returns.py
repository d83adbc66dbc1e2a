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
