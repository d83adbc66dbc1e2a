"""PPO: config errors, and learning cartpole-balance."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
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
    """Learning test: PPO's defaults reach eval reward >= 800 of 1000 within 600K steps."""
    cfg = ppo.PPOConfig(num_timesteps=600_000, num_eval_envs=64)
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


def test_annealed_learning_rate_falls_linearly_to_zero_over_the_run():
    from robojax.algos.ppo import PPOConfig, make_optimizer

    # 2 iterations x 2 epochs x 2 minibatches: 8 updates. Adam's step on a constant gradient
    # is the learning rate itself, so the steps show the schedule.
    cfg = PPOConfig(num_envs=4, rollout_length=4, num_timesteps=32, num_minibatches=2,
                    num_epochs=2, anneal_learning_rate=True)

    def steps(cfg):
        params, grads = {"w": jnp.zeros(())}, {"w": jnp.ones(())}
        optimizer = make_optimizer(cfg)
        state, out = optimizer.init(params), []
        for _ in range(9):
            update, state = optimizer.update(grads, state, params)
            out.append(-float(update["w"]))
        return np.array(out)

    np.testing.assert_allclose(steps(cfg), 1e-3 * (1 - np.arange(9) / 8), atol=1e-8)
    constant = dataclasses.replace(cfg, anneal_learning_rate=False)
    np.testing.assert_allclose(steps(constant), np.full(9, 1e-3), atol=1e-8)


def test_max_log_std_caps_the_std_the_entropy_bonus_pays_for():
    from robojax.algos.ppo import PPOConfig, make_policy
    from robojax.core.types import ArraySpec

    spec = ArraySpec((2,), np.float32)
    capped = make_policy(PPOConfig(max_log_std=0.0))
    params = capped.init(jax.random.PRNGKey(0), ArraySpec((3,), np.float32), spec)
    params = {**params, "log_std": jnp.array([1.0, -0.7])}  # one above the cap, one below
    obs = jnp.ones(3)
    _, log_std = capped.mean_and_log_std(params, obs)
    np.testing.assert_allclose(log_std, [0.0, -0.7])
    # Above the cap the entropy bonus has no gradient left to grow the std with.
    grad = jax.grad(lambda p: capped.entropy(p, obs))(params)["log_std"]
    np.testing.assert_allclose(grad, [0.0, 1.0])
    np.testing.assert_allclose(capped.log_prob(params, obs, jnp.zeros(2)),
                               make_policy(PPOConfig()).log_prob(
                                   {**params, "log_std": jnp.array([0.0, -0.7])}, obs,
                                   jnp.zeros(2)), rtol=1e-6)
    # Unbounded by default, as before.
    _, free = make_policy(PPOConfig()).mean_and_log_std(params, obs)
    np.testing.assert_allclose(free, [1.0, -0.7])


def test_deterministic_eval_false_acts_evaluates_and_exports_sampled_actions():
    from robojax.algos.ppo import PPOConfig
    from robojax.runs import TrainArgs, run_identity

    env = envs.make("point-mass")
    mean_cfg = PPOConfig(num_envs=4, rollout_length=4, num_minibatches=1, num_eval_envs=8,
                         episode_length=20)
    sampled_cfg = dataclasses.replace(mean_cfg, deterministic_eval=False)
    state = ppo.init(mean_cfg, env, ppo.make_train_input(mean_cfg, env), jax.random.PRNGKey(0))
    log_std = jnp.log(jnp.array([0.5, 2.0]))
    state = state.replace(params={**state.params,
                                  "policy": {**state.params["policy"], "log_std": log_std}})
    env_state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), 3))
    key = jax.random.PRNGKey(2)
    mean = ppo.act(mean_cfg, state, env_state.obs)

    def controller_action(cfg):
        ctrl = ppo.controller(cfg, state)
        return ctrl.step(ctrl.init(env_state), env_state, key)[0]

    # The mean by default; sampled, mean + std * a standard normal draw from the step's key.
    np.testing.assert_array_equal(controller_action(mean_cfg), mean)
    expected = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    np.testing.assert_allclose(controller_action(sampled_cfg), expected, rtol=1e-6)

    # The exported program takes the same draw as an input, clipped to the action range.
    program = ppo.program(sampled_cfg, state)
    assert set(program.noise) == {"action"} and program.noise["action"].shape == (2,)
    noise = jnp.array([[0.3, -0.9], [1.5, 0.2], [-2.0, 0.0]])
    np.testing.assert_allclose(program.fn(env_state.obs[:, None], {"action": noise})[:, 0],
                               jnp.clip(mean + jnp.exp(log_std) * noise, -1.0, 1.0), rtol=1e-6)
    assert ppo.program(mean_cfg, state).noise == {}

    # Evaluation acts the same way: a sampled evaluation differs from the mean's and repeats
    # exactly under its key.
    eval_env = acting.make_eval_env(mean_cfg, env)
    scores = {name: jax.jit(functools.partial(ppo.evaluate, cfg, eval_env))(state, key)
              ["eval/episode_reward"] for name, cfg in
              (("mean", mean_cfg), ("sampled", sampled_cfg))}
    again = ppo.evaluate(sampled_cfg, eval_env, state, key)["eval/episode_reward"]
    assert scores["mean"] != scores["sampled"]
    np.testing.assert_allclose(again, scores["sampled"], rtol=1e-5)
    # How a run is evaluated is not part of what its checkpoints must match, so a run can be
    # evaluated either way (and runs saved before the setting existed still load).
    identity = lambda cfg: run_identity(TrainArgs(algo="ppo", env="point-mass", ppo=cfg))
    assert identity(mean_cfg) == identity(sampled_cfg)
    assert identity(mean_cfg) != identity(dataclasses.replace(mean_cfg, entropy_cost=0.1))
