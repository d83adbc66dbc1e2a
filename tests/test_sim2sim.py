"""`robojax sim2sim`: the task in MuJoCo C, observed and rewarded by its own definitions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robojax import envs
from robojax.sim2sim import MujocoTask

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)


@pytest.mark.parametrize("name", ["cartpole-balance", "reacher"])
def test_mujoco_c_follows_mjx_under_the_same_commands(name):
    env = envs.make(name)
    task = MujocoTask(env)
    key = jax.random.PRNGKey(3)
    task.reset(key)
    state = jax.jit(env.reset)(key)
    np.testing.assert_allclose(task.obs, state.obs, atol=1e-6)
    step = jax.jit(env.step)
    low, high = env.ctrl_range
    rng = np.random.default_rng(0)
    rewards = []
    for _ in range(20):
        action = rng.uniform(-1, 1, env.action_spec.shape).astype(np.float32)
        task.step(low + (action + 1) / 2 * (high - low))
        state = step(state, jnp.asarray(action))
        rewards.append(float(state.reward))
    # Two simulators (float64 C, float32 MJX) part slowly: velocities by ~3e-3 after 20 steps.
    np.testing.assert_allclose(task.obs, state.obs, atol=1e-2)
    assert task.reward_sum == pytest.approx(sum(rewards), rel=1e-2, abs=1e-2)
    assert task.steps == 20 and not task.done
