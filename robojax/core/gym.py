"""A Gymnasium `VectorEnv` view of a robojax env, for code written against Gymnasium.

Steps run compiled on the accelerator; arrays cross to NumPy at the boundary. Two autoreset
modes, as Gymnasium defines them:

- `NEXT_STEP` (the default, as Gymnasium's own vector envs): the step that ends an episode
  returns its last observation; the next `step` resets that env, ignores its action and
  returns the new episode's first observation with reward 0. Gymnasium's observation wrappers
  (`NormalizeObservation`, `TransformObservation`, ...) require it.
- `SAME_STEP`: the ending step already returns the new episode's first observation, and
  `info["final_obs"]` holds the last one of the old episode.
"""

import jax
import jax.numpy as jnp
import numpy as np

from robojax.core.env import Env
from robojax.core.wrappers import select_envs, wrap_for_training

try:
    import gymnasium
    from gymnasium.vector import AutoresetMode, VectorEnv
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Gymnasium view needs gymnasium: pip install 'robojax[gymnasium]'") \
        from err


class GymVectorEnv(VectorEnv):
    """`num_envs` copies of `env` behind the Gymnasium vector API."""

    def __init__(self, env: Env, num_envs: int, *, episode_length: int | None = None,
                 seed: int = 0, autoreset_mode: AutoresetMode = AutoresetMode.NEXT_STEP):
        if autoreset_mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise ValueError(f"autoreset_mode must be AutoresetMode.NEXT_STEP or SAME_STEP, "
                             f"got {autoreset_mode}.")
        self.metadata = {"autoreset_mode": autoreset_mode, "render_modes": []}
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
        step = self._step_next if autoreset_mode == AutoresetMode.NEXT_STEP else self._step_same
        self._step = jax.jit(step)
        self._key = jax.random.PRNGKey(seed)
        self._state = None
        self._ended = np.zeros(num_envs, bool)  # NEXT_STEP: envs whose episode ended last step

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._key = jax.random.PRNGKey(seed)
        self._key, key = jax.random.split(self._key)
        self._state = self._reset(key)
        self._ended[:] = False
        return np.array(self._state.obs), {}

    def _step_same(self, state, ended, actions):
        state = self.env.step(state, actions)
        return state, state.obs, state.reward, state.done, state.truncated, state.done

    def _step_next(self, state, ended, actions):
        # The autoreset already drew the ended envs' new episodes: they keep that state, their
        # action unused, and report its first observation with reward 0.
        stepped = self.env.step(state, actions)
        per_env = select_envs(ended, state.replace(extras={}), stepped.replace(extras={}))
        state = per_env.replace(extras=stepped.extras)  # the autoreset's shared bookkeeping
        obs = jnp.where(ended[:, None], state.obs,
                        jnp.where(stepped.done[:, None], stepped.extras["final_obs"],
                                  stepped.obs))
        zero = jnp.zeros_like(stepped.done)
        return (state, obs, jnp.where(ended, 0.0, stepped.reward),
                jnp.where(ended, zero, stepped.done), jnp.where(ended, zero, stepped.truncated),
                ~ended & stepped.done)

    def step(self, actions):
        if self._state is None:
            raise RuntimeError("call reset() before step().")
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != self.action_space.shape:
            raise ValueError(f"actions have shape {actions.shape}, expected "
                             f"{self.action_space.shape} (num_envs, action_size).")
        if not np.all(np.isfinite(actions)):
            raise ValueError("actions contain NaN or inf; check the policy's output.")
        self._state, obs, reward, done, truncated, ended = self._step(
            self._state, jnp.asarray(self._ended), actions)
        done, truncated = np.asarray(done), np.asarray(truncated)
        self._ended = np.array(ended)
        info = {k: np.asarray(v) for k, v in self._state.metrics.items()}
        if self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP:
            info["final_obs"] = np.asarray(self._state.extras["final_obs"])
        # Copies: Gymnasium's wrappers may write into what a step returns.
        return np.array(obs), np.array(reward), done & ~truncated, truncated, info
