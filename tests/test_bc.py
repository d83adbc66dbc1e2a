"""Behaviour cloning end to end through the CLI: demos from the scripted expert, a chunked
flow policy cloned from them, success in parallel eval envs; and the errors users meet."""

import numpy as np
import pytest

from robojax import cli, data
from robojax.io.metrics import read_metrics
from robojax.train import TrainArgs, train

pytestmark = pytest.mark.xdist_group("bc")


@pytest.mark.slow
def test_flow_policy_clones_the_bimodal_expert(detour_demos, tmp_path):
    run = tmp_path / "run"
    cli.main(["train", "--algo", "bc", "--policy", "flow", "--dataset", str(detour_demos),
              "--env", "detour", "--run-dir", str(run), "--no-progress", "--no-video",
              "--bc.num-grad-steps", "3000", "--bc.num-evals", "1",
              "--bc.flow.denoiser.network", "mlp", "--bc.flow.denoiser.mlp-hidden", "256", "256",
              "256"])
    rows = read_metrics(run / "metrics.csv")
    assert rows[0]["grad_steps"] == 0 and rows[-1]["grad_steps"] >= 3000
    assert rows[0]["eval/success_rate"] < 0.05  # untrained: no luck
    assert rows[-1]["eval/success_rate"] >= 0.4, rows[-1]
    assert (run / "learning_curve.png").exists() and (run / "checkpoints").is_dir()
    # The checkpoint evaluates again with other settings, e.g. fewer Euler steps.
    from robojax.evaluate import evaluate_checkpoint

    again = evaluate_checkpoint(run, num_episodes=128, seed=3, inference_steps=4)
    assert again["eval/success_rate"] >= 0.3, again
    assert again["eval/peak/reward/success"] == again["eval/success_rate"]


def test_bc_needs_a_dataset_and_rejects_rl_flags(detour_demos, tmp_path):
    with pytest.raises(ValueError, match="--dataset"):
        train(TrainArgs(algo="bc", env="detour", run_dir=tmp_path / "a", progress=False))
    with pytest.raises(ValueError, match="--num-timesteps does not apply"):
        train(TrainArgs(algo="bc", env="detour", dataset=detour_demos, num_timesteps=10,
                        run_dir=tmp_path / "b", progress=False))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # nothing written


def test_demos_from_another_env_are_refused(detour_demos, tmp_path):
    with pytest.raises(data.DemoFileError, match="recorded on 'detour', not 'point-mass'"):
        train(TrainArgs(algo="bc", env="point-mass", dataset=detour_demos,
                        run_dir=tmp_path / "c", progress=False))


def test_unknown_policy_family(detour_demos, tmp_path):
    with pytest.raises(KeyError, match="Did you mean 'flow'"):
        train(TrainArgs(algo="bc", env="detour", dataset=detour_demos, policy="flwo",
                        run_dir=tmp_path / "d", progress=False))


def test_a_task_without_success_is_reported_and_plotted_by_its_return(pendulum_demo, tmp_path,
                                                                       capsys, monkeypatch):
    """Pendulum reports no success metric: its clone's evaluations carry no success rate
    (rather than a rate of 0), and the progress line and the curve show the return."""
    from robojax.io.progress import console

    monkeypatch.setattr(console, "width", 300)  # the summary on one line
    run = tmp_path / "run"
    cli.main(["train", "--algo", "bc", "--policy", "gaussian", "--dataset", str(pendulum_demo),
              "--env", "pendulum-swingup", "--run-dir", str(run), "--no-progress", "--no-video",
              "--bc.num-grad-steps", "100", "--bc.num-evals", "1", "--bc.num-eval-envs", "4"])
    rows = read_metrics(run / "metrics.csv")
    assert "eval/success_rate" not in rows[-1] and np.isfinite(rows[-1]["eval/episode_reward"])
    final = capsys.readouterr().err.strip().splitlines()  # the console writes to stderr
    assert any(line.startswith("eval/episode_reward ") for line in final), final[-3:]
    assert not any("success_rate" in line for line in final)
