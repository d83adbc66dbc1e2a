"""Observation noise and action latency (`robojax.core.robustness`) as env-config fields."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robojax import envs
from robojax.core.wrappers import wrap_for_training

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)


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


def test_the_observation_ends_with_the_last_actions_sent_before_their_delay():
    """Worked by hand: with a delay of 2 the actuators still run the rest command while the
    observation already holds the two actions sent, clipped as the physics gets them."""
    env = envs.make("point-mass", action_delay=(2, 2), observe_last_actions=2)
    plain = envs.make("point-mass")
    assert env.observation_spec.size == plain.observation_spec.size + 4
    assert [name for name, _, _ in env.observation_parts()][-1] == "last_actions"
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(state.obs[-4:], np.zeros(4))
    np.testing.assert_array_equal(state.obs[:-4], jax.jit(plain.reset)(jax.random.PRNGKey(0)).obs)
    step = jax.jit(env.step)
    seen = []
    for action in ([0.5, -0.5], [2.0, jnp.nan], [-1.0, 0.25]):
        state = step(state, jnp.asarray(action))
        seen.append(np.asarray(state.obs[-4:]).tolist())
    assert seen == [[0.0, 0.0, 0.5, -0.5], [0.5, -0.5, 1.0, 0.0], [1.0, 0.0, -1.0, 0.25]]
    assert np.asarray(state.data.ctrl).tolist() == [0.5, -0.5]  # sent two steps before


def test_observation_noise_reaches_the_last_actions_too():
    env = envs.make("point-mass", obs_noise=0.1, observe_last_actions=2)
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(1), 512))
    assert np.std(np.asarray(states.obs[:, -4:])) == pytest.approx(0.1, rel=0.05)  # zeros + noise


def test_last_actions_need_a_flat_observation_and_the_error_names_the_fix():
    from robojax.envs.point_mass import PointMass, PointMassConfig

    class GridPointMass(PointMass):  # a task whose observation is a (2, 3) grid
        def observe(self, data, key):
            return super().observe(data, key).reshape(2, 3)

    assert GridPointMass(PointMassConfig()).observation_spec.shape == (2, 3)
    with pytest.raises(ValueError, match="needs a flat observation; GridPointMass's is "
                                         r"\(2, 3\). Drop observe_last_actions"):
        GridPointMass(PointMassConfig(observe_last_actions=1))


def test_a_mirrored_observation_reflects_its_last_actions_as_actions():
    env = envs.make("push-t", observe_last_actions=2)
    mirror = env.reflection()
    size = envs.make("push-t").observation_spec.size
    assert mirror.obs_map.shape == (size + 4, size + 4)
    obs = np.arange(size + 4, dtype=np.float32)
    np.testing.assert_array_equal((obs @ mirror.obs_map.T)[size:],
                                  (obs[size:].reshape(2, 2) @ mirror.action_map.T).ravel())


def test_without_noise_or_delay_the_state_has_no_extras():
    state = jax.eval_shape(envs.make("point-mass").reset, jax.random.PRNGKey(0))
    assert state.extras == {}


@pytest.mark.parametrize("overrides,message", [
    ({"obs_noise": -0.1}, "obs_noise is a standard deviation"),
    ({"action_delay": (2, 1)}, "0 <= low <= high"),
    ({"action_delay": (-1, 1)}, "0 <= low <= high"),
    ({"action_delay": 2}, "action_delay takes tuple"),
    ({"observe_last_actions": -1}, "observe_last_actions counts actions"),
    ({"observe_last_actions": 1.5}, "observe_last_actions takes int"),
])
def test_bad_noise_and_delay_are_refused_with_the_fix(overrides, message):
    with pytest.raises((ValueError, TypeError), match=message):
        envs.make("point-mass", **overrides)
