"""A run learned from a demo file evaluates and exports from its run directory alone: restoring
needs the state's shapes, not the data (the file may be gone, or the run copied to a robot)."""

import functools
import shutil

import jax
import numpy as np
import pytest

from robojax import algos, cli, data, envs
from robojax.evaluate import evaluate_checkpoint
from robojax.runs import load_run, read_args

pytestmark = pytest.mark.xdist_group("restore")

QUIET = ["--no-progress", "--no-video"]
FLAGS = {
    "bc": ["--policy", "gaussian", "--dataset", "{demos}", "--bc.num-grad-steps", "4",
           "--bc.num-evals", "0"],
    "rlpd": ["--dataset", "{demos}", "--num-timesteps", "64", "--rlpd.num-envs", "4",
             "--rlpd.batch-size", "8", "--rlpd.learning-starts", "8", "--rlpd.buffer-capacity",
             "64", "--rlpd.grad-updates-per-step", "2", "--rlpd.critic-updates-per-actor", "2",
             "--rlpd.num-evals", "0"],
    "ild": ["--demo", "{demos}", "--num-timesteps", "256", "--ild.num-envs", "4",
            "--ild.rollout-length", "32", "--ild.bc-steps", "2", "--ild.num-evals", "0"],
}


@pytest.mark.quick_compile
@pytest.mark.parametrize("algo", list(FLAGS))
def test_a_run_restores_evaluates_and_exports_without_its_demo_file(algo, pendulum_demo,
                                                                   tmp_path):
    demos, run = tmp_path / "demos.hdf5", tmp_path / "run"
    shutil.copy(pendulum_demo, demos)
    flags = [flag.format(demos=demos) for flag in FLAGS[algo]]
    cli.main(["train", "--algo", algo, "--env", "pendulum-swingup", "--run-dir", str(run),
              *flags, *QUIET])
    # The stand-in gives `init` exactly the shapes the demonstrations give it.
    args = read_args(run)
    algo, cfg, env = algos.get(algo), args.algo_config(), envs.make(args.env)
    def shapes(make):
        state = jax.eval_shape(functools.partial(algo.init, cfg, env, make(cfg, env)),
                               jax.random.PRNGKey(0))
        return jax.tree.structure(state), [(x.shape, x.dtype) for x in jax.tree.leaves(state)]

    assert shapes(algo.restore_input) == shapes(algo.make_train_input)
    with_file = load_run(run).state
    demos.unlink()
    without = load_run(run).state
    jax.tree.map(np.testing.assert_array_equal, with_file, without)
    metrics = evaluate_checkpoint(run, num_episodes=2, seed=1)
    assert np.isfinite(metrics["eval/episode_reward"])
    cli.main(["export", str(run), "--out", str(tmp_path / "export"), "--format", "stablehlo"])
    assert any((tmp_path / "export").iterdir())
    # Training on from it still needs the demonstrations, and says so.
    with pytest.raises(data.DemoFileError, match="no demonstration file"):
        cli.main(["train", "--resume", str(run), *QUIET])
