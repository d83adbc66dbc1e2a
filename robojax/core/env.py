"""The `Env` contract (pure `reset`/`step`) and the `Wrapper` base that stacks on it."""

import abc
from typing import Any

import jax

from robojax.core.types import ArraySpec, State


class Env(abc.ABC):
    """A pure, jit- and vmap-able environment: `reset(key) -> State`, `step(state, a) -> State`."""

    @abc.abstractmethod
    def reset(self, key: jax.Array) -> State:
        """Start an episode from `key`."""

    @abc.abstractmethod
    def step(self, state: State, action: jax.Array) -> State:
        """Advance one control step."""

    @property
    @abc.abstractmethod
    def observation_spec(self) -> ArraySpec:
        """Spec of one env's observation."""

    @property
    @abc.abstractmethod
    def action_spec(self) -> ArraySpec:
        """Spec of one env's action; actions live in [minimum, maximum]."""

    @property
    def batch_size(self) -> int | None:
        """Number of envs stepped together, None for a single env."""
        return None

    @property
    def unwrapped(self) -> "Env":
        return self

    def physics(self, data: Any) -> Any:
        """The physics data (qpos, qvel, ...) inside `State.data`; adapters unwrap theirs."""
        return data

    @property
    def name(self) -> str:
        return type(self).__name__


def display_name(env: Env) -> str:
    """The name a user gives for `env`: its registry name (`push-t`), else its class name."""
    return getattr(env, "registry_name", None) or env.name


class Wrapper(Env):
    """Delegates everything to `env`; subclasses override what they change."""

    def __init__(self, env: Env):
        self.env = env

    def reset(self, key: jax.Array) -> State:
        return self.env.reset(key)

    def step(self, state: State, action: jax.Array) -> State:
        return self.env.step(state, action)

    @property
    def observation_spec(self) -> ArraySpec:
        return self.env.observation_spec

    @property
    def action_spec(self) -> ArraySpec:
        return self.env.action_spec

    @property
    def batch_size(self) -> int | None:
        return self.env.batch_size

    @property
    def unwrapped(self) -> Env:
        return self.env.unwrapped

    @property
    def name(self) -> str:
        return self.env.name

    def __getattr__(self, name: str) -> Any:
        if name == "env":  # not yet set during unpickling: avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.env, name)
