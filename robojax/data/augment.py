"""Data augmentation by a task's mirror symmetry (`robojax.core.reflection.Reflection`).

Every demonstrated trajectory's mirror image is another valid one; behaviour cloning reflects
half of each batch, which doubles the states its demonstrations cover without recording more.
"""

import jax
import jax.numpy as jnp
import numpy as np

from robojax.core.reflection import Reflection, check_reflection  # noqa: F401 - re-exported


def _apply(matrix: np.ndarray, x: jax.Array) -> jax.Array:
    return x @ jnp.asarray(matrix, x.dtype).T


def reflect(reflection: Reflection, obs: jax.Array, actions: jax.Array
            ) -> tuple[jax.Array, jax.Array]:
    """Mirror images of observations (..., obs_dim) and actions (..., action_dim)."""
    return _apply(reflection.obs_map, obs), _apply(reflection.action_map, actions)


def reflect_obs(reflection: Reflection, obs: jax.Array) -> jax.Array:
    """Mirror images of observations (..., obs_dim)."""
    return _apply(reflection.obs_map, obs)


def reflect_half(reflection: Reflection, batch: dict, key: jax.Array) -> dict:
    """Reflect each window of `batch` ({"obs": (B, To, D), "actions": (B, H, A)}) with
    probability 1/2; the other windows pass unchanged."""
    flip = jax.random.bernoulli(key, 0.5, batch["obs"].shape[:1])[:, None, None]
    obs, actions = reflect(reflection, batch["obs"], batch["actions"])
    return {**batch, "obs": jnp.where(flip, obs, batch["obs"]),
            "actions": jnp.where(flip, actions, batch["actions"])}
