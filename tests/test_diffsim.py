"""Gradients through MJX rollouts: finite differences, remat, contacts, the NaN-skip path, and
ILD's objective."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from robojax import data, envs
from robojax.algos import diffsim, ild
from robojax.core.wrappers import VmapWrapper
from robojax.io.checkpoint import tree_equal


def _rollout_loss(cfg: diffsim.GradientConfig, env, length: int):
    """A smooth loss of a linear tanh policy's weights, through `length` physics steps."""
    batched = VmapWrapper(diffsim.differentiable(env), 4)
    first = jax.jit(batched.reset)(jax.random.PRNGKey(3))

    def loss(w):
        act = lambda obs, key: jnp.tanh(obs @ w)  # noqa: E731
        _, steps = diffsim.rollout(cfg, batched, act, first, jax.random.PRNGKey(0), length)
        return jnp.mean(jnp.sum(steps.final_obs**2, axis=-1))

    return loss


def test_gradient_matches_central_finite_differences_without_contacts():
    env = envs.make("pendulum-swingup")
    loss = jax.jit(_rollout_loss(diffsim.GradientConfig(remat=False), env, length=30))
    w = jax.random.normal(jax.random.PRNGKey(1), (3, 1)) * 0.5
    grad = jax.grad(loss)(w)
    eps = 1e-2
    for direction in jax.random.normal(jax.random.PRNGKey(2), (3, 3, 1)):
        direction = direction / jnp.linalg.norm(direction)
        fd = (loss(w + eps * direction) - loss(w - eps * direction)) / (2 * eps)
        analytic = jnp.vdot(grad, direction)
        # float32 physics: central differences agree to within 2% (+ a small absolute slack)
        np.testing.assert_allclose(analytic, fd, rtol=2e-2, atol=1e-3)


def test_remat_changes_memory_not_gradients():
    env = envs.make("pendulum-swingup")
    w = jnp.full((3, 1), 0.3)
    plain = jax.grad(_rollout_loss(diffsim.GradientConfig(remat=False), env, 32))(w)
    remat = jax.grad(_rollout_loss(diffsim.GradientConfig(remat=True), env, 32))(w)
    np.testing.assert_allclose(remat, plain, rtol=1e-5, atol=1e-7)
    assert diffsim.remat_segment(diffsim.GradientConfig(), 512) in (16, 32)


def test_gradients_through_100_contact_steps_are_finite():
    env = envs.make("hopper")
    w = jax.random.normal(jax.random.PRNGKey(0), (env.observation_spec.size,
                                                  env.action_spec.size)) * 0.3
    cfg = diffsim.GradientConfig(step_grad_clip=1.0, contact_grad_scale=0.5)
    grad = jax.jit(jax.grad(_rollout_loss(cfg, env, 100)))(w)
    assert bool(jnp.all(jnp.isfinite(grad)))
    assert float(jnp.abs(grad).max()) > 0


def test_differentiable_solver_leaves_the_forward_pass_bitwise_unchanged():
    env = envs.make("hopper")  # contacts: the solver's line search runs
    batched = VmapWrapper(env, 4)
    first = jax.jit(batched.reset)(jax.random.PRNGKey(0))
    w = jnp.full((env.observation_spec.size, env.action_spec.size), 0.1)

    def plain(state, _):
        nxt = batched.step(state, jnp.tanh(state.obs @ w))
        return nxt, nxt.obs

    act = lambda obs, key: jnp.tanh(obs @ w)  # noqa: E731
    cfg = diffsim.GradientConfig(remat=False)
    _, expected = jax.jit(lambda s: jax.lax.scan(plain, s, None, length=40))(first)
    _, steps = jax.jit(lambda s: diffsim.rollout(cfg, batched, act, s, jax.random.PRNGKey(1),
                                                 40))(first)
    assert bool(jnp.all(steps.final_obs == expected))


def test_truncation_and_clipping_shape_the_gradient():
    env = envs.make("pendulum-swingup")
    w = jnp.full((3, 1), 0.3)
    full = jax.grad(_rollout_loss(diffsim.GradientConfig(), env, 32))(w)
    cut = jax.grad(_rollout_loss(diffsim.GradientConfig(truncation_length=4), env, 32))(w)
    clipped = jax.grad(_rollout_loss(diffsim.GradientConfig(step_grad_clip=1e-3), env, 32))(w)
    assert not np.allclose(cut, full) and float(jnp.linalg.norm(cut)) > 0
    assert float(jnp.linalg.norm(clipped)) < float(jnp.linalg.norm(full))


def test_non_finite_gradient_skips_the_update_and_is_counted():
    optimizer = optax.adam(1e-2)
    params = {"w": jnp.ones(3)}
    opt_state = optimizer.init(params)
    bad = {"w": jnp.array([1.0, jnp.nan, 0.0])}
    new_params, new_opt_state, skipped = diffsim.guarded_update(optimizer, bad, opt_state, params)
    assert float(skipped) == 1.0
    assert bool(jnp.all(new_params["w"] == params["w"]))
    assert all(bool(jnp.all(a == b)) for a, b in zip(jax.tree.leaves(new_opt_state),
                                                     jax.tree.leaves(opt_state), strict=True))
    good = {"w": jnp.ones(3)}
    new_params, _, skipped = diffsim.guarded_update(optimizer, good, opt_state, params)
    assert float(skipped) == 0.0 and not bool(jnp.all(new_params["w"] == params["w"]))


def test_saturation_penalty_pulls_a_saturated_actor_back_and_ignores_one_in_range():
    from robojax.policies.gaussian import GaussianPolicy

    from robojax.algos import apg, shac
    from robojax.core.types import ArraySpec

    policy = GaussianPolicy((8,), "elu", -1.0)
    params = policy.init(jax.random.PRNGKey(0), ArraySpec((3,)), ArraySpec((2,)))
    obs = jax.random.normal(jax.random.PRNGKey(1), (32, 3))
    penalty = lambda p: diffsim.saturation_penalty(policy, p, obs, 2.0)  # noqa: E731
    assert [float(x) for x in penalty(params)] == [0.0, 0.0]
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(
        jax.grad(lambda p: penalty(p)[0])(params)))

    # A mean pushed to ~10 (tanh' ~ 1e-8: no gradient from any reward reaches it).
    bias = params["net"]["params"]["Dense_1"]["bias"]
    saturated = jax.tree.map(lambda x: x, params)
    saturated["net"]["params"]["Dense_1"]["bias"] = bias + jnp.array([10.0, -10.0])
    value, fraction = penalty(saturated)
    assert float(fraction) == 1.0 and float(value) == pytest.approx(64.0, rel=0.05)
    grads = jax.grad(lambda p: penalty(p)[0])(saturated)
    assert float(grads["log_std"].sum()) == 0.0  # only the mean is touched
    moved = jax.tree.map(lambda p, g: p - 0.01 * g, saturated, grads)
    assert float(jnp.abs(policy.mode(moved, obs)).mean()) < \
        float(jnp.abs(policy.mode(saturated, obs)).mean())

    for config in (apg.APGConfig, shac.SHACConfig):
        with pytest.raises(ValueError, match="saturation_cost must be >= 0"):
            config(saturation_cost=-1.0).validate()
        with pytest.raises(ValueError, match="saturation_bound must be > 0"):
            config(saturation_bound=0.0).validate()


def test_solver_only_runs_on_mjx_tasks():
    with pytest.raises(TypeError, match="registered env"):
        diffsim.differentiable(object())


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
                                         episode_length=100), env).horizon == 96
    assert expert.horizon == 1000
    windowed = ild.ILDConfig(demo=reacher_demo, rollout_length=100, window=2)
    narrow = ild.load_expert(windowed, env)
    assert float(ild.ild_loss(late, actions[:100, None], narrow, windowed)) > float(
        ild.ild_loss(late, actions[:100, None], expert, cfg))


def test_ild_bad_demos_are_clear_errors(reacher_demo, tmp_path):
    env = envs.make("reacher")
    with pytest.raises(ValueError, match="--demo"):
        ild.ILDConfig().validate()
    with pytest.raises(ValueError, match="horizon 100 must be a multiple of rollout_length 64"):
        ild.ILDConfig(demo=reacher_demo, horizon=100).validate()
    with pytest.raises(data.DemoFileError, match="recorded on 'reacher', not 'point-mass'"):
        ild.load_expert(ild.ILDConfig(demo=reacher_demo), envs.make("point-mass"))
    with pytest.raises(data.DemoFileError, match="rollout-length 1000"):
        ild.load_expert(ild.ILDConfig(demo=reacher_demo, rollout_length=2000), env)
    with pytest.raises(data.DemoFileError, match="--ild.horizon of at most 1000"):
        ild.load_expert(ild.ILDConfig(demo=reacher_demo, horizon=1024), env)
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


def test_ild_resume_after_kill_matches_uninterrupted_run(pendulum_demo, tmp_path,
                                                         kill_and_resume):
    import sys

    def cmd(run_dir):
        return [sys.executable, "-m", "robojax.cli", "train", "--algo", "ild", "--env",
                "pendulum-swingup", "--demo", str(pendulum_demo), "--run-dir", str(run_dir),
                "--ild.num-envs", "8", "--ild.rollout-length", "32", "--num-timesteps",
                str(8 * 32 * 40), "--ild.num-evals", "20", "--ild.num-eval-envs", "4",
                "--episode-length", "50", "--no-progress", "--no-video"]

    (full_state, full_step), (resumed_state, resumed_step) = kill_and_resume(cmd, tmp_path)
    assert full_step == resumed_step
    assert tree_equal(full_state, resumed_state)  # bitwise


def test_ild_segments_carry_envs_over_the_horizon_and_restart_diverged_ones(pendulum_demo):
    import functools

    env = envs.make("pendulum-swingup")
    cfg = ild.ILDConfig(demo=pendulum_demo, num_envs=4, rollout_length=16, horizon=48,
                        bc_steps=0)
    state = ild.init(cfg, env, jax.random.PRNGKey(0))
    train_input = ild.make_train_input(cfg, env)
    step = jax.jit(functools.partial(ild.train_iteration, cfg, train_input))
    times = lambda s: np.asarray(s.env_state.data.time) / env.dt  # noqa: E731 - in steps
    first, _ = step(state)  # segment 0 from fresh envs
    second, _ = step(first)  # segment 1 continues them
    np.testing.assert_allclose(times(first), 16, rtol=1e-5)
    np.testing.assert_allclose(times(second), 32, rtol=1e-5)
    np.testing.assert_array_equal(second.clock, 32)
    third, _ = step(second)  # the horizon is covered: fresh envs at the demo's start again
    np.testing.assert_array_equal(times(third), 0)
    np.testing.assert_array_equal(third.clock, 0)
    # An env that diverged mid-horizon restarts alone; the NaN gradient is skipped, not applied.
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


def test_ild_restarts_envs_that_strayed_from_the_demo(pendulum_demo):
    import functools

    env = envs.make("pendulum-swingup")
    strict = ild.ILDConfig(demo=pendulum_demo, num_envs=8, rollout_length=16, horizon=48,
                           bc_steps=0, restart_distance=1e-3)
    state = ild.init(strict, env, jax.random.PRNGKey(0))
    step = jax.jit(functools.partial(ild.train_iteration, strict,
                                     ild.make_train_input(strict, env)))
    after, metrics = step(state)  # an untrained policy from random starts strays from the demo
    assert float(metrics["train/lost_envs"]) == 8.0 and float(metrics["train/strayed"]) > 1e-3
    np.testing.assert_array_equal(after.clock, 0)
    lenient = dataclasses.replace(strict, restart_distance=1e6)
    step = jax.jit(functools.partial(ild.train_iteration, lenient,
                                     ild.make_train_input(lenient, env)))
    after, metrics = step(state)
    assert float(metrics["train/lost_envs"]) == 0.0
    np.testing.assert_array_equal(after.clock, 16)


def test_ild_trains_a_one_step_flow_policy_through_the_simulator(pendulum_demo):
    import functools

    env = envs.make("pendulum-swingup")
    cfg = ild.ILDConfig(demo=pendulum_demo, policy="flow", num_envs=16, rollout_length=32,
                        horizon=32, bc_steps=0, learning_rate=3e-3)  # same segment each step
    state = ild.init(cfg, env, jax.random.PRNGKey(0))
    train_env, expert = ild.make_train_input(cfg, env)
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


def test_ild_bc_weight_anchors_the_policy_to_the_demonstrated_actions(pendulum_demo):
    import functools

    env = envs.make("pendulum-swingup")
    base = ild.ILDConfig(demo=pendulum_demo, num_envs=4, rollout_length=16, horizon=48,
                         bc_steps=0, learning_rate=3e-3)
    clone_after = {}
    for weight in (0.0, 10.0):
        cfg = dataclasses.replace(base, bc_weight=weight)
        state = ild.init(cfg, env, jax.random.PRNGKey(0))
        train_env, expert = ild.make_train_input(cfg, env)
        step = jax.jit(functools.partial(ild.train_iteration, cfg, (train_env, expert)))
        before = float(ild.clone_loss(cfg, state.params, expert))
        for _ in range(30):
            state, metrics = step(state)
        clone_after[weight] = float(ild.clone_loss(cfg, state.params, expert))
    assert np.isfinite(float(metrics["train/clone_loss"]))  # logged while training
    assert clone_after[10.0] < 0.5 * before and clone_after[10.0] < 0.5 * clone_after[0.0]
    with pytest.raises(ValueError, match="bc_weight must be >= 0"):
        dataclasses.replace(base, bc_weight=-1.0).validate()
