"""The pytrees every env and wrapper exchanges: `State` and the observation/action specs."""

from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from flax import struct


@struct.dataclass
class State:
    """One env's (or a batch of envs') state after a reset or a step.

    `done` is true when the episode ended, for any reason; `truncated` is true when it ended only
    because time ran out, so learners bootstrap from the final observation instead of zero.
    `extras` carries what wrappers need between steps, keyed by the wrapper that owns it.
    """

    data: Any
    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    truncated: jax.Array
    step: jax.Array
    key: jax.Array
    metrics: dict[str, jax.Array]
    extras: dict[str, Any]

    @property
    def terminated(self) -> jax.Array:
        """True where the episode ended by a terminal state, not by a time limit."""
        return self.done & ~self.truncated


@dataclass(frozen=True)
class ArraySpec:
    """Shape, dtype and bounds of one (unbatched) observation or action."""

    shape: tuple[int, ...]
    dtype: Any = np.float32
    minimum: float | None = None
    maximum: float | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))
