"""Foreign envs through robojax trainers, and the Gymnasium view of robojax envs."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from robojax.envs import make as make_env

from robojax.algos import acting, ppo

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)

TINY = ppo.PPOConfig(num_envs=16, rollout_length=8, num_minibatches=2, num_epochs=1,
                     num_eval_envs=2, episode_length=20)


def _train_two_iterations(env):
    train_env = ppo.make_train_input(TINY, env)
    state = ppo.init(TINY, env, train_env, jax.random.PRNGKey(0))
    step = jax.jit(functools.partial(ppo.train_iteration, TINY, train_env))
    for _ in range(2):
        state, metrics = step(state)
    evaluate = jax.jit(functools.partial(ppo.evaluate, TINY, acting.make_eval_env(TINY, env)))
    result = evaluate(state, jax.random.PRNGKey(1))
    assert int(state.iteration) == 2
    assert np.isfinite(float(metrics["loss/value"]))
    assert np.isfinite(float(result["eval/episode_reward"]))
    return result


@pytest.mark.slow
def test_playground_env_trains_unchanged():
    pytest.importorskip("mujoco_playground")
    env = make_env("playground:CartpoleBalance")
    assert env.observation_spec.shape == (5,) and env.action_spec.shape == (1,)
    result = _train_two_iterations(env)
    # Cartpole's reward lies in [0, 1] per step: 20-step episodes score at most 20.
    assert 0 < float(result["eval/episode_reward"]) <= TINY.episode_length
    # The adapter passes the Playground env's own reward and observation through.
    state = jax.jit(env.reset)(jax.random.PRNGKey(3))
    action = jnp.full(env.action_spec.shape, 0.3)
    ours, theirs = jax.jit(env.step)(state, action), jax.jit(env.foreign.step)(state.data, action)
    assert float(ours.reward) == float(theirs.reward)
    np.testing.assert_array_equal(ours.obs, theirs.obs)


@pytest.mark.slow
def test_playground_frames_of_a_list_equal_those_of_the_stacked_states():
    pytest.importorskip("mujoco_playground")
    from robojax.io.video import RenderUnavailable

    env = make_env("playground:CartpoleBalance")
    state = jax.jit(env.reset)(jax.random.PRNGKey(3))
    moved = jax.jit(env.step)(state, jnp.full(env.action_spec.shape, 0.3))
    trajectory = jax.tree.map(lambda *xs: jnp.stack(xs), state, moved)
    try:
        listed = env.render([state, moved], width=32, height=24)
    except RenderUnavailable as err:
        pytest.skip(f"no GL backend: {err}")
    assert len(listed) == 2 and listed[0].std() > 0
    for a, b in zip(listed, env.render(trajectory, width=32, height=24), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_brax_env_trains_unchanged():
    env = make_env("brax:inverted_pendulum")
    assert env.action_spec.shape == (1,)
    _train_two_iterations(env)


def test_unknown_foreign_object_is_refused():
    from robojax.core.adapters import adapt

    with pytest.raises(TypeError, match="cannot adapt"):
        adapt(object())
