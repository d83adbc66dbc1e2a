"""Data augmentation by a task's mirror symmetry.

Many tasks look the same in a mirror: reflect the scene across a line (or plane) that maps the
goal onto itself, and every demonstrated trajectory becomes another valid one. A task declares
such a symmetry as a `Reflection`, two linear maps (observation and action) that are their own
inverses; behaviour cloning then reflects half of each batch, which doubles the states its
demonstrations cover without recording more of them.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Reflection(NamedTuple):
    """Linear maps `obs -> obs @ obs_map.T`, `action -> action @ action_map.T` that take a
    state-action pair of a task to its mirror image (each map its own inverse)."""

    obs_map: np.ndarray
    action_map: np.ndarray


def check_reflection(reflection: Reflection, obs_size: int, action_size: int) -> None:
    """Raise if the maps have the wrong shapes or are not their own inverses."""
    for name, matrix, size in (("obs_map", reflection.obs_map, obs_size),
                               ("action_map", reflection.action_map, action_size)):
        matrix = np.asarray(matrix)
        if matrix.shape != (size, size):
            raise ValueError(f"reflection {name} must be ({size}, {size}) for this env, got "
                             f"{matrix.shape}.")
        if not np.allclose(matrix @ matrix, np.eye(size), atol=1e-6):
            raise ValueError(f"reflection {name} is not its own inverse (a mirror applied "
                             "twice must give back the original).")


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
