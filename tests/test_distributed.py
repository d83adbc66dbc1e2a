"""Multi-process training on jax.distributed, with real processes on 127.0.0.1 (gloo on CPU)."""

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import quick_compile_env, with_fast_env

from robojax import cli
from robojax.io import checkpoint
from robojax.runs import load_run

# PPO on `fast` (tests/fast_env.py: no physics, so the processes compile in seconds; what is
# tested here does not depend on the simulator, and tests/test_multidevice.py shards MJX's
# envs), 32 iterations of 32 envs x 8 steps, a checkpoint every 8.
TRAIN = ["train", "--env", "fast_env:fast", "--num-envs", "32", "--num-timesteps", "8192",
         "--ppo.rollout-length", "8", "--ppo.num-minibatches", "4", "--ppo.num-epochs", "1",
         "--ppo.num-evals", "4", "--ppo.num-eval-envs", "8", "--no-video", "--no-progress"]


def _process_env(env: dict) -> dict:
    """Every process started here reads its output unbuffered and imports `fast_env`."""
    return with_fast_env({**env, "PYTHONUNBUFFERED": "1"})


# At optimization level 0, as the two-device references (`two_cpu_devices`): short runs,
# compile-bound.
ENV = _process_env(quick_compile_env({**os.environ, "JAX_PLATFORMS": "cpu"}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _robojax(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "robojax.cli", *args]


def _launch(args: list[str], port: int, processes: int = 2, timeout: int = 20,
            extra: dict[int, list[str]] | None = None) -> list[subprocess.Popen]:
    """Start `processes` processes of `robojax <args> --distributed`, process i with
    `extra[i]` appended."""
    flags = ["--distributed", "--coordinator", f"127.0.0.1:{port}", "--num-processes",
             str(processes), "--distributed-timeout", str(timeout)]
    return [subprocess.Popen(_robojax([*args, *flags, "--process-id", str(i),
                                       *(extra or {}).get(i, [])]), env=ENV, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for i in range(processes)]


def _finish(procs: list[subprocess.Popen], timeout: float = 600) -> list[tuple[int, str]]:
    return [(p.wait(timeout), p.communicate()[0] + p.communicate()[1]) for p in procs]


def test_process_id_outside_the_range_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run([*TRAIN, "--distributed", "--coordinator", "127.0.0.1:1234",
                 "--num-processes", "2", "--process-id", "2"])
    assert exit_info.value.code == 2
    assert "--process-id 2 is outside 0..1" in capsys.readouterr().err


def test_partial_or_stray_launch_flags_are_refused(capsys):
    for flags, expected in ((["--distributed", "--coordinator", "127.0.0.1:1234"],
                             "--num-processes, --process-id missing"),
                            (["--process-id", "0"], "add --distributed"),
                            (["--distributed", "--coordinator", "localhost", "--num-processes",
                              "2", "--process-id", "0"], "is not HOST:PORT")):
        with pytest.raises(SystemExit) as exit_info:
            cli.run([*TRAIN, *flags])
        assert exit_info.value.code == 2
        assert expected in capsys.readouterr().err


@pytest.mark.slow  # separate processes: ~10 s each
def test_unreachable_coordinator_is_a_clear_error_after_the_timeout(tmp_path):
    """Process 1 alone: nobody hosts the coordinator, so it gives up after 2 s."""
    start = time.monotonic()
    out = subprocess.run(_robojax([*TRAIN, "--run-dir", str(tmp_path / "run"), "--distributed",
                                   "--coordinator", f"127.0.0.1:{_free_port()}",
                                   "--num-processes", "2", "--process-id", "1",
                                   "--distributed-timeout", "2"]),
                         env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr[-2000:]
    assert "process 1 could not reach the coordinator" in out.stderr
    assert "--distributed-timeout" in out.stderr
    assert time.monotonic() - start < 60


@pytest.mark.slow  # separate processes: ~10 s each
def test_processes_started_with_different_flags_all_stop_naming_them(tmp_path):
    procs = _launch([*TRAIN, "--run-dir", str(tmp_path / "run")], _free_port(),
                    extra={1: ["--seed", "3"]})
    for code, output in _finish(procs, timeout=120):
        assert code == 2, output[-2000:]
        assert "--seed 3 on process 1, 0 on process 0" in output
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.slow  # separate processes: ~10 s each
def test_an_env_batch_that_does_not_split_over_the_devices_is_refused(tmp_path):
    procs = _launch([*TRAIN, "--num-envs", "33", "--run-dir", str(tmp_path / "run")],
                    _free_port())
    for code, output in _finish(procs, timeout=120):
        assert code == 2, output[-2000:]
        assert "--num-envs 33 does not split over the 2 devices" in output


@pytest.mark.slow  # separate processes: ~10 s each
def test_distributed_without_flags_outside_a_cluster_says_what_to_give(tmp_path):
    out = subprocess.run(_robojax([*TRAIN, "--run-dir", str(tmp_path / "run"), "--distributed"]),
                         env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "found no cluster to join" in out.stderr and "--coordinator HOST:PORT" in out.stderr


_CACHE_WRITES = """
import sys
from pathlib import Path

import jax
import numpy as np
from jax._src import compiler
from jax._src import distributed as jax_distributed

from robojax._cache import write_from_every_process

cache = Path(sys.argv[1])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax_distributed.global_state.process_id = 1
jax.jit(lambda x: x * 3.0 + 1.0)(np.ones(5, np.float32))
assert not list(cache.glob("jit_*")), "jax wrote from process 1"  # jax's rule: process 0 writes
write_from_every_process()
jax.jit(lambda x: x * 5.0 - 2.0)(np.ones(5, np.float32))
assert len(list(cache.glob("jit_*"))) == 1, "the hook wrote nothing"
write_from_every_process()  # a second call changes nothing
assert getattr(compiler._cache_write, "robojax_every_process", False)
"""


def test_processes_other_than_0_write_their_programs_to_the_compile_cache(tmp_path):
    """jax writes the persistent cache from process 0 alone, and on CPU a process's cache key
    names its own devices; without robojax's hook every other process would compile afresh on
    every run, however warm the cache. (In a process of its own: a cache switched to another
    folder and back does not read its entries again in this one.)"""
    cache = tmp_path / "cache"
    out = subprocess.run([sys.executable, "-c", _CACHE_WRITES, str(cache)], capture_output=True,
                         text=True, timeout=120, env={**ENV, "ROBOJAX_CACHE_DIR": str(cache)})
    assert out.returncode == 0, out.stderr[-2000:]


@pytest.mark.slow
def test_two_processes_train_as_one_process_with_two_devices(tmp_path, two_cpu_devices):
    """Two processes with one CPU device each run the same SPMD program as one process with
    two devices: the same partitioning, and each all-reduce sums the same two per-device
    partial results (in gloo instead of in memory). So the runs agree bitwise, through a kill of
    one process, the other's exit, and a resume of both."""
    reference, run = tmp_path / "reference", tmp_path / "run"
    subprocess.run(_robojax([*TRAIN, "--run-dir", str(reference)]), check=True, text=True,
                   capture_output=True, timeout=600,
                   env=_process_env(two_cpu_devices))
    port = _free_port()
    procs = _launch([*TRAIN, "--run-dir", str(run)], port)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not checkpoint.steps(run / "checkpoints"):
        assert procs[0].poll() is None, procs[0].communicate()[1][-3000:]
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code, output = _finish(procs[:1], timeout=120)[0]
    assert time.monotonic() - killed < 60  # the survivor stops instead of waiting forever
    if code == -signal.SIGABRT:
        # Caught in a coordination-service barrier, the survivor learns of the loss from the
        # heartbeat timeout, the same moment JAX's own error poll aborts it, naming the task.
        assert "stopped sending heartbeats" in output, output[-3000:]
    else:
        assert code == 1, output[-3000:]
        assert "another of the run's 2 processes is gone" in output
        assert f"--resume {run}" in output
    done = checkpoint.steps(run / "checkpoints")
    assert done and max(done) < 32

    resumed = _finish(_launch(["train", "--resume", str(run), "--no-progress"], _free_port()))
    for code, output in resumed:
        assert code == 0, output[-3000:]
    assert "env steps" not in resumed[1][1]  # only process 0 reports
    expected, got = load_run(reference), load_run(run)  # both read back onto one device
    assert expected.step == got.step == 32
    assert checkpoint.tree_equal(expected.state, got.state)
    rows = np.genfromtxt(run / "metrics.csv", delimiter=",", names=True)
    assert list(rows["iteration"]) == [0, 8, 16, 24, 32]

    with pytest.raises(ValueError, match=r"trained by 2 process\(es\) and this resume has 1"):
        cli.main(["train", "--resume", str(run)])  # this one process, alone



SAC = ["train", "--algo", "sac", "--env", "fast_env:fast", "--num-envs", "8",
       "--num-timesteps", "800", "--episode-length", "100", "--sac.batch-size", "32",
       "--sac.learning-starts", "256", "--sac.buffer-capacity", "512",
       "--sac.grad-updates-per-step", "2", "--sac.num-evals", "2", "--sac.num-eval-envs", "2",
       "--sac.policy-hidden-sizes", "16", "--sac.critic-hidden-sizes", "16", "--no-video",
       "--no-progress"]


@pytest.mark.slow
def test_two_sac_processes_keep_their_replay_shards_and_train_as_two_devices(
        tmp_path, two_cpu_devices):
    """SAC's step runs per device (shard_map): each process keeps and samples the replay
    shard its own envs filled, and the gradient all-reduce makes both processes' learners the
    same, bitwise equal to one process with two devices; with two seeds in one program."""
    reference, run = tmp_path / "reference", tmp_path / "run"
    seeds = ["--num-seeds", "2"]
    subprocess.run(_robojax([*SAC, *seeds, "--run-dir", str(reference)]), check=True, text=True,
                   capture_output=True, timeout=600,
                   env=_process_env(two_cpu_devices))
    for code, output in _finish(_launch([*SAC, *seeds, "--run-dir", str(run)], _free_port())):
        assert code == 0, output[-3000:]
    for seed in (0, 1):
        expected, got = load_run(reference, seed), load_run(run, seed)
        assert expected.step == got.step == 104  # 100 iterations, rounded up to whole chunks
        assert int(got.state.buffer.size) == 512  # full: both shards wrapped around
        assert checkpoint.tree_equal(expected.state, got.state)
    assert not checkpoint.tree_equal(load_run(run, 0).state.learner, got.state.learner)


def test_sac_batches_that_do_not_split_over_the_devices_are_refused(tmp_path):
    procs = _launch([*SAC, "--run-dir", str(tmp_path / "run"), "--sac.batch-size", "33"],
                    _free_port())
    for code, output in _finish(procs, timeout=300):
        assert code != 0
        assert "batch_size = 33 does not split over the 2 devices" in output
