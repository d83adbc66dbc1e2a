"""Run foreign envs with robojax trainers, and show robojax envs to other libraries.

- `BraxEnvAdapter`: any `brax.envs.Env` (e.g. `brax.envs.get_environment("inverted_pendulum")`).
- `PlaygroundEnvAdapter`: any MuJoCo Playground `MjxEnv` (e.g. `CartpoleBalance`).

`robojax.envs.make("playground:CartpoleBalance")` and `robojax.envs.make("brax:hopper")` build
them by name.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from robojax.core.env import Env
from robojax.core.types import ArraySpec, State


class _ForeignEnvAdapter(Env):
    """Shared wrapping of Brax-style states (obs, reward, done, metrics) into `State`."""

    def __init__(self, env: Any, episode_length: int = 1000):
        self.foreign = env
        self.config = _AdapterConfig(episode_length)
        obs = jax.eval_shape(env.reset, jax.random.PRNGKey(0)).obs
        if isinstance(obs, dict):
            raise TypeError(f"{type(env).__name__} has dict observations {sorted(obs)}; robojax "
                            "trainers take a flat array. Wrap the env to return one array.")
        self._obs_spec = ArraySpec(tuple(obs.shape), np.float32)
        self._act_spec = ArraySpec((env.action_size,), np.float32, -1.0, 1.0)

    @property
    def name(self) -> str:
        return type(self.foreign).__name__

    @property
    def observation_spec(self) -> ArraySpec:
        return self._obs_spec

    @property
    def action_spec(self) -> ArraySpec:
        return self._act_spec

    def _wrap(self, foreign_state, key, step) -> State:
        done = foreign_state.done > 0.5
        return State(
            data=foreign_state, obs=foreign_state.obs, reward=jnp.asarray(foreign_state.reward,
                                                                          jnp.float32),
            done=done, truncated=jnp.array(False), step=step, key=key,
            metrics=dict(foreign_state.metrics), extras={})

    def reset(self, key: jax.Array) -> State:
        key, key_reset = jax.random.split(key)
        return self._wrap(self.foreign.reset(key_reset), key, jnp.zeros((), jnp.int32))

    def step(self, state: State, action: jax.Array) -> State:
        from robojax.core.mjx_env import check_action

        action = check_action(action, self._act_spec)
        foreign_state = self.foreign.step(state.data, jnp.clip(action, -1.0, 1.0))
        return self._wrap(foreign_state, state.key, state.step + 1)

    def render(self, states, *, index: int | None = None, width: int = 320, height: int = 240,
               camera: int | str = -1) -> list[np.ndarray]:
        from robojax.core.mjx_env import _trajectory_arrays
        from robojax.io.video import render_qpos

        physics = ([self.physics(s.data) for s in states] if isinstance(states, list | tuple)
                   else self.physics(states.data))
        qpos, mocap = _trajectory_arrays(physics, index)
        return render_qpos(self.mj_model, qpos, mocap, width=width, height=height, camera=camera)


class _AdapterConfig:
    def __init__(self, episode_length: int):
        self.episode_length = episode_length


class BraxEnvAdapter(_ForeignEnvAdapter):
    """A `brax.envs.Env` as a robojax `Env` (its own time limits and resets are not used)."""

    @property
    def mj_model(self):
        return self.foreign.sys.mj_model

    @property
    def n_substeps(self) -> int:
        return int(getattr(self.foreign, "_n_frames", 1))

    def physics(self, data: Any) -> Any:
        return data.pipeline_state


class PlaygroundEnvAdapter(_ForeignEnvAdapter):
    """A MuJoCo Playground `MjxEnv` as a robojax `Env`."""

    @property
    def mj_model(self):
        return self.foreign.mj_model

    @property
    def mjx_model(self):
        return self.foreign.mjx_model

    @property
    def n_substeps(self) -> int:
        return int(self.foreign.n_substeps)

    def physics(self, data: Any) -> Any:
        return data.data


def adapt(env: Any, episode_length: int | None = None) -> Env:
    """Wrap a Brax or Playground env; robojax envs are returned unchanged."""
    if isinstance(env, Env):
        return env
    module = type(env).__module__
    if module.startswith("mujoco_playground"):
        length = episode_length or 1000
        return PlaygroundEnvAdapter(env, length)
    if module.startswith("brax"):
        return BraxEnvAdapter(env, episode_length or 1000)
    raise TypeError(f"cannot adapt {type(env).__name__} from {module}: pass a robojax Env, a "
                    "brax.envs.Env or a mujoco_playground MjxEnv.")
