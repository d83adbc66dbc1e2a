"""`fast`: a task of a few arithmetic ops, no physics, for tests of what does not depend on the
simulator (processes, devices, checkpoints) and would otherwise spend their time compiling
MJX. Importing this module registers it, so a subprocess trains it as
`robojax train --env fast_env:fast` with this folder on its PYTHONPATH.

A point on a line: the action (in [-1, 1]) is its velocity, the reward is 1 minus its
squared distance from the origin, and it starts uniformly in [-1, 1].
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from robojax import envs
from robojax.core.env import Env
from robojax.core.types import ArraySpec, State


@dataclasses.dataclass(frozen=True)
class FastConfig:
    episode_length: int = 100
    dt: float = 0.1


class Fast(Env):
    def __init__(self, config: FastConfig):
        self.config = config

    @property
    def dt(self) -> float:
        return self.config.dt

    @property
    def observation_spec(self) -> ArraySpec:
        return ArraySpec((2,), np.float32)

    @property
    def action_spec(self) -> ArraySpec:
        return ArraySpec((1,), np.float32, -1.0, 1.0)

    def reset(self, key: jax.Array) -> State:
        key, start = jax.random.split(key)
        x = jax.random.uniform(start, (), minval=-1.0, maxval=1.0)
        zero = jnp.zeros(())
        return State(data=x, obs=jnp.stack([x, zero]), reward=zero, done=zero.astype(bool),
                     truncated=zero.astype(bool), step=jnp.zeros((), jnp.int32), key=key,
                     metrics={"reward/near": zero}, extras={})

    def step(self, state: State, action: jax.Array) -> State:
        velocity = jnp.clip(action[0], -1.0, 1.0)
        x = state.data + self.config.dt * velocity
        reward = 1.0 - x**2
        return state.replace(data=x, obs=jnp.stack([x, velocity]), reward=reward,
                             step=state.step + 1, metrics={"reward/near": reward})


envs.register("fast", Fast, FastConfig)
