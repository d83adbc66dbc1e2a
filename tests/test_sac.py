import collections
import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from robojax.envs import make as make_env

from robojax import algos, cli
from robojax.algos import critics, sac
from robojax.data import demos as demo_files
from robojax.io import checkpoint

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py), but for learning

TINY = sac.SACConfig(num_envs=4, batch_size=8, learning_starts=8, buffer_capacity=64,
                     grad_updates_per_step=2, policy_hidden_sizes=(8,),
                     critic_hidden_sizes=(4,), num_eval_envs=2, episode_length=20)


def _constant_critics(ensemble: critics.Ensemble, values: list[float]) -> dict:
    """Ensemble parameters whose critic e outputs `values[e]` everywhere (zero weights, the
    output bias set): Q values worked by hand."""
    params = ensemble.init(jax.random.PRNGKey(0), jnp.zeros(3), jnp.zeros(1))
    params = jax.tree.map(jnp.zeros_like, params)
    dense = params["params"]["MLP_0"]
    last = f"Dense_{len(ensemble.hidden_sizes)}"
    dense[last]["bias"] = jnp.asarray(values, jnp.float32)[:, None]
    return params


def _learner(cfg: sac.SACConfig, target_values: list[float]) -> sac.Learner:
    env = make_env("pendulum-swingup")
    state = sac.init(cfg, env, sac.make_train_input(cfg, env), jax.random.PRNGKey(0))
    return state.learner.replace(
        target_critic=_constant_critics(cfg.critic_ensemble(), target_values),
        log_alpha=jnp.log(jnp.float32(0.5)))


def test_td_target_worked_by_hand_bootstraps_through_time_limits():
    cfg = dataclasses.replace(TINY, num_critics=4, target_min_over=4, discount=0.9,
                              reward_scaling=2.0, backup_entropy=False)
    learner = _learner(cfg, [3.0, 1.0, 5.0, 2.0])
    # Step 0 goes on, step 1 hit the time limit (bootstraps all the same), step 2 terminated.
    batch = {"obs": jnp.zeros((3, 3)), "action": jnp.zeros((3, 1)),
             "reward": jnp.array([1.0, 0.5, 0.25]), "discount": jnp.array([1.0, 1.0, 0.0]),
             "next_obs": jnp.zeros((3, 3))}
    target = sac.td_target(cfg, learner, batch, jax.random.PRNGKey(3))
    # min over all four target critics = 1: 2 * r + 0.9 * discount * 1
    np.testing.assert_allclose(target, [2.0 + 0.9, 1.0 + 0.9, 0.5], rtol=1e-6)


def test_td_target_takes_the_minimum_of_a_random_pair():
    cfg = dataclasses.replace(TINY, num_critics=4, target_min_over=2, discount=0.5,
                              backup_entropy=False)
    learner = _learner(cfg, [3.0, 1.0, 5.0, 2.0])
    batch = {"obs": jnp.zeros((1, 3)), "action": jnp.zeros((1, 1)), "reward": jnp.zeros(1),
             "discount": jnp.ones(1), "next_obs": jnp.zeros((1, 3))}
    target = jax.jit(jax.vmap(lambda k: sac.td_target(cfg, learner, batch, k)[0]))(
        jax.random.split(jax.random.PRNGKey(0), 3000))
    # The six pairs' minima: 1 for the three pairs holding critic 1, 2 for (3, 2) and (5, 2),
    # 3 for (3, 5); each pair equally likely.
    counts = collections.Counter(np.round(np.asarray(target) / 0.5).astype(int).tolist())
    assert set(counts) == {1, 2, 3}
    for value, pairs in ((1, 3), (2, 2), (3, 1)):
        assert abs(counts[value] / 3000 - pairs / 6) < 0.04, counts


def test_td_target_subtracts_the_entropy_term():
    cfg = dataclasses.replace(TINY, num_critics=2, discount=1.0)
    learner = _learner(cfg, [4.0, 4.0])
    batch = {"obs": jnp.zeros((1, 3)), "action": jnp.zeros((1, 1)), "reward": jnp.zeros(1),
             "discount": jnp.ones(1), "next_obs": jnp.zeros((1, 3))}
    key = jax.random.PRNGKey(7)
    with_entropy = sac.td_target(cfg, learner, batch, key)
    without = sac.td_target(dataclasses.replace(cfg, backup_entropy=False), learner, batch, key)
    key_action, _ = jax.random.split(key)
    _, log_prob = sac.make_actor(cfg).sample_and_log_prob(learner.actor, batch["next_obs"],
                                                          key_action)
    np.testing.assert_allclose(without, [4.0])
    np.testing.assert_allclose(with_entropy, 4.0 - 0.5 * log_prob, rtol=1e-5)


def test_hl_gauss_projects_a_scalar_onto_the_support_and_back():
    edges, centers = critics.hl_gauss_support(-10.0, 10.0, 41)
    sigma = 0.75 * float(edges[1] - edges[0])
    targets = jnp.array([-7.3, 0.0, 2.5, 8.1])
    histogram = critics.hl_gauss_histogram(targets, edges, sigma)
    np.testing.assert_allclose(histogram.sum(-1), 1.0, rtol=1e-5)
    values = critics.expected_value(jnp.log(histogram + 1e-30), centers)
    np.testing.assert_allclose(values, targets, atol=1e-3)
    # A bin's mass is the Gaussian's over it: N(0, sigma) puts ~0.495 in the centre bin
    # [-0.25, 0.25] when sigma = 0.375 (erf(0.25 / (0.375 sqrt 2)) = 0.495).
    assert abs(float(histogram[1, 20]) - 0.4950) < 1e-3
    # Targets beyond the range are clipped to its edge, where half the Gaussian remains:
    # its mean lies sigma * sqrt(2 / pi) = 0.30 inside.
    beyond = critics.hl_gauss_histogram(jnp.array([50.0, 10.0]), edges, sigma)
    np.testing.assert_allclose(beyond[0], beyond[1])
    value = critics.expected_value(jnp.log(beyond[0] + 1e-30), centers)
    assert abs(float(value) - (10.0 - sigma * np.sqrt(2 / np.pi))) < 0.05


def test_hl_gauss_loss_is_smallest_at_the_target_histogram():
    ensemble = critics.Ensemble("hl_gauss", num_critics=1, num_bins=21, value_range=(0.0, 1.0))
    edges, _ = ensemble.support()
    target = jnp.array([0.3])
    sigma = 0.75 * float(edges[1] - edges[0])
    logits = lambda y: jnp.log(critics.hl_gauss_histogram(y, edges, sigma) + 1e-12)[None]
    best = ensemble.loss(logits(target), target)
    for other in (0.25, 0.35, 0.6):
        assert best < ensemble.loss(logits(jnp.array([other])), target)
    grad = jax.grad(lambda x: ensemble.loss(x, target))(logits(target))
    np.testing.assert_allclose(grad, 0.0, atol=1e-6)


def test_sac_iterations_fill_the_buffer_then_update():
    env = make_env("pendulum-swingup")
    cfg = dataclasses.replace(TINY, critic="hl_gauss")
    train_input = sac.make_train_input(cfg, env)
    state = sac.init(cfg, env, train_input, jax.random.PRNGKey(0))
    step = jax.jit(lambda s: sac.train_iteration(cfg, train_input, s))
    state, metrics = step(state)  # 4 transitions: still warming up, no update
    assert int(state.buffer.size) == 4 and float(metrics["loss/critic"]) == 0.0
    before = state.learner
    for _ in range(3):
        state, metrics = step(state)
    assert int(state.buffer.size) == 16 and float(metrics["buffer/fill"]) == 16 / 64
    assert float(metrics["loss/critic"]) > 0 and np.isfinite(float(metrics["loss/actor"]))
    changed = lambda a, b: not np.allclose(jax.tree.leaves(a)[0], jax.tree.leaves(b)[0])
    assert changed(before.critic, state.learner.critic)
    assert changed(before.target_critic, state.learner.target_critic)
    assert changed(before.actor, state.learner.actor)
    assert float(before.log_alpha) != float(state.learner.log_alpha)


def test_deterministic_eval_false_acts_with_squashed_samples():
    env = make_env("pendulum-swingup")
    state = sac.init(TINY, env, sac.make_train_input(TINY, env), jax.random.PRNGKey(0))
    sampled = dataclasses.replace(TINY, deterministic_eval=False)
    env_state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), 3))
    key = jax.random.PRNGKey(2)
    obs = sac.normalize.observations(TINY, state.obs_stats, env_state.obs)
    mean, log_std = sac.make_actor(TINY).mean_and_log_std(state.learner.actor, obs)

    def controller_action(cfg):
        ctrl = sac.controller(cfg, state)
        return ctrl.step(ctrl.init(env_state), env_state, key)[0]

    np.testing.assert_allclose(controller_action(TINY), jnp.tanh(mean), rtol=1e-6)
    draw = jax.random.normal(key, mean.shape)
    np.testing.assert_allclose(controller_action(sampled),
                               jnp.tanh(mean + jnp.exp(log_std) * draw), rtol=1e-6)
    program = sac.program(sampled, state)
    assert program.noise["action"].shape == (1,)
    np.testing.assert_allclose(program.fn(env_state.obs[:, None], {"action": draw})[:, 0],
                               jnp.tanh(mean + jnp.exp(log_std) * draw), rtol=1e-6)


def test_n_step_transitions_reach_the_buffer_and_the_demos(tmp_path):
    """One iteration of 2 steps with n_step=2: the first step's transitions hold its reward
    plus the discounted second's and bootstrap from where the second ends; demonstrations get
    the same sums."""
    env = make_env("pendulum-swingup")
    path = tmp_path / "demos.hdf5"
    cli.main(["collect", "--env", "pendulum-swingup", "--episodes", "1", "--out", str(path)])
    cfg = dataclasses.replace(TINY, n_step=2, rollout_length=2, dataset=path, discount=0.5)
    train_input = sac.make_train_input(cfg, env)
    state = sac.init(cfg, env, train_input, jax.random.PRNGKey(0))
    state, metrics = jax.jit(lambda s: sac.train_iteration(cfg, train_input, s))(state)
    data = jax.tree.map(np.asarray, state.buffer.data)
    first, second = (jax.tree.map(lambda x, i=i: x[4 * i:4 * i + 4], data) for i in (0, 1))
    np.testing.assert_array_equal(first["next_obs"], second["next_obs"])
    np.testing.assert_allclose(first["discount"], 0.5)
    np.testing.assert_allclose(second["discount"], 1.0)
    first_rewards = 2 * float(metrics["train/reward"]) - second["reward"].mean()  # 1-step mean
    assert first["reward"].mean() == pytest.approx(first_rewards + 0.5 * second["reward"].mean(),
                                                   abs=1e-5)
    recorded = demo_files.load(path)
    demos = jax.tree.map(np.asarray, train_input.demos.data)
    np.testing.assert_allclose(demos["reward"][0], recorded.rewards[0] + 0.5 * recorded.rewards[1],
                               rtol=1e-6)
    np.testing.assert_array_equal(demos["next_obs"][0], recorded.obs[2])


def test_reset_refresh_and_pool_reach_the_training_envs():
    """reset_refresh=0 with reset_pool=1 restarts each env from one state (Brax's autoreset),
    with the default pool from its pool's starts in turn; 1 redraws the starts every step:
    episodes 2 and 3 (3 steps each) start alike only with one start per env."""
    env = make_env("pendulum-swingup")

    def restarts(refresh: int, pool: int) -> list[np.ndarray]:
        cfg = dataclasses.replace(TINY, reset_refresh=refresh, reset_pool=pool, episode_length=3)
        train_env = sac.make_train_input(cfg, env).env
        state, starts = train_env.reset(jax.random.PRNGKey(0)), []
        for _ in range(6):
            state = train_env.step(state, jnp.zeros((4, 1)))
            if bool(state.done.all()):
                starts.append(np.asarray(state.obs))
        return starts

    fixed, pooled, redrawn = restarts(0, 1), restarts(0, sac.SACConfig.reset_pool), restarts(1, 1)
    assert len(fixed) == len(pooled) == len(redrawn) == 2
    np.testing.assert_array_equal(fixed[0], fixed[1])
    np.testing.assert_array_equal(pooled[0], fixed[0])  # the pool's first start is the same
    assert not np.allclose(pooled[0], pooled[1])
    assert not np.allclose(redrawn[0], redrawn[1])
    # The pool serves reset_refresh=0 only: with a redraw it is not drawn at all.
    np.testing.assert_array_equal(np.stack(restarts(1, 4)), np.stack(redrawn))
    with pytest.raises(ValueError, match="reset_pool must be >= 1"):
        dataclasses.replace(TINY, reset_pool=0).validate()


def test_rlpd_is_sac_with_its_own_defaults():
    rlpd = algos.get("rlpd")
    assert rlpd.train_iteration is sac.train_iteration and rlpd.Config is sac.RLPDConfig
    cfg = rlpd.Config()
    assert (cfg.num_critics, cfg.target_min_over, cfg.grad_updates_per_step) == (10, 2, 20)
    assert cfg.critic_layer_norm and cfg.actor_q == "mean"


@pytest.mark.parametrize("change, message", [
    ({"grad_updates_per_step": 0}, "update-to-data ratio"),
    ({"buffer_capacity": 4}, "smaller than one batch"),
    ({"critic": "huber"}, "critic must be one of"),
    ({"target_min_over": 3}, "target_min_over"),
    ({"demo_fraction": 1.0}, "demo_fraction"),
    ({"n_step": 3}, "set rollout_length to at least 3"),
])
def test_bad_configs_are_named_errors(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TINY, **change).validate()


def _demo_file(tmp_path, env_name: str, obs_size: int):
    episode = {"obs": np.zeros((5, obs_size)), "actions": np.zeros((5, 1)),
               "rewards": np.zeros(5), "dones": np.eye(5)[-1]}
    return demo_files.save(tmp_path / "demos.hdf5",
                           demo_files.from_episodes([episode], env_name))


def test_demos_from_another_env_or_size_are_named_errors(tmp_path):
    env = make_env("pendulum-swingup")
    other = dataclasses.replace(TINY, dataset=_demo_file(tmp_path, "cartpole-swingup", 3))
    with pytest.raises(demo_files.DemoFileError, match="recorded on 'cartpole-swingup'"):
        sac.make_train_input(other, env)
    wrong_size = dataclasses.replace(TINY, dataset=_demo_file(tmp_path, "pendulum-swingup", 5))
    with pytest.raises(demo_files.DemoFileError, match="sizes 5/1"):
        sac.make_train_input(wrong_size, env)


def test_demos_fill_their_own_buffer_and_take_their_share(tmp_path):
    env = make_env("pendulum-swingup")
    path = tmp_path / "demos.hdf5"
    cli.main(["collect", "--env", "pendulum-swingup", "--episodes", "2", "--out", str(path)])
    cfg = dataclasses.replace(TINY, dataset=path, demo_fraction=0.25)
    train_input = sac.make_train_input(cfg, env)
    demos = demo_files.load(path)
    # The expert's episodes run to the time limit: each loses its last step (no next obs).
    assert int(train_input.demos.size) == demos.num_steps - 2
    state = sac.init(cfg, env, train_input, jax.random.PRNGKey(0))
    batch = sac.sample_batch(cfg, train_input, state, jax.random.PRNGKey(1))
    assert batch["obs"].shape == (8, env.observation_spec.size)
    # 6 online (the empty buffer's zeros), then 2 demonstration transitions.
    assert not np.any(batch["reward"][:6]) and np.all(np.asarray(batch["discount"][6:]) == 1)


def _sac_cmd(run_dir, *extra: str) -> list[str]:
    return [sys.executable, "-m", "robojax.cli", "train", "--algo", "sac", "--env",
            "fast_env:fast", "--run-dir", str(run_dir), "--num-envs", "8",
            "--num-timesteps", "4000", "--episode-length", "100", "--sac.batch-size", "64",
            "--sac.learning-starts", "256", "--sac.buffer-capacity", "8192",
            "--sac.grad-updates-per-step", "2", "--sac.num-evals", "5",
            "--sac.num-eval-envs", "2", "--sac.policy-hidden-sizes", "32", "32",
            "--sac.critic-hidden-sizes", "32", "32", "--no-video", "--no-progress", *extra]


@pytest.mark.slow
def test_sac_resume_after_kill_matches_uninterrupted_run(tmp_path, kill_and_resume):
    (full, full_step), (resumed, resumed_step) = kill_and_resume(_sac_cmd, tmp_path)
    assert full_step == resumed_step
    assert int(resumed.buffer.size) == 4000  # the buffer went into the checkpoint and back
    assert checkpoint.tree_equal(full, resumed)  # bitwise: buffer, targets, optimizers, RNG
    cli.main(["eval", str(tmp_path / "killed"), "--num-episodes", "4", "--no-video"])
    assert (tmp_path / "killed" / "eval.json").exists()


@pytest.mark.quick_compile(False)  # learning: at level 1
@pytest.mark.slow
def test_sac_learns_point_mass(tmp_path):
    from robojax.io.metrics import read_metrics

    run = tmp_path / "run"
    # 30,000 updates of 64-wide networks: about 20 s on 2 cores. Seeds 0-2 go from 87-201
    # (the untrained policy) to 975-980. (On pendulum-swingup a third of the seeds still
    # had not found the swing-up at 120,000 steps.)
    cli.main(["train", "--algo", "sac", "--env", "point-mass", "--run-dir", str(run),
              "--num-envs", "16", "--num-timesteps", "60000", "--sac.batch-size", "128",
              "--sac.learning-starts", "2000", "--sac.num-evals", "2",
              "--sac.num-eval-envs", "16", "--sac.policy-hidden-sizes", "64", "64",
              "--sac.critic-hidden-sizes", "64", "64", "--no-video", "--no-progress"])
    rows = read_metrics(run / "metrics.csv")
    assert rows[0]["eval/episode_reward"] < 300
    assert rows[-1]["eval/episode_reward"] > 900, rows[-1]
    assert 0 < rows[-1]["sac/temperature"] < 1 and rows[-1]["buffer/fill"] > 0
