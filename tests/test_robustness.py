"""Observation noise and action latency (`robojax.core.robustness`) as env-config fields."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robojax import envs
from robojax.core.wrappers import wrap_for_training


def test_an_action_is_executed_delay_steps_late_after_the_rest_command():
    env = envs.make("point-mass", action_delay=(2, 2))  # its actuators span [-1, 1]
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    actions = [[0.5, -0.5], [1.0, 1.0], [-1.0, 0.25], [0.25, 0.25]]
    executed = []
    for action in actions:
        state = step(state, jnp.asarray(action))
        executed.append(np.asarray(state.data.ctrl).tolist())
    assert executed == [[0.0, 0.0], [0.0, 0.0], [0.5, -0.5], [1.0, 1.0]]


def test_each_env_draws_its_delay_from_the_range_and_training_batches_carry_it():
    env = wrap_for_training(envs.make("point-mass", action_delay=(0, 2)), 64)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    delays = np.asarray(state.extras["action_delay"])
    assert set(delays.tolist()) == {0, 1, 2}
    state = jax.jit(env.step)(state, jnp.ones((64, 2)))  # the queue rides through autoreset
    assert state.extras["action_queue"].shape == (64, 3, 2)


def test_observation_noise_has_the_configured_std_and_leaves_the_physics_alone():
    key = jax.random.PRNGKey(1)
    reset = lambda env: jax.jit(jax.vmap(env.reset))(jax.random.split(key, 512))  # noqa: E731
    clean, noisy = reset(envs.make("point-mass")), reset(envs.make("point-mass", obs_noise=0.1))
    assert np.std(np.asarray(noisy.obs - clean.obs)) == pytest.approx(0.1, rel=0.05)
    np.testing.assert_array_equal(noisy.data.qpos, clean.data.qpos)


def test_without_noise_or_delay_the_state_has_no_extras():
    state = jax.eval_shape(envs.make("point-mass").reset, jax.random.PRNGKey(0))
    assert state.extras == {}


@pytest.mark.parametrize("overrides,message", [
    ({"obs_noise": -0.1}, "obs_noise is a standard deviation"),
    ({"action_delay": (2, 1)}, "0 <= low <= high"),
    ({"action_delay": (-1, 1)}, "0 <= low <= high"),
    ({"action_delay": 2}, "action_delay takes tuple"),
])
def test_bad_noise_and_delay_are_refused_with_the_fix(overrides, message):
    with pytest.raises((ValueError, TypeError), match=message):
        envs.make("point-mass", **overrides)
