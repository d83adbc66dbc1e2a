"""Checkpoints: exact round trip, torn writes skipped, incompatible configs refused."""

import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from robojax import envs
from robojax.algos import ppo
from robojax.io import checkpoint

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)

SMALL = dict(num_envs=8, rollout_length=4, num_minibatches=2)


def test_round_trip_skips_torn_checkpoint_and_refuses_other_configs(tmp_path):
    env = envs.make("point-mass")
    cfg = ppo.PPOConfig(**SMALL)
    state = ppo.init(cfg, env, ppo.make_train_input(cfg, env), jax.random.PRNGKey(0))
    checkpoint.save(tmp_path, 3, state)
    (tmp_path / "7").mkdir()  # a newer step a kill left without its files
    (tmp_path / "7" / "leaves").mkdir()
    (tmp_path / "9.orbax-checkpoint-tmp-1").mkdir()
    restored, step = checkpoint.restore(tmp_path, state)
    assert step == 3 and checkpoint.tree_equal(restored, state)

    narrow = ppo.PPOConfig(**SMALL, policy_hidden_sizes=(32,))
    other = ppo.init(narrow, env, ppo.make_train_input(narrow, env), jax.random.PRNGKey(0))
    with pytest.raises(checkpoint.IncompatibleCheckpointError, match=r"Dense_0.*\(5|64"):
        checkpoint.restore(tmp_path, other)


def test_a_checkpoint_written_before_a_config_field_existed_still_restores(tmp_path):
    env = envs.make("point-mass")
    cfg = ppo.PPOConfig(**SMALL)
    state = ppo.init(cfg, env, ppo.make_train_input(cfg, env), jax.random.PRNGKey(0))
    older = {"env": "point-mass", "algo_config": {"num_envs": 8, "human": {"threshold": 0.5}}}
    checkpoint.save(tmp_path, 3, state, identity=older)
    newer = {"env": "point-mass", "algo_config": {"num_envs": 8, "clip": 0.2,
                                                  "human": {"threshold": 0.5, "trust": None}}}
    assert checkpoint.restore(tmp_path, state, identity=newer)[1] == 3
    # A field the record holds still has to agree, however deep, and none may go missing.
    for other in ({**newer, "algo_config": {**newer["algo_config"], "human": {"trust": None}}},
                  {**newer, "algo_config": {"num_envs": 8, "human": {"threshold": 0.7}}}):
        with pytest.raises(checkpoint.ForeignCheckpointError, match="algo_config"):
            checkpoint.restore(tmp_path, state, identity=other)


def test_background_writes_hold_the_state_as_it_was_when_written(tmp_path):
    state = {"x": jax.numpy.arange(4.0), "n": jax.numpy.int32(7)}
    expected = jax.tree.map(np.array, state)
    bump = jax.jit(lambda s: jax.tree.map(lambda v: v + 1, s), donate_argnums=0)
    with checkpoint.Writer(tmp_path) as writer:
        for step in range(4):
            writer.write(step, state)
            state = bump(state)  # donates the buffers just written from
    assert checkpoint.steps(tmp_path) == [1, 2, 3]  # the last 3 kept
    restored, step = checkpoint.restore(tmp_path, state)
    assert step == 3
    assert checkpoint.tree_equal(restored, jax.tree.map(lambda v: v + 3, expected))


def test_restore_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished checkpoint"):
        checkpoint.restore(tmp_path / "missing", {"x": jax.numpy.zeros(2)})


def _train_cmd(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "robojax.cli", "train", "--env", "fast_env:fast",
            "--run-dir", str(run_dir), "--num-envs", "64", "--num-timesteps", "40960",
            "--ppo.unroll-length", "16", "--ppo.num-minibatches", "4", "--ppo.num-evals", "10",
            "--ppo.num-eval-envs", "4", "--episode-length", "100", "--no-video",
            "--no-progress", *extra]


@pytest.mark.slow
def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, kill_and_resume):
    def torn_save(run_dir):  # a kill during a save leaves a temporary directory: ignored
        (run_dir / "checkpoints" / "999.orbax-checkpoint-tmp-0").mkdir()

    (full_state, full_step), (resumed_state, resumed_step) = kill_and_resume(
        _train_cmd, tmp_path, after_kill=torn_save)
    assert full_step == resumed_step
    assert checkpoint.tree_equal(full_state.params, resumed_state.params)  # bitwise
    assert checkpoint.tree_equal(full_state, resumed_state)
