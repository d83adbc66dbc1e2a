"""Spread a batch of envs across `jax.devices()` (of every process); parameters are replicated.

XLA's SPMD partitioner then runs each device's share of the envs and inserts the collectives
the update needs, inside the same compiled program (PPO). A learner whose data must stay on
the device that collected it (an off-policy learner's replay shard) runs its step per device
under `jax.shard_map` instead, and says which collectives it needs through `Devices`.
"""

import dataclasses

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "batch"


def batch_mesh() -> Mesh:
    return Mesh(np.array(jax.devices()), (AXIS,))


def batch_spec(x) -> PartitionSpec:
    """How `shard_env_batch` places a leaf: as `split_spec`, but a zero-size leaf replicated
    (as the compiled step returns it)."""
    return PartitionSpec() if getattr(x, "size", None) == 0 else split_spec(x)


def shard_env_batch(tree):
    """Place every leaf's leading (env) axis across devices; a no-op on one device."""
    if jax.device_count() == 1:
        return tree
    mesh = batch_mesh()
    return jax.tree.map(lambda x: jax.device_put(x, NamedSharding(mesh, batch_spec(x))), tree)


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


def split_spec(x) -> PartitionSpec:
    """Split along the leading axis wherever it divides over the devices, zero-size leaves
    included: how a `jax.shard_map` step sees a batch `shard_env_batch` placed (moving a
    zero-size leaf costs nothing; XLA returns them replicated)."""
    if not hasattr(x, "ndim") or x.ndim == 0 or x.shape[0] % jax.device_count():
        return PartitionSpec()
    return PartitionSpec(AXIS)


@dataclasses.dataclass(frozen=True)
class Devices:
    """The collectives of a step that runs once per device under `jax.shard_map` over the
    `AXIS` of `batch_mesh()`, each device holding `1 / count` of the env batch. With the
    default (one device, no axis) every method is the identity, so the same step code runs
    unsharded."""

    count: int = 1
    axis: str | None = None

    @classmethod
    def all(cls) -> "Devices":
        return cls(jax.device_count(), AXIS)

    def key(self, key: jax.Array) -> jax.Array:
        """A key of this device's own (its envs and its batches draw their own numbers)."""
        return key if self.axis is None else jax.random.fold_in(key, jax.lax.axis_index(self.axis))

    def mean(self, tree):
        """The mean over devices (gradients, metrics): the same value on every device."""
        return tree if self.axis is None else jax.lax.pmean(tree, self.axis)

    def gather(self, tree, axis: int = 0):
        """Every device's part of the env batch, concatenated in device order along `axis`."""
        if self.axis is None:
            return tree
        return jax.tree.map(lambda x: jax.lax.all_gather(x, self.axis, axis=axis, tiled=True),
                            tree)

    def local(self, tree):
        """This device's part of a whole env batch (the inverse of `gather` along axis 0)."""
        if self.axis is None:
            return tree
        index = jax.lax.axis_index(self.axis)

        def part(x):
            size = x.shape[0] // self.count
            return jax.lax.dynamic_slice_in_dim(x, index * size, size)

        return jax.tree.map(part, tree)


ONE_DEVICE = Devices()
"""The step run whole, on one device: every `Devices` method is the identity."""
