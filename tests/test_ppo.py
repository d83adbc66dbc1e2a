"""PPO: config errors, and learning cartpole-balance."""

import functools

import jax
import numpy as np
import pytest

from robojax import envs
from robojax.algos import acting, ppo


def test_config_validation_names_the_fix():
    cfg = ppo.PPOConfig(num_envs=6, rollout_length=5, num_minibatches=4)
    with pytest.raises(ValueError, match="num_minibatches"):
        ppo.init(cfg, envs.make("point-mass"), None, jax.random.PRNGKey(0))


@pytest.mark.slow
def test_ppo_learns_cartpole_balance():
    """Learning test: PPO's defaults reach eval reward >= 800 of 1000 within 800K steps."""
    cfg = ppo.PPOConfig(num_timesteps=800_000, num_eval_envs=64)
    env = envs.make("cartpole-balance")
    train_env = ppo.make_train_input(cfg, env)
    state = ppo.init(cfg, env, train_env, jax.random.PRNGKey(0))
    step = jax.jit(functools.partial(ppo.train_iteration, cfg, train_env))
    evaluate = jax.jit(functools.partial(ppo.evaluate, cfg, acting.make_eval_env(cfg, env)))
    before = float(evaluate(state, jax.random.PRNGKey(1))["eval/episode_reward"])
    for _ in range(cfg.num_iterations()):
        state, metrics = step(state)
    after = evaluate(state, jax.random.PRNGKey(1))
    assert np.isfinite(float(metrics["loss/value"]))
    assert float(after["eval/episode_reward"]) >= 800, (before, after)
    assert float(after["eval/episode_reward"]) > before + 150
