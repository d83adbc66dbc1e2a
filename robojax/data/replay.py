"""Replay buffers as pytrees of preallocated device arrays: pure `init` / `add` / `sample`
(optax style), so a buffer lives inside the compiled train step and inside checkpoints.

A buffer is a ring: `add` writes a batch at `position` and wraps around, overwriting the oldest
transitions once `size` reaches the capacity. Several named buffers (online experience,
demonstrations, interventions) are drawn from together by `sample_mixed`, each supplying a fixed
share of every batch (RLPD's symmetric sampling: half online, half demonstrations).

Transitions are dicts `obs`, `action`, `reward`, `discount`, `next_obs`. `discount` is 0 where
the episode terminated and 1 where it went on or was only truncated by a time limit, so a
learner bootstraps through time limits from the true `next_obs`.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class Buffer:
    """Every leaf of `data` is (capacity, ...); slots `[0, size)` hold transitions."""

    data: Any
    position: jax.Array  # the next slot `add` writes
    size: jax.Array  # filled slots, at most the capacity

    @property
    def capacity(self) -> int:
        return _capacity(self.data)


def _capacity(data: Any) -> int:
    return jax.tree.leaves(data)[0].shape[0]


def init(example: Any, capacity: int) -> Buffer:
    """An empty buffer of `capacity` slots for transitions shaped like `example` (one
    transition, no batch axis)."""
    if capacity < 1:
        raise ValueError(f"a replay buffer needs capacity >= 1, got {capacity}.")
    data = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype),
                        example)
    return Buffer(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def full(data: Any) -> Buffer:
    """A buffer holding exactly `data` (leaves (n, ...)): demonstrations, fixed datasets."""
    n = _capacity(data)
    return Buffer(jax.tree.map(jnp.asarray, data), jnp.zeros((), jnp.int32),
                  jnp.asarray(n, jnp.int32))


def add(buffer: Buffer, batch: Any) -> Buffer:
    """`buffer` with the transitions of `batch` (leaves (n, ...)) written at its position."""
    capacity, n = _capacity(buffer.data), _capacity(batch)
    if n > capacity:
        raise ValueError(f"cannot add {n} transitions at once to a buffer of capacity "
                         f"{capacity}; raise the capacity above one step of every env.")
    slots = (buffer.position + jnp.arange(n)) % capacity
    data = jax.tree.map(lambda d, x: d.at[slots].set(x.astype(d.dtype)), buffer.data, batch)
    return Buffer(data, (buffer.position + n) % capacity,
                  jnp.minimum(buffer.size + n, capacity))


def add_where(buffer: Buffer, batch: Any, mask: jax.Array) -> Buffer:
    """`buffer` with the transitions of `batch` whose `mask` is True written, in order, at its
    position (e.g. only the steps a human took over)."""
    capacity = _capacity(buffer.data)
    if _capacity(batch) > capacity:
        raise ValueError(f"cannot add {_capacity(batch)} transitions at once to a buffer of "
                         f"capacity {capacity}; raise the capacity above one step of every env.")
    offset = jnp.cumsum(mask) - 1
    slots = jnp.where(mask, (buffer.position + offset) % capacity, capacity)  # capacity: dropped
    data = jax.tree.map(lambda d, x: d.at[slots].set(x.astype(d.dtype), mode="drop"),
                        buffer.data, batch)
    n = mask.sum().astype(jnp.int32)
    return Buffer(data, (buffer.position + n) % capacity, jnp.minimum(buffer.size + n, capacity))


def sample(buffer: Buffer, key: jax.Array, batch_size: int) -> Any:
    """`batch_size` transitions drawn uniformly, with replacement, from the filled slots (an
    empty buffer returns its zero-filled first slot)."""
    index = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda d: d[index], buffer.data)


def shares(fractions: dict[str, float], batch_size: int) -> dict[str, int]:
    """How many of `batch_size` samples each buffer supplies: its fraction, rounded, the
    remainder to the first buffer; every count >= 0 and they sum to `batch_size`."""
    if not fractions:
        raise ValueError("sample_mixed needs at least one buffer.")
    if any(f < 0 for f in fractions.values()) or not np.isclose(sum(fractions.values()), 1.0):
        raise ValueError(f"buffer fractions must be >= 0 and sum to 1, got {fractions}.")
    counts = {name: int(round(f * batch_size)) for name, f in fractions.items()}
    first = next(iter(counts))
    counts[first] += batch_size - sum(counts.values())
    if counts[first] < 0:  # rounding up the others overshot: take it back from the largest
        counts[first] = 0
        largest = max(counts, key=counts.get)
        counts[largest] -= sum(counts.values()) - batch_size
    return counts


def sample_mixed(buffers: dict[str, Buffer], fractions: dict[str, float], key: jax.Array,
                 batch_size: int, *, fields: tuple[str, ...] | None = None,
                 fallback: str | None = None) -> Any:
    """One batch of `batch_size` with each named buffer's share (`shares`), concatenated in
    the order of `fractions`. `fields` keeps those keys of each buffer's transitions (buffers
    may store more); with `fallback`, an empty buffer's share is drawn from that one instead
    (e.g. interventions before the first takeover)."""
    parts = []
    for i, (name, count) in enumerate(shares(fractions, batch_size).items()):
        if not count:
            continue
        drawn = _fields(sample(buffers[name], jax.random.fold_in(key, i), count), fields)
        if fallback is not None and name != fallback:
            spare = _fields(sample(buffers[fallback], jax.random.fold_in(key, 1000 + i), count),
                            fields)
            filled = buffers[name].size > 0
            drawn = jax.tree.map(lambda a, b, f=filled: jnp.where(f, a, b), drawn, spare)
        parts.append(drawn)
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)


def _fields(transitions: dict, fields: tuple[str, ...] | None) -> dict:
    return transitions if fields is None else {k: transitions[k] for k in fields}


def transitions_from_episodes(obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                              terminals: np.ndarray, starts: np.ndarray, ends: np.ndarray
                              ) -> dict[str, np.ndarray]:
    """Transitions of recorded episodes (concatenated along time, episode i spanning
    `starts[i]:ends[i]`). Step t's next observation is step t + 1's; an episode's last step is
    kept where it terminated (`terminals`, discount 0) and dropped where it was cut by a time
    limit (its next observation was not recorded). `last` flags each episode's last kept
    transition (what n-step returns stop at)."""
    keep, next_index, last = [], [], []
    for s, e in zip(starts, ends, strict=True):
        keep.extend(range(s, e - 1))
        next_index.extend(range(s + 1, e))
        if terminals[e - 1]:
            keep.append(e - 1)
            next_index.append(e - 1)  # never bootstrapped from: discount 0
        added = len(keep) - len(last)
        last.extend([False] * (added - 1) + [True] if added else [])
    keep, next_index = np.asarray(keep, np.int64), np.asarray(next_index, np.int64)
    return {"obs": obs[keep].astype(np.float32), "action": actions[keep].astype(np.float32),
            "reward": rewards[keep].astype(np.float32),
            "discount": 1.0 - terminals[keep].astype(np.float32),
            "next_obs": obs[next_index].astype(np.float32), "last": np.asarray(last, bool)}
