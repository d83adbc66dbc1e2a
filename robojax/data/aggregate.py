"""Takeover segments gathered on device for HG-DAgger: each rollout block keeps the rows where a
human held an env, and training windows are cut from each held stretch as from a
demonstration episode (`robojax.data.sampler.window`), its edges repeated.

    agg = init(capacity, obs_size, action_size, block=rollout_length * num_envs)
    agg = add_rollout(agg, obs, actions, held, episode_start)   # (T, N, ...) time-major
    batch = sample_batch(agg, key, batch_size, n_obs_steps, horizon)

A rollout's rows are laid out env by env, so an env's held stretch is contiguous; a stretch ends
where the human hands back, where the env's episode restarts, or at the block's end. Blocks are
written round a ring whose capacity is a whole number of blocks.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from robojax.data.sampler import DemoArrays, window


class Aggregate(NamedTuple):
    obs: jax.Array  # (C, obs_size)
    actions: jax.Array  # (C, action_size)
    start: jax.Array  # (C,) first row of the row's held stretch
    end: jax.Array  # (C,) one past its last row
    held: jax.Array  # (C,) a row a window may centre on
    write: jax.Array  # () the next block's first row
    size: jax.Array  # () held rows stored


def init(capacity: int, obs_size: int, action_size: int, block: int) -> Aggregate:
    if capacity < block or capacity % block:
        raise ValueError(f"the aggregate's capacity ({capacity}) must be a positive multiple of "
                         f"one rollout's transitions ({block}); raise it to "
                         f"{max(1, -(-capacity // block)) * block}.")
    rows = jnp.arange(capacity, dtype=jnp.int32)
    return Aggregate(obs=jnp.zeros((capacity, obs_size)),
                     actions=jnp.zeros((capacity, action_size)), start=rows, end=rows + 1,
                     held=jnp.zeros(capacity, bool), write=jnp.zeros((), jnp.int32),
                     size=jnp.zeros((), jnp.int32))


def segments(held: jax.Array, breaks: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(start, end) of each held row's stretch over flat rows (R,); a stretch cannot span a
    row of `breaks` (the first row of an env, or of an episode) and what is before it. The
    values of rows not held mean nothing."""
    rows = jnp.arange(held.shape[0], dtype=jnp.int32)
    previous = jnp.concatenate([jnp.zeros(1, bool), held[:-1]])
    opens = held & (~previous | breaks)
    closes = held & ~jnp.concatenate([held[1:] & ~breaks[1:], jnp.zeros(1, bool)])
    start = jax.lax.cummax(jnp.where(opens, rows, 0))
    end = jax.lax.cummin(jnp.where(closes, rows + 1, held.shape[0]), reverse=True)
    return start, end


def add_rollout(agg: Aggregate, obs: jax.Array, actions: jax.Array, held: jax.Array,
                episode_start: jax.Array) -> Aggregate:
    """Store one rollout, time-major (T, N, ...), over the oldest block."""
    steps, num_envs = held.shape
    flat = lambda x: jnp.swapaxes(x, 0, 1).reshape(steps * num_envs, *x.shape[2:])  # noqa: E731
    first_of_env = jnp.zeros((num_envs, steps), bool).at[:, 0].set(True).reshape(-1)
    held, breaks = flat(held), flat(episode_start) | first_of_env
    start, end = segments(held, breaks)
    at = agg.write
    put = lambda buffer, value: jax.lax.dynamic_update_slice_in_dim(  # noqa: E731
        buffer, value, at, axis=0)
    dropped = jax.lax.dynamic_slice_in_dim(agg.held, at, held.shape[0]).sum()
    return Aggregate(obs=put(agg.obs, flat(obs)), actions=put(agg.actions, flat(actions)),
                     start=put(agg.start, start + at), end=put(agg.end, end + at),
                     held=put(agg.held, held),
                     write=(at + held.shape[0]) % agg.held.shape[0],
                     size=agg.size - dropped.astype(jnp.int32) + held.sum().astype(jnp.int32))


def sample_batch(agg: Aggregate, key: jax.Array, batch_size: int, n_obs_steps: int,
                 horizon: int) -> dict:
    """`batch_size` windows centred on held rows drawn uniformly (any rows while none is
    held: the caller weighs such a batch by zero)."""
    weights = jnp.where(agg.size > 0, agg.held.astype(jnp.float32), 1.0)
    idx = jax.random.choice(key, agg.held.shape[0], (batch_size,), p=weights / weights.sum())
    rows = DemoArrays(agg.obs, agg.actions, jnp.arange(agg.held.shape[0]), agg.start, agg.end)
    return jax.vmap(lambda i: window(rows, i, n_obs_steps, horizon))(idx)
