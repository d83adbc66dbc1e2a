"""Observation noise and action latency, as a robot has them, for training policies that keep
working there. Every MJX task takes them as env-config fields:

    --env-config obs_noise=0.05 "action_delay=(0, 2)"

`obs_noise` adds zero-mean Gaussian noise of that std (observation units) to every observation.
`action_delay=(low, high)` executes each action that many control steps late; each episode of
each env draws its delay uniformly from low..high (inclusive), so a policy trained with (0, 2)
meets every delay up to 2. Before an episode's first actions arrive, the actuators get the
middle of their range (action 0). Evaluate at a fixed delay with `(2, 2)`.

`observe_last_actions=n` ends each observation with the last n actions the policy sent
(oldest first, in [-1, 1]; zeros before an episode's first), which a robot's runtime knows as
well (`robojax.deploy.Policy` appends them itself). Under a delay of up to n steps the actions
still on their way to the actuators are then part of what the policy sees; without them a
delayed task is partially observed. `obs_noise` applies to them too: the runtime knows them
exactly, but a clean copy of its own actions beside noisy sensors is what a policy learns to
lean on first (pendulum-swingup with noise 0.05 and delay (0, 2): every seed stopped at a
partial swing, ~140 of ~780, with the actions kept clean; RESULTS.md 8b).

    --env-config obs_noise=0.05 "action_delay=(0, 2)" observe_last_actions=2

With all three at their defaults (0, (0, 0) and 0) nothing of this is compiled into the step.
"""

import jax
import jax.numpy as jnp

QUEUE, DELAY, LAST = "action_queue", "action_delay", "last_actions"
"""`State.extras` keys: the actions on their way (oldest first), the episode's delay, and the
last actions sent (oldest first) for the observation."""


def check(obs_noise: float, action_delay: tuple[int, int], observe_last_actions: int = 0
          ) -> None:
    """Refuse a negative noise, an empty or negative delay range, or a negative count of
    observed actions, naming the fix."""
    if obs_noise < 0:
        raise ValueError(f"obs_noise is a standard deviation, got {obs_noise}; give a value "
                         ">= 0, e.g. --env-config obs_noise=0.05")
    ints = all(isinstance(d, int) and not isinstance(d, bool) for d in action_delay)
    if len(action_delay) != 2 or not ints or not 0 <= action_delay[0] <= action_delay[1]:
        raise ValueError(f"action_delay is a range (low, high) of control steps with "
                         f"0 <= low <= high, got {action_delay}; e.g. --env-config "
                         "\"action_delay=(0, 2)\"")
    count = observe_last_actions
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError(f"observe_last_actions counts actions (an int >= 0), got {count!r}; "
                         "e.g. --env-config observe_last_actions=2 to match "
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


def start_last_actions(count: int, action_size: int) -> dict:
    """The extras of a fresh episode when the observation holds the last `count` actions."""
    return {LAST: jnp.zeros((count, action_size), jnp.float32)}


def remember(extras: dict, action: jax.Array) -> dict:
    """`extras` with `action` (the one the policy sent this step) as the newest last action."""
    return {**extras, LAST: jnp.concatenate([extras[LAST][1:], action[None]])}


def with_last_actions(obs: jax.Array, extras: dict) -> jax.Array:
    """The task's observation followed by the last actions, oldest first, flattened."""
    return jnp.concatenate([obs, extras[LAST].reshape(-1)])
