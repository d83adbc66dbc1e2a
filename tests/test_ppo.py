import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robojax import envs
from robojax.algos import ppo
from robojax.core import normalize


def test_gae_matches_hand_computation():
    # One env, 3 steps, gamma = 0.5, lambda = 0.5, no episode end.
    rewards = jnp.array([[1.0], [2.0], [3.0]])
    values = jnp.array([[0.5], [1.0], [1.5]])
    next_values = jnp.array([[1.0], [1.5], [2.0]])
    false = jnp.zeros((3, 1), bool)
    adv, targets = ppo.compute_gae(rewards, values, next_values, false, false, 0.5, 0.5)
    # deltas: 1 + .5*1 - .5 = 1.0 ; 2 + .5*1.5 - 1 = 1.75 ; 3 + .5*2 - 1.5 = 2.5
    # A2 = 2.5 ; A1 = 1.75 + .25*2.5 = 2.375 ; A0 = 1.0 + .25*2.375 = 1.59375
    np.testing.assert_allclose(adv[:, 0], [1.59375, 2.375, 2.5])
    np.testing.assert_allclose(targets[:, 0], [2.09375, 3.375, 4.0])


def test_gae_termination_vs_truncation():
    rewards = jnp.array([[1.0, 1.0], [1.0, 1.0]])
    values = jnp.zeros((2, 2))
    next_values = jnp.full((2, 2), 10.0)
    done = jnp.array([[True, True], [False, False]])
    truncated = jnp.array([[False, True], [False, False]])  # env 0 terminates, env 1 truncates
    adv, _ = ppo.compute_gae(rewards, values, next_values, done, truncated, 0.9, 1.0)
    assert float(adv[0, 0]) == pytest.approx(1.0)  # terminal: no bootstrap, no leak from t=1
    assert float(adv[0, 1]) == pytest.approx(1.0 + 0.9 * 10.0)  # truncated: bootstrap V(final)
    # NaN in a terminal next value (a diverged env) cannot leak.
    nan_next = next_values.at[0, 0].set(jnp.nan)
    adv, _ = ppo.compute_gae(rewards, values, nan_next, done, truncated, 0.9, 1.0)
    assert np.all(np.isfinite(adv))


def test_running_stats_match_numpy():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(3, 50, 4)).astype(np.float32)
    stats = normalize.init((4,))
    np.testing.assert_array_equal(normalize.normalize(stats, jnp.ones(4)), np.ones(4))
    for chunk in data:
        stats = normalize.update(stats, chunk)
    flat = data.reshape(-1, 4)
    np.testing.assert_allclose(stats.mean, flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(normalize.std(stats), flat.std(0), rtol=1e-4)


def test_config_validation_names_the_fix():
    cfg = ppo.PPOConfig(num_envs=6, unroll_length=5, num_minibatches=4)
    with pytest.raises(ValueError, match="num_minibatches"):
        ppo.init(cfg, envs.make("point-mass"), jax.random.PRNGKey(0))


def test_ppo_learns_cartpole_balance():
    """Learning test: PPO's defaults reach eval reward >= 800 of 1000 within 800K steps."""
    cfg = ppo.PPOConfig(num_timesteps=800_000, num_eval_envs=64)
    env = envs.make("cartpole-balance")
    state = ppo.init(cfg, env, jax.random.PRNGKey(0))
    step = jax.jit(functools.partial(ppo.train_iteration, cfg, ppo.make_train_env(cfg, env)))
    evaluate = jax.jit(functools.partial(ppo.evaluate, cfg, ppo.make_eval_env(cfg, env)))
    before = float(evaluate(state, jax.random.PRNGKey(1))["eval/episode_reward"])
    for _ in range(cfg.num_iterations()):
        state, metrics = step(state)
    after = evaluate(state, jax.random.PRNGKey(1))
    assert np.isfinite(float(metrics["loss/value"]))
    assert float(after["eval/episode_reward"]) >= 800, (before, after)
    assert float(after["eval/episode_reward"]) > before + 150
