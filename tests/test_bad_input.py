"""Bad input ends in a clear error that names the problem and the fix, before anything is
written; nothing is silently wrong."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robojax import cli, envs
from robojax.data import demos as demo_files

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)


def _episode(n: int = 5) -> dict:
    return {"obs": np.zeros((n, 3)), "actions": np.zeros((n, 1)), "rewards": np.zeros(n),
            "dones": np.eye(n)[-1]}


def _demo_file(tmp_path, poison: str | None = None):
    episodes = [_episode(), _episode()]
    if poison:
        episodes[1][poison][2] = np.nan
    return demo_files.save(tmp_path / "demos.hdf5",
                           demo_files.from_episodes(episodes, "pendulum-swingup"))


@pytest.mark.parametrize("key", ["obs", "actions", "rewards"])
def test_a_nan_in_the_demonstrations_names_episode_key_and_step(tmp_path, key):
    path = _demo_file(tmp_path, poison=key)
    with pytest.raises(demo_files.DemoFileError,
                       match=f"data/demo_1/{key} is not finite at step 2.*drop_nonfinite"):
        demo_files.load(path)
    kept = demo_files.load(path, drop_nonfinite=True)  # or leave the episode out, warned
    assert kept.num_episodes == 1 and np.all(np.isfinite(kept.obs))


@pytest.mark.parametrize("argv, message", [
    (["--num-seeds", "0"], "--num-seeds must be >= 1"),
    (["--keep-checkpoints", "-1"], "--keep-checkpoints must be >= 0 \\(0 keeps every"),
    (["--env", "pendulum-swingupp"], "Did you mean 'pendulum-swingup'"),
    (["--env-config", "episode_lenght=5"], "has no config field"),
    (["--eval-env-config", "bogus=1"], "has no config field"),
    (["--num-timesteps", "0"], "num_timesteps must be >= 1"),
    (["--num-timesteps", "-100"], "num_timesteps must be >= 1"),
    (["--num-envs", "-4"], "num_envs must be >= 1"),
])
def test_bad_run_flags_fail_before_a_run_directory_exists(tmp_path, argv, message):
    run = tmp_path / "run"
    with pytest.raises((ValueError, KeyError, TypeError), match=message):
        cli.main(["train", "--env", "pendulum-swingup", "--run-dir", str(run), *argv])
    assert not run.exists()


def test_register_checks_what_it_is_given():
    from robojax.envs.pendulum import Pendulum, default_config

    for env_class in (42, dict, None):
        with pytest.raises(TypeError, match="env_class must be a subclass of"):
            envs.register("weird", env_class, default_config)
    with pytest.raises(TypeError, match="default_config must be a function"):
        envs.register("weird", Pendulum, 43)
    with pytest.raises(TypeError, match="solver must be None or a function"):
        envs.register("weird", Pendulum, default_config, solver="solve")
    assert "weird" not in envs.names()


@pytest.mark.slow
def test_the_reward_sees_the_clipped_action_the_physics_executes():
    env = envs.make("pusher")
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))  # eagerly, MJX would compile op by op
    step = jax.jit(env.step)
    wild, edge = step(state, jnp.array([100.0, -100.0])), step(state, jnp.array([1.0, -1.0]))
    np.testing.assert_array_equal(wild.data.qpos, edge.data.qpos)
    assert float(wild.metrics["reward/control"]) == float(edge.metrics["reward/control"]) == 2.0
    assert float(wild.reward) == float(edge.reward)


def test_nonfinite_count_covers_the_learner_not_the_envs():
    from robojax.algos.base import RolloutState
    from robojax.train import nonfinite_count

    state = RolloutState(params={"w": jnp.array([1.0, jnp.nan, jnp.inf])}, opt_state=(),
                         obs_stats=(), env_state={"qpos": jnp.array([jnp.nan])},
                         key=jax.random.PRNGKey(0), iteration=jnp.zeros((), jnp.int32))
    assert int(nonfinite_count(state)) == 2  # the env's NaN is the NaN guard's business


@pytest.mark.slow
def test_a_diverging_run_stops_with_the_iteration_and_keeps_its_good_checkpoints(tmp_path):
    from robojax.train import NonFiniteTrainingError

    run = tmp_path / "run"
    with pytest.raises(NonFiniteTrainingError, match="diverged.*by iteration .*lower learning"):
        cli.main(["train", "--env", "point-mass", "--run-dir", str(run), "--num-envs", "16",
                  "--num-timesteps", "4096", "--ppo.rollout-length", "16",
                  "--ppo.num-minibatches", "4", "--ppo.num-evals", "4", "--ppo.num-eval-envs",
                  "4", "--episode-length", "20", "--ppo.learning-rate", "1e38",
                  "--ppo.max-grad-norm", "1e38", "--no-progress", "--no-video"])
    from robojax.io.metrics import read_metrics

    rows = read_metrics(run / "metrics.csv")
    assert all(np.isfinite(r.get("loss/policy", 0.0)) for r in rows)  # nothing broken logged


def test_sac_keeps_diverged_steps_out_of_its_buffer():
    from robojax.algos import sac
    from robojax.core.types import State

    def state(obs, reward=0.0, terminated=False):
        zero = jnp.zeros(2)
        return State(data=None, obs=obs, reward=jnp.full(2, reward), done=jnp.full(2, terminated),
                     truncated=jnp.zeros(2, bool), step=zero, key=None, metrics={},
                     extras={"final_obs": obs})

    before = state(jnp.ones((2, 3)))
    after = state(jnp.array([[2.0, 2.0, 2.0], [jnp.nan, 0.0, 0.0]]), reward=1.0)
    t = sac._transition(before, jnp.zeros((2, 1)), after)
    np.testing.assert_array_equal(t["discount"], [1.0, 0.0])
    np.testing.assert_array_equal(t["reward"], [1.0, 0.0])
    np.testing.assert_array_equal(t["next_obs"], [[2.0, 2.0, 2.0], [1.0, 1.0, 1.0]])


SMALL_RUN = ["--env", "point-mass", "--num-envs", "16", "--num-timesteps", "4096",
             "--ppo.rollout-length", "16", "--ppo.num-minibatches", "4", "--ppo.num-evals", "4",
             "--ppo.num-eval-envs", "4", "--episode-length", "20", "--no-progress", "--no-video"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A finished point-mass PPO run with three checkpoints (iterations 8, 12, 16)."""
    run = tmp_path_factory.mktemp("small") / "run"
    cli.main(["train", "--run-dir", str(run), *SMALL_RUN])
    return run


def _copy(run, tmp_path):
    import shutil

    return Path(shutil.copytree(run, tmp_path / "copy"))


def _largest_data_file(checkpoint_dir: Path) -> Path:
    return max((p for p in checkpoint_dir.rglob("d/*") if p.is_file()),
               key=lambda p: p.stat().st_size)


@pytest.mark.slow
@pytest.mark.xdist_group("small_run")
def test_a_damaged_checkpoint_is_skipped_for_the_newest_intact_one(small_run, tmp_path, caplog,
                                                                   flip_bytes):
    from robojax.io import checkpoint
    from robojax.runs import load_run

    run = _copy(small_run, tmp_path)
    assert checkpoint.steps(run / "checkpoints") == [8, 12, 16]
    flip_bytes(_largest_data_file(run / "checkpoints" / "16"), np.random.default_rng(0))
    damaged, intact = load_run(run), load_run(small_run)
    assert damaged.step == 12 and "checkpoints/16" in caplog.text and "newest intact" in caplog.text
    assert intact.step == 16
    for step in (8, 12, 16):  # every checkpoint but the last damaged
        flip_bytes(_largest_data_file(run / "checkpoints" / str(step)), np.random.default_rng(1))
    with pytest.raises(checkpoint.DamagedCheckpointError, match="no intact checkpoint.*new run"):
        load_run(run)


@pytest.mark.slow
@pytest.mark.xdist_group("small_run")
def test_resume_from_a_damaged_checkpoint_continues_from_the_newest_intact_one(small_run,
                                                                                 tmp_path,
                                                                                 flip_bytes):
    from robojax.runs import load_run

    run = _copy(small_run, tmp_path)
    flip_bytes(_largest_data_file(run / "checkpoints" / "16"), np.random.default_rng(3), 64)
    cli.main(["train", "--resume", str(run), "--num-timesteps", "6144", "--no-progress"])
    resumed = load_run(run)  # from 12, the newest intact one, to the new end
    assert resumed.step == 24 and (run / "checkpoints" / "damaged-16").is_dir()  # kept
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(resumed.state.params))


@pytest.mark.slow
@pytest.mark.xdist_group("small_run")
def test_a_checkpoint_of_another_env_is_refused(small_run, tmp_path):
    import json

    from robojax.io import checkpoint
    from robojax.runs import load_run

    run = _copy(small_run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "env": "reacher"}))
    with pytest.raises(checkpoint.ForeignCheckpointError,
                       match="env: checkpoint 'point-mass', this run 'reacher'"):
        load_run(run)


def _run_cli(argv, monkeypatch, capsys) -> tuple[int, str]:
    """`robojax ARGV` as the console runs it: (exit code, stderr)."""
    import logging
    import sys

    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)  # restored afterwards
    for name in ("absl", "asyncio"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.getLogger(name).level)
    with pytest.raises(SystemExit) as exit_info:
        cli.run(argv)
    return exit_info.value.code, capsys.readouterr().err


def test_a_user_error_is_one_line_and_exit_2_unless_debugging(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    argv = ["train", "--env", "pendulum-swingupp", "--run-dir", str(run)]
    code, err = _run_cli(argv, monkeypatch, capsys)
    assert code == 2 and not run.exists()
    assert err.splitlines() == [
        "robojax: error: unknown env 'pendulum-swingupp'. Did you mean 'pendulum-swingup', "
        "'cartpole-swingup'? Registered envs: " + ", ".join(envs.names()) + ".",
        "(ROBOJAX_DEBUG=1 shows the traceback)"]
    monkeypatch.setenv("ROBOJAX_DEBUG", "1")
    with pytest.raises(KeyError, match="unknown env"):
        cli.run(argv)


def test_an_unwritable_run_directory_is_one_message_naming_it(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("")
    code, err = _run_cli(["train", "--env", "point-mass", "--run-dir",
                          str(tmp_path / "file" / "run")], monkeypatch, capsys)
    assert code == 1
    assert err.startswith(f"robojax: error: cannot write the run directory {tmp_path}/file/run: "
                          "Not a directory. Free space or make it writable, or pick another "
                          "--run-dir (nothing was written).")


@pytest.fixture
def tiny_disk(tmp_path):
    """A 300 KB file system (tmpfs), or a skip where mounting one is not allowed."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", "--lazy", str(mount)], check=True)


@pytest.mark.slow
@pytest.mark.xdist_group("small_run")
def test_a_full_disk_is_one_message_that_says_how_to_continue(tiny_disk, monkeypatch, capsys):
    run = tiny_disk / "run"
    code, err = _run_cli(["train", "--run-dir", str(run), *SMALL_RUN], monkeypatch, capsys)
    assert code == 1
    assert err.splitlines()[-2:] == [  # after the run's header and its first evaluations
        f"robojax: error: cannot write the run directory {run}: No space left on device. Free "
        f"space or make it writable, then continue with `robojax train --resume {run}` (the "
        "checkpoints written so far are intact).", "(ROBOJAX_DEBUG=1 shows the traceback)"]


@pytest.mark.slow
@pytest.mark.xdist_group("small_run")
def test_resume_refuses_flags_that_would_change_the_run_by_name(small_run, tmp_path):
    run = _copy(small_run, tmp_path)
    with pytest.raises(ValueError, match=r"--num-envs 128, --ppo\.policy-hidden-sizes \(32, 32\) "
                                         r"would change it\. Drop them"):
        cli.main(["train", "--resume", str(run), "--num-envs", "128",
                  "--ppo.policy-hidden-sizes", "32", "32"])
    import tyro

    from robojax.runs import TrainArgs, read_args, resumed_args

    same = tyro.cli(TrainArgs, args=["--resume", str(run), "--num-envs", "16",
                                     "--episode-length", "20", "--no-progress"])
    assert resumed_args(same, read_args(run)) == read_args(run)  # the run's own flags: fine


@pytest.mark.slow
@pytest.mark.xdist_group("small_run")
def test_resume_with_more_timesteps_trains_longer(small_run, tmp_path):
    from robojax.io import checkpoint
    from robojax.runs import read_args

    run = _copy(small_run, tmp_path)
    cli.main(["train", "--resume", str(run), "--num-timesteps", "6144", "--keep-checkpoints", "0",
              "--no-progress"])
    assert read_args(run).num_timesteps == 6144 and read_args(run).keep_checkpoints == 0
    # the new checkpoint is kept beside the three the run had: the default keeps three
    assert checkpoint.steps(run / "checkpoints") == [8, 12, 16, 24]


@pytest.mark.slow
@pytest.mark.xdist_group("small_run")
def test_a_resume_off_the_new_schedule_still_evaluates_and_saves_on_the_way(small_run,
                                                                             tmp_path):
    """40 iterations in all: an evaluation every 12, in compiled calls of 3 iterations from
    the resumed iteration 16 (19, 22, 25, ...), none of which is a multiple of 12. Each
    evaluation and checkpoint comes at the first call past its point, not only at the end."""
    from robojax.io import checkpoint
    from robojax.io.metrics import read_metrics

    run = _copy(small_run, tmp_path)
    cli.main(["train", "--resume", str(run), "--num-timesteps", "10240", "--no-progress"])
    rows = read_metrics(run / "metrics.csv")
    assert [int(r["iteration"]) for r in rows] == [0, 4, 8, 12, 16, 25, 37, 49]
    assert sorted(checkpoint.steps(run / "checkpoints")) == [25, 37, 49]



@pytest.mark.parametrize("override, error, message", [
    ("episode_length=abc", TypeError, r"episode_length takes int, got 'abc' \(str\); "
                                      r"e\.g\. --env-config episode_length=1000"),
    ("episode_length='500'", TypeError, r"episode_length takes int, got '500'"),
    ("episode_length=[1,2", TypeError, r"episode_length takes int, got '\[1,2'"),
    ("target_size=abc", TypeError, r"target_size takes float, got 'abc'"),
    ("episode_length=-5", ValueError, "episode_length must be positive, got -5"),
    ("timestep=-0.01", ValueError, "timestep must be positive, got -0.01"),
    ("reward_scales={'bogus': 1.0}", KeyError, r"reacher has no reward term 'bogus'\. Its terms"),
    ("reward_scales={'contrl': 1.0}", KeyError, r"Did you mean 'control'"),
    ("reward_scales=3", TypeError, "reward_scales takes a dict"),
])
def test_env_config_values_are_checked_by_field(tmp_path, override, error, message):
    with pytest.raises(error, match=message):
        envs.make("reacher", **envs.parse_overrides([override]))
    run = tmp_path / "run"  # and by `robojax train`, before anything is written
    with pytest.raises(error, match=message):
        cli.main(["train", "--env", "reacher", "--run-dir", str(run), "--env-config", override])
    assert not run.exists()


def test_env_config_values_convert_where_the_type_allows():
    config = envs.get_config("reacher", target_size=1, episode_length=np.int64(50))
    assert config.target_size == 1.0 and isinstance(config.target_size, float)
    assert type(config.episode_length) is int


@pytest.mark.slow
def test_a_nonfinite_action_under_jit_is_replaced_counted_and_reported():
    from robojax.core.wrappers import EpisodeWrapper, VmapWrapper
    from robojax.rollout import evaluate_episodes, nonfinite_action_warning

    env = envs.make("point-mass")
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    step = jax.jit(env.step)  # the README's pattern: no eager check can see the value
    bad, zero = step(state, jnp.array([jnp.nan, 0.5])), step(state, jnp.array([0.0, 0.5]))
    np.testing.assert_array_equal(bad.data.qpos, zero.data.qpos)
    assert np.all(np.isfinite(bad.obs)) and float(bad.reward) == float(zero.reward)
    assert float(bad.metrics["nonfinite_action"]) == 1.0
    assert float(zero.metrics["nonfinite_action"]) == 0.0

    eval_env = VmapWrapper(EpisodeWrapper(env, 5), 2)
    metrics = evaluate_episodes(eval_env, lambda obs: jnp.full((2, 2), jnp.inf),
                                jax.random.PRNGKey(0), jax.random.PRNGKey(1))
    assert float(metrics["eval/nonfinite_action"]) == 10.0  # 2 values x 5 steps per episode
    assert "10 NaN or infinite action value(s) per episode" in nonfinite_action_warning(metrics)


def test_a_run_that_cannot_fit_in_memory_is_refused_before_it_starts(tmp_path):
    from robojax.algos import ppo, sac
    from robojax.core import memory

    env = envs.make("cartpole-balance")
    bound = memory.estimate(ppo.PPOConfig(num_envs=1), env, num_seeds=1)
    fits = 1000
    available = bound.total(fits)
    memory.check(ppo.PPOConfig(num_envs=fits), env, 1, available=available)  # fits: no error
    with pytest.raises(memory.InsufficientMemoryError, match=f"use at most --num-envs {fits}\\."):
        memory.check(ppo.PPOConfig(num_envs=fits + 1), env, 1, available=available)
    with pytest.raises(memory.InsufficientMemoryError, match="lower --sac.buffer-capacity"):
        memory.check(sac.SACConfig(buffer_capacity=10**12), env, 1, available=available)
    run = tmp_path / "run"
    with pytest.raises(memory.InsufficientMemoryError, match="1,000,000,000 envs x 1 seed"):
        cli.main(["train", "--num-envs", "1000000000", "--run-dir", str(run)])
    assert not run.exists()


@pytest.mark.slow
@pytest.mark.xdist_group("small_run")
def test_on_nonfinite_rollback_resumes_from_the_last_good_state_with_lower_rates(tmp_path):
    from robojax.io.metrics import read_metrics
    from robojax.runs import load_run, read_args

    run = tmp_path / "run"  # a learning rate of 10 diverges by iteration 3
    cli.main(["train", "--run-dir", str(run), *SMALL_RUN, "--ppo.learning-rate", "10",
              "--ppo.max-grad-norm", "1e38", "--on-nonfinite", "rollback"])
    args = read_args(run)  # each rollback divides the rates by 10 (1 holds on most machines)
    assert 1 <= args.rollbacks <= 3
    assert np.isclose(args.ppo.learning_rate, 10 * 0.1**args.rollbacks)
    loaded = load_run(run)
    assert loaded.step == 16 and all(np.all(np.isfinite(x)) for x in jax.tree.leaves(
        loaded.state.params))
    rows = read_metrics(run / "metrics.csv")
    assert [r["iteration"] for r in rows] == [0, 4, 8, 12, 16]


def test_cli_values_parse_by_the_fields_type():
    assert envs.parse_overrides(["observation=123", "block_range=0.1"], "push-t") == {
        "observation": "123", "block_range": 0.1}  # a text field keeps the text as written
    assert envs.parse_overrides(["observation=123"]) == {"observation": 123}  # env unknown
    with pytest.raises(TypeError, match=r"PushTConfig\.observation takes str, got 123 \(int\)"):
        envs.get_config("push-t", observation=123)


@pytest.mark.parametrize("argv, message", [
    (["teleop", "--env", "pusher", "--out", "x.hdf5", "--host", "0.0.0.0"], "--allow-remote"),
    (["collect", "--env", "pusher", "--out", "x.hdf5", "--source", "human",
      "--action-noise", "0.1"], "a person ends each episode"),
    (["teleop", "--env", "pusherr", "--out", "x.hdf5"], "Did you mean 'pusher'"),
])
def test_teleop_refuses_what_it_cannot_do_before_serving(argv, message, tmp_path, monkeypatch,
                                                          capsys):
    monkeypatch.chdir(tmp_path)
    code, err = _run_cli(argv, monkeypatch, capsys)
    assert code == 2 and message in err and not (tmp_path / "x.hdf5").exists()
