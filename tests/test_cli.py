"""The `robojax` command end to end at a tiny budget."""

import json

import pytest

from robojax.cli import main
from robojax.io.metrics import read_metrics

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)

TINY = ["--num-envs", "32", "--num-timesteps", "8192", "--ppo.unroll-length", "16",
        "--ppo.num-minibatches", "4", "--ppo.num-evals", "2", "--ppo.num-eval-envs", "4",
        "--episode-length", "60", "--no-progress"]


@pytest.mark.slow
def test_train_writes_every_output_then_eval(tmp_path):
    run = tmp_path / "run"
    main(["train", "--env", "point-mass", "--run-dir", str(run), "--seed", "3", *TINY,
          "--env-config", "reward_scales={'control': -1.0}",
          "--eval-env-config", "reward_scales={'control': 0.0}"])
    assert json.loads((run / "config.json").read_text())["env"] == "point-mass"
    rows = read_metrics(run / "metrics.csv")
    # Trained with a heavier control cost, evaluated without it: the logged eval return is
    # the near-target term alone.
    assert rows[-1]["eval/reward/control"] != 0
    assert rows[-1]["eval/episode_reward"] == pytest.approx(rows[-1]["eval/reward/near_target"],
                                                            rel=1e-5)
    assert {"env_steps", "wall_time_s", "eval/episode_reward", "train/reward"} <= set(rows[0])
    assert rows[0]["env_steps"] == 0 and rows[-1]["env_steps"] >= 8192
    assert all(b["wall_time_s"] > a["wall_time_s"] for a, b in zip(rows, rows[1:], strict=False))
    assert list((run / "checkpoints").iterdir())
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert (run / "learning_curve.png").stat().st_size > 1000
    if not (run / "video.mp4").exists():
        pytest.skip("no GL backend: video skipped")
    assert (run / "video.mp4").stat().st_size > 1000

    main(["eval", str(run), "--num-episodes", "8", "--no-video",
          "--env-config", "episode_length=30"])
    result = json.loads((run / "eval.json").read_text())
    assert result["checkpoint_iteration"] > 0 and "eval/episode_reward" in result
    assert result["env_config"] == {"episode_length": "30"}
    assert result["eval/episode_reward"] == pytest.approx(result["eval/reward/near_target"],
                                                          rel=1e-5)  # the run's eval config
    # Sampled actions in place of the mean: recorded in eval.json, and scored differently.
    main(["eval", str(run), "--num-episodes", "8", "--no-video", "--env-config",
          "episode_length=30", "--deterministic", "False"])
    sampled = json.loads((run / "eval.json").read_text())
    assert sampled["algo_config"] == {"deterministic_eval": False}
    assert sampled["eval/episode_reward"] != result["eval/episode_reward"]
    # An earlier checkpoint by its iteration; one the run did not keep is named with those it did.
    kept = sorted(int(p.name) for p in (run / "checkpoints").iterdir())
    assert len(kept) >= 2
    main(["eval", str(run), "--num-episodes", "8", "--no-video", "--env-config",
          "episode_length=30", "--checkpoint", str(kept[0])])
    earlier = json.loads((run / "eval.json").read_text())
    assert earlier["checkpoint_iteration"] == kept[0] < result["checkpoint_iteration"]
    assert earlier["eval/episode_reward"] != result["eval/episode_reward"]
    missing = kept[-1] + 1
    with pytest.raises(FileNotFoundError, match=rf"no finished checkpoint {missing} .*holds "
                                                rf"{', '.join(map(str, kept))}\."):
        main(["eval", str(run), "--num-episodes", "8", "--no-video", "--checkpoint",
              str(missing)])


@pytest.mark.slow
def test_num_seeds_trains_seeds_in_one_program(tmp_path):
    run = tmp_path / "seeds"
    main(["train", "--env", "point-mass", "--run-dir", str(run), "--num-seeds", "2",
          "--no-video", "--env-config", "reward_scales={'control': 0.5}", *TINY])
    rows = read_metrics(run / "metrics.csv")
    assert rows[-1]["env_steps"] >= 8192
    # The env config overrides travel with the run, so evaluation rebuilds the same env.
    from robojax.runs import load_run

    assert load_run(run).env.config.reward_scales["control"] == 0.5
    # Each seed's policy evaluates on its own; an index past the seeds is named.
    from robojax.evaluate import evaluate_checkpoint

    first, second = (evaluate_checkpoint(run, num_episodes=8, seed_index=i) for i in (0, 1))
    assert first["eval/episode_reward"] != second["eval/episode_reward"]
    # Evaluation can override the run's env config: here the control cost's weight is dropped.
    unweighted = evaluate_checkpoint(run, num_episodes=8, seed_index=0,
                                     env_config={"reward_scales": {"control": 0.0}})
    assert unweighted["eval/reward/control"] == first["eval/reward/control"]
    assert unweighted["eval/episode_reward"] != first["eval/episode_reward"]
    with pytest.raises(ValueError, match="trained 2 seed"):
        evaluate_checkpoint(run, seed_index=2)
    # `robojax eval` scores every seed and their mean, or the one seed asked for.
    main(["eval", str(run), "--num-episodes", "8", "--no-video"])
    result = json.loads((run / "eval.json").read_text())
    per_seed = [r["eval/episode_reward"] for r in result["seeds"]]
    assert result["seed_indices"] == [0, 1]
    assert per_seed == pytest.approx([first["eval/episode_reward"],
                                      second["eval/episode_reward"]], rel=1e-5)
    assert result["eval/episode_reward"] == pytest.approx(sum(per_seed) / 2, rel=1e-6)
    main(["eval", str(run), "--num-episodes", "8", "--no-video", "--seed-index", "1"])
    result = json.loads((run / "eval.json").read_text())
    assert result["seed_indices"] == [1] and result["eval/episode_reward"] == pytest.approx(
        second["eval/episode_reward"], rel=1e-5)
    with pytest.raises(ValueError, match="trained 2 seed"):
        main(["eval", str(run), "--no-video", "--seed-index", "2"])
    # `robojax collect --source RUN` records the run's policy on its env, and only on its env.
    from robojax import data

    demos = tmp_path / "from_run.hdf5"
    main(["collect", "--env", "point-mass", "--source", str(run), "--episodes", "4", "--out",
          str(demos)])
    recorded = data.load(demos)
    assert recorded.num_episodes == 4 and recorded.env_name == "point-mass"
    with pytest.raises(ValueError, match="trained on 'point-mass', not 'reacher'"):
        main(["collect", "--env", "reacher", "--source", str(run), "--episodes", "1", "--out",
              str(tmp_path / "other.hdf5")])


def test_bad_names_are_clear_errors(tmp_path):
    with pytest.raises(KeyError, match="point-mass"):
        main(["train", "--env", "point-mas", "--run-dir", str(tmp_path / "x"), *TINY])
    with pytest.raises(FileNotFoundError, match="config.json"):
        main(["train", "--resume", str(tmp_path)])


def test_env_config_overrides_reach_the_env_and_bad_ones_are_named(tmp_path):
    from robojax.envs import parse_overrides

    from robojax import data
    from robojax.train import TrainArgs, train

    assert parse_overrides(["observation=keypoints", "episode_length=200", "x=(1, 2)"]) == {
        "observation": "keypoints", "episode_length": 200, "x": (1, 2)}
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        parse_overrides(["keypoints"])
    with pytest.raises(TypeError, match="no config field"):
        main(["train", "--env", "point-mass", "--env-config", "bogus=1", "--run-dir",
              str(tmp_path / "bad"), *TINY])
    # Demos recorded with an override do not fit the default env; the error says why.
    demos = tmp_path / "pose.hdf5"
    main(["collect", "--env", "push-t", "--episodes", "2", "--env-config",
          "observation=pose", "--out", str(demos)])
    assert data.load(demos).obs.shape[1] == 11
    with pytest.raises(data.DemoFileError, match="--env-config"):
        train(TrainArgs(algo="bc", env="push-t", dataset=demos, run_dir=tmp_path / "bc",
                        progress=False))


def test_eval_deterministic_flag_is_refused_where_the_algorithm_has_no_choice():
    from robojax.algos.apg import APGConfig
    from robojax.algos.ppo import PPOConfig
    from robojax.evaluate import _acting_overrides

    assert _acting_overrides("ppo", PPOConfig(), None) == {}
    assert _acting_overrides("ppo", PPOConfig(), False) == {"deterministic_eval": False}
    with pytest.raises(ValueError, match="apg has no choice of mean or sampled actions.*leave "
                                         "out --deterministic"):
        _acting_overrides("apg", APGConfig(), True)
