"""Imitation through differentiable physics: ILD's objective, its segments and restarts, its
errors, learning from one demo and exact resume."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robojax import data, envs
from robojax.algos import ild
from robojax.io.checkpoint import tree_equal


@pytest.fixture(scope="module")
def reacher_demo(tmp_path_factory):
    from robojax import cli

    path = tmp_path_factory.mktemp("ild") / "reacher.hdf5"
    cli.main(["collect", "--env", "reacher", "--episodes", "1", "--out", str(path)])
    return path


def test_ild_loss_is_zero_on_the_experts_own_trajectory(reacher_demo):
    env = envs.make("reacher")
    cfg = ild.ILDConfig(demo=reacher_demo, rollout_length=100)
    expert = ild.load_expert(cfg, env)
    obs, actions = expert.unpadded()
    agent = obs[:100, None, :]  # one "env" that is the expert's first segment
    assert float(ild.ild_loss(agent, actions[:100, None], expert, cfg)) == 0.0
    # A later segment is compared with the demo around its own time.
    later = obs[300:400, None, :]
    assert float(ild.ild_loss(later, actions[300:400, None], expert, cfg, start=300)) == 0.0
    assert float(ild.ild_loss(later, actions[300:400, None], expert, cfg, start=0)) > 0.0
    shifted = agent + 0.05
    assert float(ild.ild_loss(shifted, actions[:100, None], expert, cfg)) > 0.0
    # The chamfer match forgives timing: a time-shifted copy costs far less than an offset one.
    late = jnp.concatenate([agent[:1].repeat(5, 0), agent[:-5]])
    assert float(ild.ild_loss(late, actions[:100, None], expert, cfg)) < float(
        ild.ild_loss(shifted, actions[:100, None], expert, cfg))
    # Only the matched entries count: a different goal offset (last two entries) costs nothing
    # once they are dropped.
    moved = agent.at[..., -2:].add(0.3)
    assert float(ild.ild_loss(moved, actions[:100, None], expert, cfg)) > 0.0
    kept = dataclasses.replace(cfg, match_dims=tuple(range(6)))
    assert float(ild.ild_loss(moved, actions[:100, None], expert, kept)) == 0.0
    # By default the demo is imitated as far as evaluation scores it, in whole segments.
    assert ild.load_expert(ild.ILDConfig(demo=reacher_demo, rollout_length=32,
                                         episode_length=100), env).demo_length == 96
    assert expert.demo_length == 1000
    windowed = ild.ILDConfig(demo=reacher_demo, rollout_length=100, window=2)
    narrow = ild.load_expert(windowed, env)
    assert float(ild.ild_loss(late, actions[:100, None], narrow, windowed)) > float(
        ild.ild_loss(late, actions[:100, None], expert, cfg))


def test_ild_bad_demos_are_clear_errors(reacher_demo, tmp_path):
    env = envs.make("reacher")
    with pytest.raises(ValueError, match="--demo"):
        ild.ILDConfig().validate()
    with pytest.raises(ValueError, match="demo_length 100 must be a multiple of rollout_length 64"):
        ild.ILDConfig(demo=reacher_demo, demo_length=100).validate()
    with pytest.raises(data.DemoFileError, match="recorded on 'reacher', not 'point-mass'"):
        ild.load_expert(ild.ILDConfig(demo=reacher_demo), envs.make("point-mass"))
    with pytest.raises(data.DemoFileError, match="rollout-length 1000"):
        ild.load_expert(ild.ILDConfig(demo=reacher_demo, rollout_length=2000), env)
    with pytest.raises(data.DemoFileError, match="--ild.demo-length of at most 1000"):
        ild.load_expert(ild.ILDConfig(demo=reacher_demo, demo_length=1024), env)
    with pytest.raises(data.DemoFileError, match="episode"):
        ild.load_expert(ild.ILDConfig(demo=reacher_demo, demo_episode=3), env)
    with pytest.raises(ValueError, match=r"match_dims \(0, 8\) must index the 8"):
        ild.load_expert(ild.ILDConfig(demo=reacher_demo, match_dims=(0, 8)), env)
    # A file whose observations do not fit the env (another config or version of it).
    wrong = data.from_episodes([{"obs": np.zeros((50, 5)), "actions": np.zeros((50, 2)),
                                 "rewards": np.zeros(50), "dones": np.zeros(50)}], "reacher")
    path = data.save(tmp_path / "wrong.hdf5", wrong)
    with pytest.raises(data.DemoFileError, match="sizes 5/2"):
        ild.load_expert(ild.ILDConfig(demo=path, rollout_length=50), env)
    with pytest.raises(data.DemoFileError, match="no episodes"):
        data.from_episodes([], "reacher")
    empty = data.from_episodes([{"obs": np.zeros((0, 8)), "actions": np.zeros((0, 2)),
                                 "rewards": np.zeros(0), "dones": np.zeros(0)}], "reacher")
    path = data.save(tmp_path / "empty.hdf5", empty)
    with pytest.raises(data.DemoFileError, match=r"empty \(0 steps\)"):
        ild.load_expert(ild.ILDConfig(demo=path), env)


@pytest.mark.slow
def test_ild_learns_to_swing_up_from_one_demo(pendulum_demo, tmp_path):
    from robojax import cli
    from robojax.io.metrics import read_metrics

    run = tmp_path / "run"
    cli.main(["train", "--algo", "ild", "--env", "pendulum-swingup", "--demo",
              str(pendulum_demo), "--run-dir", str(run), "--num-timesteps", "1000000",
              "--ild.num-evals", "2", "--ild.num-eval-envs", "64", "--no-progress",
              "--no-video"])
    rows = read_metrics(run / "metrics.csv")
    assert rows[0]["eval/episode_reward"] < 300  # cloned actions alone: it swings round
    assert rows[-1]["eval/episode_reward"] >= 600, rows[-1]  # through the physics: balances
    assert rows[-1]["train/skipped_updates"] == 0.0
    assert 0 < rows[-1]["eval/return_ratio"] < 1.5
    assert (run / "learning_curve.png").exists()


@pytest.mark.quick_compile
@pytest.mark.slow
def test_ild_resumed_from_an_earlier_checkpoint_ends_as_the_whole_run(pendulum_demo, tmp_path,
                                                                      resume_matches_whole_run):
    from robojax import cli

    whole = tmp_path / "whole"
    cli.main(["train", "--algo", "ild", "--env", "pendulum-swingup", "--demo", str(pendulum_demo),
              "--run-dir", str(whole), "--ild.num-envs", "8", "--ild.rollout-length", "32",
              "--num-timesteps", str(8 * 32 * 40), "--ild.num-evals", "20",
              "--ild.num-eval-envs", "4", "--episode-length", "50", "--no-progress",
              "--no-video"])
    resume_matches_whole_run(whole, tmp_path)  # the demo clock and the carried-over envs too


def _segments(demo) -> ild.ILDConfig:
    """Four envs on 16-step segments of a 48-step demo: one config for the tests below, so the
    ones that change nothing of it share one compiled iteration."""
    return ild.ILDConfig(demo=demo, num_envs=4, rollout_length=16, demo_length=48, bc_steps=0,
                         learning_rate=3e-3)


@pytest.mark.quick_compile
@pytest.mark.slow
def test_ild_segments_carry_envs_over_the_demo_and_restart_diverged_ones(pendulum_demo):
    env = envs.make("pendulum-swingup")
    cfg = _segments(pendulum_demo)
    train_input = ild.make_train_input(cfg, env)
    state = ild.init(cfg, env, train_input, jax.random.PRNGKey(0))
    step = jax.jit(functools.partial(ild.train_iteration, cfg, train_input))
    times = lambda s: np.asarray(s.env_state.data.time) / env.dt  # noqa: E731 - in steps
    first, _ = step(state)  # segment 0 from fresh envs
    second, _ = step(first)  # segment 1 continues them
    np.testing.assert_allclose(times(first), 16, rtol=1e-5)
    np.testing.assert_allclose(times(second), 32, rtol=1e-5)
    np.testing.assert_array_equal(second.clock, 32)
    third, _ = step(second)  # the demo span is covered: fresh envs at the demo's start again
    np.testing.assert_array_equal(times(third), 0)
    np.testing.assert_array_equal(third.clock, 0)
    # An env that diverged mid-demo restarts alone; the NaN gradient is skipped, not applied.
    broken = first.replace(env_state=first.env_state.replace(
        obs=first.env_state.obs.at[0].set(jnp.nan),
        data=jax.tree.map(lambda x: x.at[0].set(jnp.nan) if jnp.issubdtype(
            x.dtype, jnp.floating) else x, first.env_state.data)))
    after, metrics = step(broken)
    assert float(metrics["train/skipped_updates"]) == 1.0
    assert float(metrics["train/diverged_envs"]) == 1.0
    assert tree_equal(after.params, broken.params)
    assert bool(jnp.all(jnp.isfinite(after.env_state.obs)))
    np.testing.assert_allclose(times(after)[1:], 32, rtol=1e-5)
    assert float(times(after)[0]) == 0.0 and int(after.clock[0]) == 0


@pytest.mark.quick_compile
@pytest.mark.slow
def test_ild_restarts_envs_that_strayed_from_the_demo(pendulum_demo):
    env = envs.make("pendulum-swingup")
    strict = dataclasses.replace(_segments(pendulum_demo), restart_distance=1e-3)
    state = ild.init(strict, env, ild.make_train_input(strict, env), jax.random.PRNGKey(0))
    step = jax.jit(functools.partial(ild.train_iteration, strict,
                                     ild.make_train_input(strict, env)))
    after, metrics = step(state)  # an untrained policy from random starts strays from the demo
    assert float(metrics["train/lost_envs"]) == 4.0 and float(metrics["train/strayed"]) > 1e-3
    np.testing.assert_array_equal(after.clock, 0)
    lenient = dataclasses.replace(strict, restart_distance=1e6)
    step = jax.jit(functools.partial(ild.train_iteration, lenient,
                                     ild.make_train_input(lenient, env)))
    after, metrics = step(state)
    assert float(metrics["train/lost_envs"]) == 0.0
    np.testing.assert_array_equal(after.clock, 16)


@pytest.mark.quick_compile
@pytest.mark.slow
def test_ild_trains_a_one_step_flow_policy_through_the_simulator(pendulum_demo):
    env = envs.make("pendulum-swingup")
    cfg = ild.ILDConfig(demo=pendulum_demo, policy="flow", num_envs=16, rollout_length=32,
                        demo_length=32, bc_steps=0, learning_rate=3e-3)  # same segment each step
    train_env, expert = ild.make_train_input(cfg, env)
    state = ild.init(cfg, env, (train_env, expert), jax.random.PRNGKey(0))
    step = jax.jit(functools.partial(ild.train_iteration, cfg, (train_env, expert)))
    # The same 16 rollouts (initial states and flow noise), scored before and after training.
    first, key = train_env.reset(jax.random.PRNGKey(1)), jax.random.PRNGKey(2)
    held_out = jax.jit(lambda s: ild.loss_fn(s.params, cfg, train_env, expert, s.replace(
        env_state=first, clock=jnp.zeros(16, jnp.int32)), key)[0])
    before = float(held_out(state))
    for _ in range(40):
        state, metrics = step(state)
        assert metrics["train/skipped_updates"] == 0.0
        assert float(metrics["train/grad_norm"]) > 0  # through the flow's one Euler step
    assert float(held_out(state)) < 0.97 * before
    action = ild.act(cfg, state, jnp.zeros((2, 3)))
    assert action.shape == (2, 1) and bool(jnp.all(jnp.abs(action) <= 1))


def test_ild_clones_executed_actions_inside_the_squash(tmp_path):
    # A Gaussian source records unclipped samples (here 2.5 and -3); the env executes them
    # clipped to +-1. The clone fits that, held where tanh still passes a gradient.
    rng = np.random.default_rng(0)
    actions = np.where(rng.random((64, 2)) < 0.5, 2.5, -3.0)
    actions[::4] = 0.3
    episode = {"obs": rng.normal(size=(64, 8)), "actions": actions, "rewards": np.zeros(64),
               "dones": np.zeros(64)}
    path = data.save(tmp_path / "wide.hdf5", data.from_episodes([episode], "reacher"))
    cfg = ild.ILDConfig(demo=path, rollout_length=64, bc_steps=2_000, learning_rate=3e-3)
    env = envs.make("reacher")
    expert = ild.load_expert(cfg, env)
    assert float(jnp.abs(expert.actions).max()) == 1.0
    params = ild.make_policy(cfg).init(jax.random.PRNGKey(0), env.observation_spec,
                                       env.action_spec)
    params = ild.clone_actions(cfg, params, expert)
    obs, _ = expert.unpadded()
    cloned = ild.policy_action(cfg, params, expert.obs_mean, expert.obs_scale, obs, None)
    assert float(jnp.abs(cloned).max()) < 0.985  # tanh' = 1 - a^2 > 0.03 everywhere
    np.testing.assert_allclose(cloned[::4], 0.3, atol=0.05)
    assert float(jnp.abs(cloned[1::4]).min()) > 0.9


@pytest.mark.quick_compile
@pytest.mark.slow
def test_ild_bc_weight_anchors_the_policy_to_the_demonstrated_actions(pendulum_demo):
    env = envs.make("pendulum-swingup")
    base = _segments(pendulum_demo)
    clone_after = {}
    for weight in (0.0, 10.0):
        cfg = dataclasses.replace(base, bc_weight=weight)
        train_env, expert = ild.make_train_input(cfg, env)
        state = ild.init(cfg, env, (train_env, expert), jax.random.PRNGKey(0))
        step = jax.jit(functools.partial(ild.train_iteration, cfg, (train_env, expert)))
        before = float(ild.clone_loss(cfg, state.params, expert))
        for _ in range(30):
            state, metrics = step(state)
        clone_after[weight] = float(ild.clone_loss(cfg, state.params, expert))
    assert np.isfinite(float(metrics["train/clone_loss"]))  # logged while training
    assert clone_after[10.0] < 0.5 * before and clone_after[10.0] < 0.5 * clone_after[0.0]
    with pytest.raises(ValueError, match="bc_weight must be >= 0"):
        dataclasses.replace(base, bc_weight=-1.0).validate()
