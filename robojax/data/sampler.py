"""Training windows cut from demonstrations on device: an observation history and an action
chunk around each demonstrated step, padded with the episode's edge values."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from robojax.data.demos import Demos


class DemoArrays(NamedTuple):
    """Demonstrations as device arrays; window i is centred on step `current[i]`, which lies
    in the episode `[start[i], end[i])`."""

    obs: jax.Array
    actions: jax.Array
    current: jax.Array
    start: jax.Array
    end: jax.Array


def to_device(demos: Demos) -> DemoArrays:
    lengths = demos.ends - demos.starts
    starts = jnp.repeat(jnp.asarray(demos.starts, jnp.int32), lengths)
    ends = jnp.repeat(jnp.asarray(demos.ends, jnp.int32), lengths)
    return DemoArrays(obs=jnp.asarray(demos.obs, jnp.float32),
                      actions=jnp.asarray(demos.actions, jnp.float32),
                      current=jnp.arange(demos.num_steps, dtype=jnp.int32), start=starts,
                      end=ends)


def window(data: DemoArrays, i: jax.Array, n_obs_steps: int, horizon: int) -> dict:
    """Window i: obs of steps t-To+1..t (To, obs_dim) and actions of steps t-To+1..t-To+Tp
    (Tp, act_dim), both clamped to the episode so edges repeat the first/last value."""
    t, start, end = data.current[i], data.start[i], data.end[i]
    first = t - n_obs_steps + 1
    obs_idx = jnp.clip(first + jnp.arange(n_obs_steps), start, end - 1)
    act_idx = jnp.clip(first + jnp.arange(horizon), start, end - 1)
    return {"obs": data.obs[obs_idx], "actions": data.actions[act_idx]}


def sample_batch(data: DemoArrays, key: jax.Array, batch_size: int, n_obs_steps: int,
                 horizon: int) -> dict:
    """`batch_size` windows drawn uniformly over all demonstrated steps."""
    idx = jax.random.randint(key, (batch_size,), 0, data.current.shape[0])
    return jax.vmap(lambda i: window(data, i, n_obs_steps, horizon))(idx)
