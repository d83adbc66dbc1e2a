"""Spread a batch of envs across `jax.devices()`; parameters stay replicated.

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

    def place(x):
        if not hasattr(x, "ndim") or x.ndim == 0 or x.shape[0] % len(devices):
            return jax.device_put(x, NamedSharding(mesh, PartitionSpec()))
        return jax.device_put(x, NamedSharding(mesh, PartitionSpec("batch")))

    return jax.tree.map(place, tree)
