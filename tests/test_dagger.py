"""HG-DAgger (`--algo dagger`): the takeover aggregate and training on it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from robojax.envs import make as make_env
from robojax.policies.chunking import ChunkConfig

from robojax import algos
from robojax.algos import bc
from robojax.data import aggregate
from robojax.hil import human

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)


def test_held_stretches_end_at_handbacks_episode_starts_and_envs():
    held = jnp.array([0, 1, 1, 0, 1, 1, 1, 1], bool)
    breaks = jnp.array([1, 0, 0, 0, 1, 0, 1, 0], bool)
    start, end = aggregate.segments(held, breaks)
    rows = np.flatnonzero(held)
    np.testing.assert_array_equal(np.asarray(start)[rows], [1, 1, 4, 4, 6, 6])
    np.testing.assert_array_equal(np.asarray(end)[rows], [3, 3, 6, 6, 8, 8])


def test_rollouts_fill_a_ring_and_windows_come_from_held_rows():
    agg = aggregate.init(12, obs_size=1, action_size=1, block=6)
    # Two rollouts of 3 steps x 2 envs; obs = 10 * env + step.
    obs = (jnp.arange(3)[:, None] + 10 * jnp.arange(2)[None, :])[..., None].astype(jnp.float32)
    held = jnp.array([[1, 0], [1, 1], [0, 1]], bool)  # env 0: steps 0-1, env 1: steps 1-2
    no_restart = jnp.zeros((3, 2), bool)
    agg = aggregate.add_rollout(agg, obs, obs, held, no_restart)
    assert int(agg.size) == 4 and int(agg.write) == 6
    batch = aggregate.sample_batch(agg, jax.random.PRNGKey(0), 200, n_obs_steps=2, horizon=3)
    centres = set(np.asarray(batch["obs"][:, -1, 0]).tolist())
    assert centres == {0.0, 1.0, 11.0, 12.0}  # only held rows
    # A window repeats its stretch's edges: env 1's stretch is steps 1-2.
    for window_obs, window_act in zip(batch["obs"][:, :, 0], batch["actions"][:, :, 0],
                                      strict=True):
        if window_obs[-1] == 11.0:
            np.testing.assert_array_equal(window_obs, [11, 11])
            np.testing.assert_array_equal(window_act, [11, 11, 12])
    agg = aggregate.add_rollout(agg, obs, obs, ~held, no_restart)
    agg = aggregate.add_rollout(agg, obs, obs, jnp.zeros((3, 2), bool), no_restart)
    assert int(agg.write) == 6 and int(agg.size) == 2  # the first block was overwritten
    with pytest.raises(ValueError, match="multiple of one rollout"):
        aggregate.init(10, 1, 1, block=6)


TINY = bc.HGDaggerConfig(
    policy="gaussian", num_envs=4, rollout_length=10, grad_steps_per_iteration=2,
    batch_size=16, num_grad_steps=20, num_eval_envs=2, aggregate_capacity=120,
    chunks=ChunkConfig(n_obs_steps=1, horizon=1, n_action_steps=1),
    human=human.HumanConfig(threshold=0.3, reaction_delay=1, min_takeover=3, action_noise=0.0))


@pytest.fixture(scope="module")
def demos_file(tmp_path_factory):
    from robojax.data.collect import collect_to_file

    out = tmp_path_factory.mktemp("dagger") / "demos.hdf5"
    collect_to_file("point-mass", "solver", 4, out, env_config={"episode_length": 50})
    return out


@pytest.mark.slow
def test_the_humans_takeovers_join_the_training_data(demos_file):
    cfg = bc.HGDaggerConfig(**{**TINY.__dict__, "dataset": demos_file})
    env = make_env("point-mass")
    data = bc.make_train_input(cfg, env)
    state = bc.init(cfg, env, data, jax.random.PRNGKey(0))
    step = jax.jit(lambda s: bc.train_iteration(cfg, data, s))
    held = 0
    for _ in range(3):
        state, metrics = step(state)
        held += int(metrics["hil/intervention_steps"])
    agg = state.aggregate
    assert 0 < held == int(agg.size) == int(np.asarray(agg.held).sum())
    assert int(metrics["env_steps"]) == 3 * 40 and int(metrics["dagger/takeover_rows"]) == held
    assert algos.get("dagger").Config is bc.HGDaggerConfig
    with pytest.raises(ValueError, match="learns no value"):
        bc.HGDaggerConfig(dataset=demos_file, human=human.HumanConfig(rule="value")).validate()


@pytest.mark.slow
def test_a_dagger_run_learns_point_mass(tmp_path, demos_file):
    from robojax import cli
    from robojax.io.metrics import read_metrics

    run_dir = tmp_path / "dagger"
    cli.main(["train", "--algo", "dagger", "--env", "point-mass", "--run-dir", str(run_dir),
              "--dataset", str(demos_file), "--policy", "gaussian", "--num-envs", "8",
              "--dagger.num-grad-steps", "400", "--dagger.grad-steps-per-iteration", "50",
              "--dagger.num-evals", "1", "--dagger.num-eval-envs", "16",
              "--dagger.rollout-length", "20", "--dagger.batch-size", "64",
              "--dagger.chunks.horizon", "1", "--dagger.chunks.n-obs-steps", "1",
              "--dagger.chunks.n-action-steps", "1", "--no-video", "--no-progress"])
    rows = read_metrics(run_dir / "metrics.csv")
    assert rows[-1]["eval/episode_reward"] > 900  # the solver's 50-step demos reach ~990/1000
    assert rows[-1]["dagger/takeover_rows"] > 0
    assert (run_dir / "interventions.png").stat().st_size > 0
