"""The function every format exports: a `PolicyProgram` with the actuator scaling appended.

    actions, command = policy(obs, *noise)

`obs` is the raw observation history (batch, To, obs_dim); each noise input is named
`noise_<name>` and comes in sorted name order; `actions` (batch, Ta, action_dim) are in
[-1, 1] and `command` is the same in actuator units, as the env maps them:
low + (action + 1) / 2 * (high - low).

A program with a per-step `correction` exports it as a second function of its own,

    actions, command = correction(obs, planned)

on one step's raw observation (batch, obs_dim) and the planned action due then
(batch, action_dim), with the same scaling.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from robojax.core.program import PolicyProgram
from robojax.deploy.contract import ACTIONS, COMMAND, NOISE_PREFIX, OBS, PLANNED


class Signature(NamedTuple):
    """Input and output names with their per-sample shapes (the batch dimension left out)."""

    inputs: dict[str, tuple[int, ...]]
    outputs: dict[str, tuple[int, ...]]


def signature(program: PolicyProgram, obs_size: int, action_size: int) -> Signature:
    inputs = {OBS: (program.n_obs_steps, obs_size)}
    inputs.update({NOISE_PREFIX + name: tuple(program.noise[name].shape)
                   for name in sorted(program.noise)})
    chunk = (program.n_action_steps, action_size)
    return Signature(inputs, {ACTIONS: chunk, COMMAND: chunk})


def correction_signature(obs_size: int, action_size: int) -> Signature:
    return Signature({OBS: (obs_size,), PLANNED: (action_size,)},
                     {ACTIONS: (action_size,), COMMAND: (action_size,)})


def policy_function(program: PolicyProgram, ctrl_low: np.ndarray, ctrl_high: np.ndarray):
    """`policy(obs, *noise) -> (actions, command)`, closed over the trained weights."""
    names = sorted(program.noise)
    low, high = jnp.asarray(ctrl_low, jnp.float32), jnp.asarray(ctrl_high, jnp.float32)

    def policy(obs: jax.Array, *noise: jax.Array) -> tuple[jax.Array, jax.Array]:
        return _scaled(program.fn(obs, dict(zip(names, noise, strict=True))), low, high)

    return policy


def correction_function(program: PolicyProgram, ctrl_low: np.ndarray, ctrl_high: np.ndarray):
    """`correction(obs, planned) -> (actions, command)` of a program with a `correction`."""
    low, high = jnp.asarray(ctrl_low, jnp.float32), jnp.asarray(ctrl_high, jnp.float32)

    def correction(obs: jax.Array, planned: jax.Array) -> tuple[jax.Array, jax.Array]:
        return _scaled(program.correction(obs, planned), low, high)

    return correction


def _scaled(actions: jax.Array, low: jax.Array, high: jax.Array) -> tuple[jax.Array, jax.Array]:
    actions = jnp.clip(actions, -1.0, 1.0).astype(jnp.float32)
    return actions, low + (actions + 1.0) * 0.5 * (high - low)
