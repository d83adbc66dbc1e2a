"""Training presets: every task has one, their fields exist, flags win over them."""

import dataclasses
import json

import pytest
import tyro

from robojax import cli, envs, presets
from robojax.runs import TrainArgs

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)


def test_every_built_in_task_has_a_ppo_preset_of_valid_fields():
    built_in = [name for name in envs.names()  # not the tasks other tests register
                if envs._entry(name).env_class.__module__.startswith("robojax.envs.")]
    assert sorted(env for env, algo in presets.PRESETS if algo == "ppo") == built_in
    with pytest.raises(TypeError, match=r"ppo has no config field 'learnig_rate'"):
        presets._check({("hopper", "ppo"): presets.Preset({"learnig_rate": 1e-3})}, {})


def test_flags_win_over_the_preset_and_none_keeps_the_defaults():
    argv = ["--env", "hopper", "--ppo.discount", "0.9", "--num-envs=8"]
    args = presets.apply(TrainArgs(env="hopper", num_envs=8,
                                   ppo=dataclasses.replace(TrainArgs().ppo, discount=0.9)),
                         presets.given_fields(argv))
    assert args.ppo.discount == 0.9  # the flag
    assert args.ppo.policy_hidden_sizes == (128, 128)  # the preset
    assert args.algo_config().num_envs == 8  # the shared flag, over the preset's 1024
    plain = presets.apply(TrainArgs(env="hopper", preset="none"), set())
    assert plain.ppo == TrainArgs().ppo


def test_a_preset_trains_on_its_shaped_reward_unless_the_command_line_sets_one():
    shaped = presets.apply(TrainArgs(env="cartpole-swingup"), {"algo"})  # --algo ppo
    assert shaped.env_overrides()["reward_scales"]["energy"] == 1.0  # trains on the shaping
    assert shaped.eval_overrides()["reward_scales"]["energy"] == 0.0  # is scored on the task
    argv = ["--env", "cartpole-swingup", "--algo", "ppo", "--env-config", "random_start=0.5"]
    given = presets.apply(TrainArgs(env="cartpole-swingup", env_config=("random_start=0.5",)),
                          presets.given_fields(argv))
    assert given.env_config == ("random_start=0.5",)  # the flag, not the preset's
    assert given.eval_env_config == shaped.eval_env_config  # not given: the preset's
    with pytest.raises(KeyError, match="no reward term 'enrgy'"):
        presets._check({("cartpole-swingup", "ppo"): presets.Preset(
            {}, env_config=("reward_scales={'enrgy': 1.0}",))}, {})


def test_a_task_trains_with_its_default_algorithm_unless_the_command_line_picks_one():
    def algo(*flags: str) -> str:
        argv = ["--env", "cartpole-swingup", *flags]
        args = tyro.cli(TrainArgs, args=argv)
        return presets.apply(args, presets.given_fields(argv)).algo

    assert algo() == "sac" and algo("--num-envs", "8") == "sac"  # its best-measured preset
    assert algo("--algo", "ppo") == "ppo"
    assert algo("--ppo.discount", "0.99") == "ppo"  # a PPO flag keeps PPO
    assert algo("--preset", "none") == "ppo"  # the plain defaults
    assert presets.apply(TrainArgs(env="hopper"), set()).algo == "ppo"
    with pytest.raises(TypeError, match="picks sac for 'hopper', which has no sac preset"):
        presets._check(presets.PRESETS, {"hopper": "sac"})


@pytest.mark.slow
def test_a_tiny_run_records_the_preset_beside_its_flags(tmp_path):
    run = tmp_path / "run"
    cli.main(["train", "--env", "pendulum-swingup", "--run-dir", str(run), "--ppo.num-envs", "8",
              "--num-timesteps", "256", "--ppo.rollout-length", "16", "--ppo.num-minibatches",
              "2", "--ppo.num-evals", "1", "--ppo.num-eval-envs", "2", "--episode-length", "16",
              "--no-progress", "--no-video"])
    ppo = json.loads((run / "config.json").read_text())["ppo"]
    assert ppo["discount"] == 0.99 and ppo["num_envs"] == 8  # the preset's, the flag's


def test_envs_lists_each_tasks_preset_budgets(capsys, monkeypatch):
    from robojax.io.progress import console

    monkeypatch.setattr(console, "width", 300)
    cli.main(["envs"])
    out = capsys.readouterr().err  # the console writes to stderr
    rows = {line.split("│")[1].strip(): line for line in out.splitlines()
            if line.count("│") > 2}
    assert "sac: 0.5M steps" in rows["cartpole-swingup"], out  # its default, SAC
    assert "ppo: 16M steps" in rows["cartpole-swingup"]  # and its PPO preset
    assert "ppo: 8M steps" in rows["hopper"] and "sac:" not in rows["hopper"]
