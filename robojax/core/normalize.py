"""Running observation statistics as a pure init/update pair (optax style), so the normalizer
lives inside the compiled train step and inside checkpoints."""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class RunningStats(NamedTuple):
    count: jax.Array
    mean: jax.Array
    m2: jax.Array  # sum of squared deviations from the mean


def init(shape: tuple[int, ...]) -> RunningStats:
    """Empty statistics for observations of `shape` (normalizing with them is the identity)."""
    return RunningStats(jnp.zeros(()), jnp.zeros(shape), jnp.zeros(shape))


def update(stats: RunningStats, batch: jax.Array) -> RunningStats:
    """Merge a batch (..., *shape) into the statistics (Chan et al.'s parallel update)."""
    shape = stats.mean.shape
    batch = batch.reshape((-1, *shape)).astype(jnp.float32)
    n = jnp.asarray(batch.shape[0], jnp.float32)
    batch_mean = batch.mean(axis=0)
    batch_m2 = ((batch - batch_mean) ** 2).sum(axis=0)
    count = stats.count + n
    delta = batch_mean - stats.mean
    mean = stats.mean + delta * n / count
    m2 = stats.m2 + batch_m2 + delta**2 * stats.count * n / count
    return RunningStats(count, mean, m2)


def std(stats: RunningStats, eps: float = 1e-6) -> jax.Array:
    var = jnp.where(stats.count > 1, stats.m2 / jnp.maximum(stats.count, 1.0) + eps, 1.0)
    return jnp.sqrt(var)


def normalize(stats: RunningStats, x: jax.Array, clip: float = 10.0) -> jax.Array:
    """(x - mean) / std, clipped to ±`clip`; the identity before any update."""
    return jnp.clip((x - stats.mean) / std(stats), -clip, clip)


def observations(cfg, stats: RunningStats, obs: jax.Array) -> jax.Array:
    """`normalize(stats, obs)` when the learner's `cfg.normalize_observations` is on, else
    `obs` unchanged."""
    return normalize(stats, obs) if cfg.normalize_observations else obs
