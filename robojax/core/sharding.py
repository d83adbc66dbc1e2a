"""Spread a batch of envs across `jax.devices()` (of every process); parameters are replicated.

XLA's SPMD partitioner then runs each device's share of the envs and inserts the collectives
the update needs, inside the same compiled program.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def batch_mesh() -> Mesh:
    return Mesh(np.array(jax.devices()), ("batch",))


def shard_env_batch(tree):
    """Place every leaf's leading (env) axis across devices; a no-op on one device."""
    devices = jax.devices()
    if len(devices) == 1:
        return tree
    mesh = batch_mesh()

    def place(x):  # zero-size leaves replicated, as the compiled step returns them
        if not hasattr(x, "ndim") or x.ndim == 0 or x.size == 0 or x.shape[0] % len(devices):
            return jax.device_put(x, NamedSharding(mesh, PartitionSpec()))
        return jax.device_put(x, NamedSharding(mesh, PartitionSpec("batch")))

    return jax.tree.map(place, tree)


def place_on_mesh(tree):
    """`tree` with every leaf on all devices: leaves already spread over them (the env batch of
    `shard_env_batch`) stay, the others (parameters, optimizer, keys) are replicated, as the
    compiled step returns them, so the step compiles once. A no-op on one device. In a
    multi-process run each process must hold the same values, as after the same seeded init."""
    devices = set(jax.devices())
    if len(devices) == 1:
        return tree
    replicated = NamedSharding(batch_mesh(), PartitionSpec())

    def place(x):
        if isinstance(x, jax.Array) and set(x.sharding.device_set) == devices:
            return x
        return jax.device_put(x, replicated) if hasattr(x, "shape") else x

    return jax.tree.map(place, tree)
