"""A Gymnasium `VectorEnv` view of a robojax env, for code written against Gymnasium.

Steps run compiled on the accelerator; arrays cross to NumPy at the boundary. Resets happen in
the same step an episode ends (Gymnasium's SAME_STEP autoreset mode): the returned observation
is the new episode's and `info["final_obs"]` holds the last one of the old episode.
"""

import jax
import numpy as np

from robojax.core.env import Env
from robojax.core.wrappers import wrap_for_training

try:
    import gymnasium
    from gymnasium.vector import AutoresetMode, VectorEnv
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Gymnasium view needs gymnasium: pip install 'robojax[gymnasium]'") \
        from err


class GymVectorEnv(VectorEnv):
    """`num_envs` copies of `env` behind the Gymnasium vector API."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, env: Env, num_envs: int, *, episode_length: int | None = None,
                 seed: int = 0):
        self.env = wrap_for_training(env, num_envs, episode_length=episode_length)
        self.num_envs = num_envs
        obs_shape, act_shape = env.observation_spec.shape, env.action_spec.shape
        self.single_observation_space = gymnasium.spaces.Box(-np.inf, np.inf, obs_shape,
                                                             np.float32)
        self.single_action_space = gymnasium.spaces.Box(-1.0, 1.0, act_shape, np.float32)
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (num_envs, *obs_shape),
                                                      np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (num_envs, *act_shape), np.float32)
        self._reset = jax.jit(self.env.reset)
        self._step = jax.jit(self.env.step)
        self._key = jax.random.PRNGKey(seed)
        self._state = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._key = jax.random.PRNGKey(seed)
        self._key, key = jax.random.split(self._key)
        self._state = self._reset(key)
        return np.asarray(self._state.obs), {}

    def step(self, actions):
        if self._state is None:
            raise RuntimeError("call reset() before step().")
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != self.action_space.shape:
            raise ValueError(f"actions have shape {actions.shape}, expected "
                             f"{self.action_space.shape} (num_envs, action_size).")
        if not np.all(np.isfinite(actions)):
            raise ValueError("actions contain NaN or inf; check the policy's output.")
        self._state = self._step(self._state, actions)
        s = self._state
        done, truncated = np.asarray(s.done), np.asarray(s.truncated)
        info = {"final_obs": np.asarray(s.extras["final_obs"]),
                **{k: np.asarray(v) for k, v in s.metrics.items()}}
        return (np.asarray(s.obs), np.asarray(s.reward), done & ~truncated, truncated, info)
