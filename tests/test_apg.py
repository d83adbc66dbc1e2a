"""Analytic policy gradients: a compiled iteration runs, moves the policy along a finite
gradient and carries the envs over to the next window."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robojax import envs
from robojax.algos import apg
from robojax.io.checkpoint import tree_equal

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)


def _run(cfg, env, iterations: int):
    train_env = apg.make_train_input(cfg, env)
    state = apg.init(cfg, env, train_env, jax.random.PRNGKey(0))
    step = jax.jit(functools.partial(apg.train_iteration, cfg, train_env))
    history = [state]
    for _ in range(iterations):
        state, metrics = step(state)
        history.append(state)
    return history, metrics


@pytest.mark.slow
def test_apg_iterations_update_the_policy_and_carry_the_envs_over():
    env = envs.make("cartpole-swingup")
    cfg = apg.APGConfig(num_envs=4, rollout_length=8)
    (first, _, last), metrics = _run(cfg, env, 2)
    assert int(last.iteration) == 2
    assert float(metrics["train/skipped_updates"]) == 0.0
    assert float(metrics["train/grad_norm"]) > 0
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert not tree_equal(first.params, last.params)
    # Episodes run on across windows: two windows of 8 steps in, each env is at step 16.
    np.testing.assert_allclose(np.asarray(last.env_state.data.time) / env.dt, 16, rtol=1e-5)
    assert float(last.obs_stats.count) == 2 * 8 * 4  # every observation of both windows


def test_apg_loss_is_minus_the_mean_window_reward():
    env = envs.make("cartpole-swingup")
    cfg = apg.APGConfig(num_envs=4, rollout_length=8, saturation_cost=0.0, reward_scaling=2.0)
    train_env = apg.make_train_input(cfg, env)
    state = apg.init(cfg, env, train_env, jax.random.PRNGKey(0))
    loss, (_, steps, _) = jax.jit(functools.partial(apg.loss_fn, cfg=cfg, env=train_env))(
        state.params, obs_stats=state.obs_stats, env_state=state.env_state,
        key=jax.random.PRNGKey(1))
    assert float(loss) == pytest.approx(-2.0 * float(jnp.mean(steps.reward)), rel=1e-6)


def test_apg_config_errors_name_the_field():
    with pytest.raises(ValueError, match="rollout_length must be >= 1"):
        apg.APGConfig(rollout_length=0).validate()
    with pytest.raises(ValueError, match="contact_grad_scale must be in"):
        apg.APGConfig(gradients=apg.diffsim.GradientConfig(contact_grad_scale=2.0)).validate()
