"""Observation noise and action latency, as a robot has them, for training policies that keep
working there. Every MJX task takes them as env-config fields:

    --env-config obs_noise=0.05 "action_delay=(0, 2)"

`obs_noise` adds zero-mean Gaussian noise of that std (observation units) to every observation.
`action_delay=(low, high)` executes each action that many control steps late; each episode of
each env draws its delay uniformly from low..high (inclusive), so a policy trained with (0, 2)
meets every delay up to 2. Before an episode's first actions arrive, the actuators get the
middle of their range (action 0). Evaluate at a fixed delay with `(2, 2)`.

With both at their defaults (0 and (0, 0)) nothing of this is compiled into the env's step.
"""

import jax
import jax.numpy as jnp

QUEUE, DELAY = "action_queue", "action_delay"
"""`State.extras` keys: the last actions (oldest first) and the episode's delay."""


def check(obs_noise: float, action_delay: tuple[int, int]) -> None:
    """Refuse a negative noise or an empty or negative delay range, naming the fix."""
    if obs_noise < 0:
        raise ValueError(f"obs_noise is a standard deviation, got {obs_noise}; give a value "
                         ">= 0, e.g. --env-config obs_noise=0.05")
    ints = all(isinstance(d, int) and not isinstance(d, bool) for d in action_delay)
    if len(action_delay) != 2 or not ints or not 0 <= action_delay[0] <= action_delay[1]:
        raise ValueError(f"action_delay is a range (low, high) of control steps with "
                         f"0 <= low <= high, got {action_delay}; e.g. --env-config "
                         "\"action_delay=(0, 2)\"")


def start_queue(key: jax.Array, action_delay: tuple[int, int], action_size: int) -> dict:
    """The extras of a fresh episode: an empty action queue and this episode's delay."""
    low, high = action_delay
    delay = jax.random.randint(key, (), low, high + 1)
    return {QUEUE: jnp.zeros((high + 1, action_size), jnp.float32), DELAY: delay}


def delay(extras: dict, action: jax.Array) -> tuple[jax.Array, dict]:
    """(the action executed now, the updated extras): `action` joins the queue and the one
    sent `delay` steps ago comes out."""
    queue = jnp.concatenate([extras[QUEUE][1:], action[None]])
    executed = queue[queue.shape[0] - 1 - extras[DELAY]]
    return executed, {**extras, QUEUE: queue}


def add_noise(obs: jax.Array, key: jax.Array, std: float) -> jax.Array:
    return obs + std * jax.random.normal(jax.random.fold_in(key, 0x0B5), obs.shape, obs.dtype)
