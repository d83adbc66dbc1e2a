"""The simulated human inside a training rollout, with the task's scripted expert
(`envs.solver`) as their hands: `takeover` is one step of it over the env batch."""

from collections.abc import Callable

import jax

from robojax import envs
from robojax.core.env import Env
from robojax.core.sharding import ONE_DEVICE, Devices
from robojax.core.types import State
from robojax.hil import human


def expert_policy(env: Env) -> Callable[[State], jax.Array]:
    """The task's scripted expert over a batch of states: `(B, ...) states -> (B, A)`."""
    task = env.unwrapped
    name = getattr(task, "registry_name", None)
    if name is None:
        raise ValueError("a simulated human acts with a registered task's scripted expert; "
                         f"{type(task).__name__} was not built by robojax.envs.make.")
    solve = envs.solver(name)  # raises, naming the tasks that have one
    batched = jax.vmap(lambda state: solve(task, state))
    # The wrappers' extras (autoreset's cache and clock) are not per-env states: left out.
    return lambda states: batched(states.replace(extras={}))


def takeover(cfg: human.HumanConfig, expert: Callable, hstate: human.HumanState,
             env_state: State, policy_action: jax.Array, key: jax.Array, dt: float,
             value: Callable[[jax.Array], jax.Array] | None = None,
             devices: Devices = ONE_DEVICE, env_steps: jax.Array | None = None):
    """(human state, takeover mask, executed action, metrics) for one step of the batch; an
    env whose step counter is 0 has just begun an episode.

    The stall rule reads the task's last reward as its progress (a dense reward rises as the
    task advances), or the env metric `cfg.progress_metric`. The value rule compares
    `value(actions)` (B,) at the policy's and at the expert's actions (the learner's critic,
    with HIL). `env_steps`, the run's env steps so far, moves a `trusted_threshold`.

    With the env batch split over `devices`, each device's part of what the human sees is
    gathered, so that one human watches (and shares their attention and budget over) every
    env: the human's state is the whole batch's, the same on every device, and the mask and
    actions returned are this device's part."""
    expert_action = expert(env_state)
    signals = {"episode_start": env_state.step == 0}
    if cfg.rule == "stall":
        signals["progress"] = progress(cfg, env_state)
    if cfg.rule == "value":
        if value is None:
            raise ValueError("the value rule needs a value function of the actions.")
        signals |= {"q_policy": value(policy_action), "q_expert": value(expert_action)}
    policy_action, expert_action, signals = devices.gather((policy_action, expert_action,
                                                            signals))
    new, mask, action = human.act(cfg, hstate, policy_action, expert_action, key, **signals,
                                  env_steps=env_steps)
    return new, devices.local(mask), devices.local(action), human.metrics(hstate, new, dt)


def progress(cfg: human.HumanConfig, env_state: State) -> jax.Array:
    """(B,) what the stall rule watches: the env metric `cfg.progress_metric`, or the reward."""
    if cfg.progress_metric is None:
        return env_state.reward
    if cfg.progress_metric not in env_state.metrics:
        raise ValueError(f"human.progress_metric {cfg.progress_metric!r} is not a metric of "
                         f"this env; it has {sorted(env_state.metrics)}.")
    return env_state.metrics[cfg.progress_metric]
