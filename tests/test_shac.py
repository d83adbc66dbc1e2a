"""Short-horizon actor-critic: the window objective against numbers worked by hand, and a
compiled iteration that updates actor, critic and target critic."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robojax import envs
from robojax.algos import shac
from robojax.io.checkpoint import tree_equal

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)


def test_window_objective_matches_a_hand_worked_window():
    # One env, three steps, discount 0.5; the episode ends at step 1 and a new one starts.
    rewards = jnp.array([[1.0], [2.0], [3.0]])
    next_values = jnp.array([[10.0], [20.0], [30.0]])
    done = jnp.array([[False], [True], [False]])
    objective = lambda truncated: float(shac.window_objective(  # noqa: E731
        rewards, next_values, done, truncated, 0.5)[0])
    # Terminated at step 1: 1 + 0.5 * 2 (no bootstrap); then the new segment, which the
    # window cuts after one step: 3 + 0.5 * 30.
    assert objective(jnp.zeros((3, 1), bool)) == pytest.approx(1 + 1 + 18)
    # Truncated at step 1 instead: that segment bootstraps from its value, 0.5 * 0.5 * 20.
    assert objective(jnp.array([[False], [True], [False]])) == pytest.approx(1 + 6 + 18)
    # No episode end: one segment, closed by the discounted value at the window's end.
    running = float(shac.window_objective(rewards, next_values, jnp.zeros((3, 1), bool),
                                          jnp.zeros((3, 1), bool), 0.5)[0])
    assert running == pytest.approx(1 + 0.5 * 2 + 0.25 * 3 + 0.125 * 30)


@pytest.mark.slow
def test_shac_iterations_update_actor_critic_and_target():
    env = envs.make("cartpole-swingup")
    cfg = shac.SHACConfig(num_envs=4, rollout_length=8, critic_epochs=2, critic_minibatches=2)
    train_env = shac.make_train_input(cfg, env)
    state = shac.init(cfg, env, train_env, jax.random.PRNGKey(0))
    step = jax.jit(functools.partial(shac.train_iteration, cfg, train_env))
    first = state
    for _ in range(2):
        state, metrics = step(state)
    assert int(state.iteration) == 2
    assert float(metrics["train/skipped_updates"]) == 0.0
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert float(metrics["train/critic_loss"]) > 0
    for part in ("policy", "value"):
        assert not tree_equal(first.params[part], state.params[part])
    # The target moves a (1 - tau) step towards the critic, so it differs from both.
    assert not tree_equal(first.target_value, state.target_value)
    assert not tree_equal(state.params["value"], state.target_value)
    np.testing.assert_allclose(np.asarray(state.env_state.data.time) / env.dt, 16, rtol=1e-5)


def test_shac_config_errors_name_the_fix():
    with pytest.raises(ValueError, match="not divisible by critic_minibatches = 3"):
        shac.SHACConfig(num_envs=4, rollout_length=8, critic_minibatches=3).validate()
