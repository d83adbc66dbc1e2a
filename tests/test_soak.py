"""Soak tests (`make soak`; left out of `make test` for time): 20 SIGKILLs of a training run
at random moments, each followed by `--resume`, end bitwise equal to an uninterrupted run; 20
corruptions of random checkpoint bytes never let a restore proceed on damaged data. Each prints
its tally (recorded in experiments/bench/RESULTS.md, "Reliability")."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from robojax.io import checkpoint
from robojax.io import run as run_dir_io
from robojax.runs import load_run, restore_run

pytestmark = pytest.mark.soak

RUN = ["--env", "point-mass", "--num-envs", "16", "--num-timesteps", "8192",
       "--ppo.rollout-length", "16", "--ppo.num-minibatches", "4", "--ppo.num-evals", "16",
       "--ppo.num-eval-envs", "4", "--episode-length", "20", "--no-progress", "--no-video"]


def _train(run_dir: Path) -> list[str]:
    """The command that starts the run, or resumes it once its config.json exists."""
    base = [sys.executable, "-m", "robojax.cli", "train"]
    if run_dir_io.is_run(run_dir):
        return [*base, "--resume", str(run_dir), "--no-progress"]
    return [*base, "--run-dir", str(run_dir), *RUN]


def test_soak_20_sigkills_at_random_moments_then_resume_is_bitwise_exact(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    full, killed = tmp_path / "full", tmp_path / "killed"
    began = time.perf_counter()
    subprocess.run(_train(full), check=True, env=env, capture_output=True)
    uninterrupted = time.perf_counter() - began
    rng = np.random.default_rng(2026)
    tally = {"kills": 0, "before any checkpoint": 0, "after a new checkpoint": 0,
             "before the next checkpoint": 0}
    while tally["kills"] < 20:
        before = max(checkpoint.steps(killed / "checkpoints"), default=-1)
        proc = subprocess.Popen(_train(killed), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=float(rng.uniform(0.5, uninterrupted)))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        if proc.returncode != -signal.SIGKILL:  # it finished first: start over, kill again
            shutil.rmtree(killed)
            continue
        tally["kills"] += 1
        after = max(checkpoint.steps(killed / "checkpoints"), default=-1)
        tally["before any checkpoint" if after < 0 else "after a new checkpoint"
              if after > before else "before the next checkpoint"] += 1
    subprocess.run(_train(killed), check=True, env=env, capture_output=True)
    (full_state, full_step), (state, step) = load_run(full)[-2:], load_run(killed)[-2:]
    print(f"\n{tally}; uninterrupted run {uninterrupted:.1f} s")
    assert step == full_step
    assert checkpoint.tree_equal(full_state, state)  # bitwise, every array


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from robojax import cli

    run = tmp_path_factory.mktemp("soak") / "run"
    cli.main(["train", "--run-dir", str(run), *RUN])
    return run


def test_soak_no_restore_ever_proceeds_on_damaged_bytes(finished_run, tmp_path, flip_bytes):
    """20 times: damage random bytes of a random file of the newest checkpoint, then load the
    run as `eval` and `--resume` do. Each load must refuse, or return a checkpoint bitwise equal
    to the undamaged one of the same iteration."""
    steps = checkpoint.steps(finished_run / "checkpoints")
    template = restore_run(finished_run).state
    genuine = {s: checkpoint.restore(finished_run / "checkpoints", template, step=s)[0]
               for s in steps}
    rng = np.random.default_rng(2026)
    tally = {"refused": 0, "older intact one": 0, "damage not read": 0}
    for trial in range(20):
        run = Path(shutil.copytree(finished_run, tmp_path / str(trial)))
        files = sorted(p for p in (run / "checkpoints" / str(steps[-1])).rglob("*")
                       if p.is_file())
        flip_bytes(files[int(rng.integers(len(files)))], rng, int(rng.integers(1, 65)))
        try:
            loaded = restore_run(run)
        except (ValueError, FileNotFoundError):
            tally["refused"] += 1
            continue
        assert checkpoint.tree_equal(loaded.state, genuine[loaded.step]), f"trial {trial}"
        tally["older intact one" if loaded.step < steps[-1] else "damage not read"] += 1
    print(f"\n{tally}")
    assert sum(tally.values()) == 20
