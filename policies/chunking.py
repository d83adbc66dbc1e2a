"""Action chunking: observation history in, a chunk of future actions out, executed with a
receding horizon (Diffusion Policy's n_obs_steps / horizon / n_action_steps).

The predicted chunk covers steps t-To+1 .. t-To+Tp; the controller executes the Ta actions from
step t on, then plans again. All envs of a batch plan on the same steps, so planning is one
batched policy call every Ta steps, skipped (`lax.cond`) in between.
"""

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from robojax.core.controller import Controller


@dataclasses.dataclass(frozen=True)
class ChunkConfig:
    n_obs_steps: int = 2
    """Observations the policy sees (the current one and To-1 before it)."""
    horizon: int = 16
    """Actions the policy predicts per call."""
    n_action_steps: int = 8
    """Actions executed before planning again."""

    def executed(self, chunks: jax.Array) -> jax.Array:
        """The `n_action_steps` actions (..., Ta, A) a chunk (..., H, A) executes: from the
        current step (row n_obs_steps - 1) on."""
        start = self.n_obs_steps - 1
        return chunks[..., start:start + self.n_action_steps, :]

    def validate(self) -> None:
        if min(self.n_obs_steps, self.horizon, self.n_action_steps) < 1:
            raise ValueError(f"chunk sizes must be >= 1, got {self}")
        if self.n_obs_steps - 1 + self.n_action_steps > self.horizon:
            raise ValueError(
                f"n_obs_steps - 1 + n_action_steps = {self.n_obs_steps - 1 + self.n_action_steps}"
                f" exceeds the horizon {self.horizon}: the executed actions must lie inside the "
                "predicted chunk. Raise the horizon or lower n_action_steps.")


def encode_history(history: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
    """An observation history (..., To, obs_dim) normalized by the demos' statistics and
    flattened to the policy's conditioning (..., To * obs_dim)."""
    normed = (history - mean) / std
    return normed.reshape(*normed.shape[:-2], -1)


class ChunkMemory(NamedTuple):
    history: jax.Array  # (num_envs, To, obs_dim), oldest first
    actions: jax.Array  # (num_envs, Ta, act_dim): the chunk being executed
    index: jax.Array  # () position in the chunk; 0 = plan now


def chunk_controller(chunks: ChunkConfig, action_size: int,
                     plan: Callable[[jax.Array, jax.Array], jax.Array]) -> Controller:
    """A controller that calls `plan(history (N, To, obs_dim), key) -> chunk (N, Tp, A)` every
    `n_action_steps` steps and executes the chunk's actions in between."""
    to, ta = chunks.n_obs_steps, chunks.n_action_steps

    def init(state) -> ChunkMemory:
        obs = state.obs
        return ChunkMemory(history=jnp.repeat(obs[:, None], to, axis=1),
                           actions=jnp.zeros((obs.shape[0], ta, action_size)),
                           index=jnp.zeros((), jnp.int32))

    def step(memory: ChunkMemory, state, key):
        obs = state.obs
        shifted = jnp.concatenate([memory.history[:, 1:], obs[:, None]], axis=1)
        # An env that just started an episode has no history yet: repeat its first obs,
        # as the training windows do at episode starts.
        fresh = (state.step == 0)[:, None, None]
        history = jnp.where(fresh, jnp.repeat(obs[:, None], to, axis=1), shifted)
        actions = jax.lax.cond(memory.index == 0,
                               lambda: chunks.executed(plan(history, key)),
                               lambda: memory.actions)
        action = actions[:, memory.index]
        return action, ChunkMemory(history, actions, (memory.index + 1) % ta)

    return Controller(init=init, step=step)
