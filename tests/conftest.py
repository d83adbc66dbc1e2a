import os
import resource
import time

os.environ.setdefault("MUJOCO_GL", "egl")
# The suite is compile-bound (small batches, many distinct programs): XLA's legacy CPU emitters
# compile MJX programs about 30% faster, and LLVM's optimization level 1 (of 3) takes another
# ~15% off each compile, at some cost in steady-state speed that the suite does not feel (level
# 0 compiles faster still but runs MJX 1.3-20x slower: the compile-bound tests use it, below).
# Subprocess runs inherit the flags.
# Users' runs keep XLA's defaults (the legacy emitters run network-heavy programs ~20% slower:
# experiments/bench/RESULTS.md 14.3). Added once: xdist's workers inherit the controller's
# flags, and the flags are part of every cache key, so a test run alone reads what `make test`
# compiled.
_SUITE_FLAGS = ["--xla_cpu_use_fusion_emitters=false", "--xla_backend_optimization_level=1"]
_flags = os.environ.get("XLA_FLAGS", "").split()
os.environ["XLA_FLAGS"] = " ".join([*_flags, *(f for f in _SUITE_FLAGS if f not in _flags)])

import jax  # noqa: E402
import pytest  # noqa: E402

import robojax  # noqa: E402,F401  (turns on the persistent compilation cache)

# Tests marked `quick_compile` compile their programs (in the test process) at LLVM's
# optimization level 0: they are compile-bound (a task's contract, a gradient's shape, a bad
# input's message) and level 0 compiles about 20-30% faster, while it runs MJX and networks
# slower and moves float results in the last bits, so learning tests and tests against numbers
# worked out at level 1 stay at level 1 (two tests that compare two programs bitwise opt out
# with `quick_compile(False)`). jax has no process-wide default for a program's compiler
# options, so the options each jit passes to XLA gain the level here; the persistent cache keys
# them, so the two levels never share an entry (a level-0 test no longer compiles for a level-1
# test elsewhere: RESULTS.md 14.5). On a jax whose compiler options take another form, the
# marker does nothing.
_QUICK_LEVEL = 0
_quick_compile = [False]


def _compile_quickly_when_marked() -> None:
    import inspect

    from jax._src import compiler

    original = compiler.get_compile_options
    if "env_options_overrides" not in inspect.signature(original).parameters:
        return

    def get_compile_options(*args, env_options_overrides=None, **kwargs):
        if _quick_compile[0]:
            env_options_overrides = {"xla_backend_optimization_level": _QUICK_LEVEL,
                                     **(env_options_overrides or {})}
        return original(*args, env_options_overrides=env_options_overrides, **kwargs)

    compiler.get_compile_options = get_compile_options


_compile_quickly_when_marked()


def quick_compile_env(env: dict) -> dict:
    """`env` (a subprocess's environment) with XLA's optimization level 0 in its XLA flags: for
    compile-bound subprocesses, the counterpart of the `quick_compile` marker."""
    flags = [f for f in env.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_backend_optimization_level=")]
    return {**env, "XLA_FLAGS": " ".join([*flags,
                                          f"--xla_backend_optimization_level={_QUICK_LEVEL}"])}


@pytest.fixture(autouse=True)
def _quick_compile_level(request):
    marker = request.node.get_closest_marker("quick_compile")  # quick_compile(False): opt out
    _quick_compile[0] = marker is not None and (marker.args[0] if marker.args else True)
    yield
    _quick_compile[0] = False


_COMPILE_REPORT = os.environ.get("ROBOJAX_COMPILE_REPORT")
"""A file to which each test appends its node id, its wall seconds, the seconds jax spent in the
test process (subprocesses not included) tracing to jaxprs, lowering them, and compiling (or
reading from the persistent cache), how many programs it compiled (or read), the programs
that took over a second, with their seconds, then the xdist worker, the test's start (Unix
seconds) and the CPU seconds (user + system) of the test process and of the subprocesses it
waited for: where the time of a cold- or warm-cache run goes, and how the workers' load ends."""
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
"""jax's event for each program compiled, or read from the persistent cache."""
_PHASES = {"/jax/core/compile/jaxpr_trace_duration": 0,
           "/jax/core/compile/jaxpr_to_mlir_module_duration": 1, _COMPILE_EVENT: 2}
_phase_seconds = [0.0, 0.0, 0.0, 0.0]  # the last: how many programs were compiled (or read)
_slow_programs = []

if _COMPILE_REPORT:
    def _count_phase(event: str, seconds: float, fun_name: str = "", **_) -> None:
        if event in _PHASES:
            _phase_seconds[_PHASES[event]] += seconds
            _phase_seconds[3] += event == _COMPILE_EVENT
            if event == _COMPILE_EVENT and seconds > 1.0:
                _slow_programs.append(f"{fun_name}:{seconds:.1f}")

    jax.monitoring.register_event_duration_secs_listener(_count_phase)

    def _cpu_seconds() -> float:
        own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                              resource.RUSAGE_CHILDREN))
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    @pytest.fixture(autouse=True)
    def _report_compile_seconds(request):
        before, start, cpu = list(_phase_seconds), time.monotonic(), _cpu_seconds()
        _slow_programs.clear()
        yield
        spent = "\t".join(f"{now - then:.2f}"
                          for now, then in zip(_phase_seconds, before, strict=True))
        wall = time.monotonic() - start
        with open(_COMPILE_REPORT, "a") as report:
            report.write(f"{request.node.nodeid}\t{wall:.2f}\t{spent}\t"
                         f"{' '.join(_slow_programs)}\t{os.environ.get('PYTEST_XDIST_WORKER', '')}"
                         f"\t{time.time() - wall:.1f}\t{_cpu_seconds() - cpu:.1f}\n")


@pytest.fixture
def compiled_programs():
    """The names (`jit(f)`) of the programs jax compiles, or reads from the persistent cache,
    while the test runs, in order."""
    names = []

    def listen(event: str, seconds: float, fun_name: str = "", **_) -> None:
        if event == _COMPILE_EVENT:
            names.append(fun_name)

    jax.monitoring.register_event_duration_secs_listener(listen)
    yield names
    jax.monitoring.unregister_event_duration_listener(listen)


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)


def with_fast_env(env: dict) -> dict:
    """`env` (a subprocess's environment) with this folder on its PYTHONPATH, so the subprocess
    can train `--env fast_env:fast` (tests/fast_env.py), keeping any PYTHONPATH already set."""
    path = os.pathsep.join(filter(None, [os.path.dirname(__file__), env.get("PYTHONPATH")]))
    return {**env, "PYTHONPATH": path}


@pytest.fixture
def two_cpu_devices() -> dict:
    """Environment variables for a subprocess that sees two CPU devices: the suite's XLA flags
    with the host platform split in two, at optimization level 0 (`quick_compile_env`: these
    runs are short and compile-bound)."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2"
    return quick_compile_env({**os.environ, "XLA_FLAGS": flags.strip(), "JAX_PLATFORMS": "cpu"})


@pytest.fixture(scope="session")
def detour_demos(tmp_path_factory):
    """100 successful episodes of the detour expert (both modes), for behaviour cloning."""
    from robojax import cli

    path = tmp_path_factory.mktemp("demos") / "detour.hdf5"
    cli.main(["collect", "--env", "detour", "--episodes", "100", "--only-success", "--out",
              str(path)])
    return path


@pytest.fixture(scope="session")
def pendulum_demo(tmp_path_factory):
    """One pendulum swing-up by the scripted expert, for imitation through the simulator."""
    from robojax import cli

    path = tmp_path_factory.mktemp("ild") / "pendulum.hdf5"
    cli.main(["collect", "--env", "pendulum-swingup", "--episodes", "1", "--out", str(path)])
    return path


def _kill_and_resume(command, tmp_path, *, after_kill=None):
    """Train `command(run_dir)` to the end, and again killed (SIGKILL) right after its first
    checkpoint and then resumed; `after_kill(run_dir)` may tamper with the killed run. Returns
    the final (state, step) of the uninterrupted and of the resumed run."""
    import signal
    import subprocess
    import sys
    import time

    from robojax.io import checkpoint
    from robojax.runs import load_run

    env_vars = with_fast_env(quick_compile_env({**os.environ, "JAX_PLATFORMS": "cpu"}))
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(command(full), check=True, env=env_vars, capture_output=True)
    proc = subprocess.Popen(command(killed), env=env_vars, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if checkpoint.steps(killed / "checkpoints"):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    done = checkpoint.steps(killed / "checkpoints")
    assert done and max(done) < max(checkpoint.steps(full / "checkpoints"))
    if after_kill is not None:
        after_kill(killed)
    subprocess.run([sys.executable, "-m", "robojax.cli", "train", "--resume", str(killed),
                    "--no-progress"], check=True, env=env_vars, capture_output=True)
    return load_run(full)[-2:], load_run(killed)[-2:]


@pytest.fixture
def kill_and_resume():
    return _kill_and_resume


def _resume_matches_whole_run(whole, tmp_path) -> None:
    """What a run carries (weights, optimizer, env batch, the algorithm's own state, the key)
    round-trips through a checkpoint exactly: the run `whole`, resumed in this process from
    its checkpoint before the last, ends bitwise where it ended. (Resume after a SIGKILL, the
    generic path, is `kill_and_resume`'s.)"""
    import shutil
    from pathlib import Path

    from robojax import cli
    from robojax.io import checkpoint
    from robojax.runs import load_run

    steps = checkpoint.steps(whole / "checkpoints")
    assert len(steps) >= 2, steps
    resumed = Path(shutil.copytree(whole, tmp_path / "resumed"))
    shutil.rmtree(resumed / "checkpoints" / str(max(steps)))
    cli.main(["train", "--resume", str(resumed), "--no-progress", "--no-video"])
    expected, got = load_run(whole), load_run(resumed)
    assert expected.step == got.step == max(steps)
    assert checkpoint.tree_equal(expected.state, got.state)


@pytest.fixture
def resume_matches_whole_run():
    return _resume_matches_whole_run


def _flip_bytes(path, rng, count: int = 8) -> None:
    """Invert `count` consecutive bytes at a random place of the file (never a no-op)."""
    data = bytearray(path.read_bytes())
    at = int(rng.integers(0, max(1, len(data) - count)))
    data[at:at + count] = bytes((b ^ 0xFF) for b in data[at:at + count])
    path.write_bytes(bytes(data))


@pytest.fixture
def flip_bytes():
    return _flip_bytes
