"""The `robojax` command: train, eval, collect, teleop, export, sim2sim, envs."""

import dataclasses
import os
import sys
import time
from pathlib import Path

import tyro

from robojax.envs import parse_overrides
from robojax.runs import TrainArgs, renamed_flags


@dataclasses.dataclass(frozen=True)
class EvalArgs:
    """Evaluate a run's latest checkpoint (or `--checkpoint N`) over parallel episodes and
    write a video."""

    run_dir: tyro.conf.Positional[Path]
    """A directory written by `robojax train`."""
    num_episodes: int = 256
    """Parallel evaluation episodes."""
    video: bool = True
    """Also render eval_video.mp4."""
    seed: int = 1
    """Seed of the evaluation episodes."""
    env_config: tuple[str, ...] = ()
    """Overrides of the run's env config as KEY=VALUE, e.g. the task's own reward for a policy
    trained with a shaping term: `--env-config "reward_scales={'energy': 0.0}"`."""
    seed_index: int | None = None
    """One seed of a run trained with `--num-seeds N` (0..N-1); by default every seed is
    evaluated and the mean is reported beside each seed's score."""
    deterministic: bool | None = None
    """Act with the policy's mean action (True) or with actions sampled from it (False), for
    algorithms that offer both (PPO's `deterministic_eval`); by default as the run says."""
    checkpoint: int | None = None
    """The training iteration of the checkpoint to evaluate (the run's `checkpoints/` names
    those it kept); by default the latest."""


@dataclasses.dataclass(frozen=True)
class CollectArgs:
    """Record demonstrations in parallel envs to an HDF5 file (robomimic layout)."""

    env: str
    """A registered env (see `robojax envs`)."""
    out: Path
    """The HDF5 file to write."""
    source: str = "solver"
    """"solver" (the env's scripted expert), a run directory written by `robojax train`, or
    "human" (a person at the teleop page, as `robojax teleop`)."""
    episodes: int = 100
    """Episodes to store."""
    only_success: bool = False
    """Keep only episodes that reached the env's success condition."""
    seed: int = 0
    """Seed of the episodes."""
    action_noise: float = 0.0
    """Std of Gaussian noise added to the executed actions (normalized units); the clean
    actions are recorded, so the demos show recoveries from off-path states."""
    env_config: tuple[str, ...] = ()
    """Overrides of the env's config as KEY=VALUE, e.g. `--env-config observation=keypoints`;
    train on the demos with the same overrides."""


@dataclasses.dataclass(frozen=True)
class TeleopArgs:
    """Record demonstrations from a person at a local web page: the env's live camera, driven
    by keyboard or gamepad through the task's teleop map; optionally a trained policy acts until
    the person takes over (the intervention flag marks their steps in the file)."""

    env: str
    """A registered env (see `robojax envs`)."""
    out: Path
    """The HDF5 file to write (rewritten after every episode)."""
    episodes: int = 10
    """Episodes to store."""
    policy: Path | None = None
    """A run directory whose policy acts until the person takes over; default: nobody acts
    unless the person does."""
    speed: float = 1.0
    """Pace of the env: 1 is real time (the task's control dt per step)."""
    keep_failures: bool = False
    """Also store the episodes the person ended with the failure button."""
    host: str = "127.0.0.1"
    """Address to serve on; anything but loopback needs --allow-remote."""
    port: int = 8765
    """Port to serve on (0: any free one)."""
    allow_remote: bool = False
    """Allow --host to be reachable from other machines (anyone with the URL drives the env)."""
    fps: float = 20.0
    """Camera frames per second sent to the page."""
    seed: int = 0
    """Seed of the episodes' initial states."""
    env_config: tuple[str, ...] = ()
    """Overrides of the env's config as KEY=VALUE."""


@dataclasses.dataclass(frozen=True)
class ExportArgs:
    """Export a run's policy (normalizer, sampler loop, actuator scaling) to ONNX and StableHLO,
    with a contract.json that the runtime (`robojax.deploy`) checks."""

    run_dir: tyro.conf.Positional[Path]
    """A directory written by `robojax train`."""
    out: Path | None = None
    """Where to write; default: RUN_DIR/export."""
    format: tuple[str, ...] = ("onnx", "stablehlo")
    """Formats to write: onnx (needs `make export-deps`), stablehlo, or both."""
    steps: int | None = None
    """Sampling steps of a generative policy (denoising, Euler, descent); default: the
    run's."""
    seed_index: int = 0
    """Which seed of a run trained with `--num-seeds N`."""
    unroll_sampler: bool = True
    """ONNX: the sampler's steps as a flat graph (runs ~6x faster for a U-Net, converts in
    minutes for 10 steps); --no-unroll-sampler keeps one Loop node (converts in seconds)."""


@dataclasses.dataclass(frozen=True)
class ComposeArgs:
    """Mix two behaviour-cloned diffusion (or flow) policies at every sampling step and search
    the weight: weight * FIRST + (1 - weight) * SECOND, evaluated on the same episodes; writes
    FIRST/compose.json."""

    first: tyro.conf.Positional[Path]
    """A `robojax train --algo bc --policy diffusion|flow` run (its chunking is used)."""
    second: tyro.conf.Positional[Path]
    """Another run of the same family and env."""
    weights: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    """Weights to evaluate (1: FIRST alone, 0: SECOND alone)."""
    num_episodes: int = 256
    """Parallel evaluation episodes per weight."""
    seed: int = 1
    """Seed of the evaluation episodes (the same for every weight)."""
    steps: int | None = None
    """Sampling steps; default: FIRST's."""


@dataclasses.dataclass(frozen=True)
class VgpsArgs:
    """Value-guided sampling of a behaviour-cloned diffusion (or flow) policy: fit a Q on the
    policy's own rollouts, then let it pick each chunk among several draws; compares the
    candidate counts on the same episodes and writes RUN_DIR/vgps.json."""

    run_dir: tyro.conf.Positional[Path]
    """A `robojax train --algo bc --policy diffusion|flow` run."""
    candidates: tuple[int, ...] = (1, 4, 16)
    """Numbers of candidate chunks to compare (1: the policy alone)."""
    temperature: float = 0.0
    """0: execute the best-scored candidate; > 0: draw one by softmax(Q / temperature)."""
    q_episodes: int = 1024
    """Rollouts of the policy that Q is fitted on."""
    num_episodes: int = 512
    """Parallel evaluation episodes per candidate count."""
    seed: int = 1
    """Seed of the evaluation episodes (the fitting rollouts use others)."""
    env_config: tuple[str, ...] = ()
    """Overrides of the run's env config as KEY=VALUE; the reward Q learns is the env's, e.g.
    success (+1) and the wall (-1) alone: `--env-config "reward_scales={'progress': 0.0}"`."""


@dataclasses.dataclass(frozen=True)
class Sim2SimArgs:
    """Run an exported policy through the deploy runtime in MuJoCo C (not MJX), beside the MJX
    evaluation of the same checkpoint: does deploy equal play?"""

    export_dir: tyro.conf.Positional[Path]
    """A directory written by `robojax export`."""
    env: str | None = None
    """The task to run it on; default: the contract's (another one is refused)."""
    episodes: int = 20
    """Episodes on each side."""
    seed: int = 0
    """Seed of the initial states, the observation noise and the policy's noise inputs."""
    obs_noise: float = 0.0
    """Std of Gaussian noise added to each observation the policy reads (both sides)."""
    action_delay: int = 0
    """Control steps each command reaches the actuators late (both sides)."""
    episode_length: int | None = None
    """Control steps per episode; default: the length the run evaluated with."""
    run_dir: Path | None = None
    """The run to evaluate in MJX; default: the one contract.json names."""
    compare: bool = True
    """Also evaluate the checkpoint in MJX (--no-compare: MuJoCo C alone)."""


@dataclasses.dataclass(frozen=True)
class EnvsArgs:
    """List the registered envs with their observation and action sizes."""


def _eval(args: EvalArgs) -> None:
    from robojax.evaluate import evaluate_run

    evaluate_run(args.run_dir, num_episodes=args.num_episodes, video=args.video, seed=args.seed,
                 env_config=parse_overrides(args.env_config), seed_index=args.seed_index,
                 deterministic=args.deterministic, checkpoint=args.checkpoint)


def _envs() -> None:
    from rich.table import Table

    from robojax import envs, presets
    from robojax.io.progress import console

    def budget(preset) -> str:
        steps = preset.config.get("num_timesteps") if preset else None
        return f"{steps / 1e6:.3g}M steps" if steps else "-"

    table = Table("name", "obs", "act", "episode", "solver", "default preset", "expected",
                  "other presets")
    for name in envs.names():
        env = envs.make(name)
        try:
            envs.solver(name)
            has_solver = "yes"
        except ValueError:
            has_solver = "-"
        algo = presets.default_algorithm(name)
        preset = presets.get(name, algo)
        others = "\n".join(f"{other}: {budget(p)}, {p.expected or 'not measured'}"
                           for (task, other), p in presets.PRESETS.items()
                           if task == name and other != algo)
        table.add_row(name, str(env.observation_spec.shape[0]), str(env.action_spec.shape[0]),
                      str(env.config.episode_length), has_solver, f"{algo}: {budget(preset)}",
                      (preset.expected if preset else None) or "not measured", others or "-")
    console.print(table)


def _export(args: ExportArgs) -> None:
    from robojax.export import export_run
    from robojax.io.progress import console

    out = args.out or args.run_dir / "export"
    contract = export_run(args.run_dir, out, formats=args.format, steps=args.steps,
                          seed_index=args.seed_index, unroll=args.unroll_sampler)
    console.print(f"exported {', '.join(args.format)} → {out} (contract: {contract.name})")


def _sim2sim(args: Sim2SimArgs) -> None:
    from rich.table import Table

    from robojax.io.progress import console
    from robojax.sim2sim import sim2sim

    result = sim2sim(args.export_dir, env=args.env, episodes=args.episodes, seed=args.seed,
                     obs_noise=args.obs_noise, action_delay=args.action_delay,
                     episode_length=args.episode_length, run_dir=args.run_dir,
                     compare=args.compare)
    summary = result.summary()
    ci = lambda pair: f"[{pair[0]:.1f}, {pair[1]:.1f}]"  # noqa: E731
    table = Table("simulator", "runtime", "return (mean)", "95% CI", "success")
    table.add_row("MuJoCo C", "robojax.deploy (ONNX)", f"{summary['mujoco_return']:.1f}",
                  ci(summary["mujoco_return_ci95"]),
                  f"{summary['mujoco_success']:.2f}" if "mujoco_success" in summary else "-")
    if "mjx_return" in summary:
        table.add_row("MJX", "JAX (robojax eval)", f"{summary['mjx_return']:.1f}",
                      ci(summary["mjx_return_ci95"]),
                      f"{summary['mjx_success']:.2f}" if "mjx_success" in summary else "-")
    console.print(f"{result.env}, {args.episodes} episodes each, obs noise {args.obs_noise}, "
                  f"action delay {args.action_delay} steps")
    console.print(table)
    if "return_ratio" in summary:
        console.print(f"MuJoCo C / MJX return: {summary['return_ratio']:.3f}")
    loop = result.loop
    console.print(f"runtime loop: {loop['steps']} steps, {loop['faults']} faults, "
                  f"{loop['stale']} stale observations")


def _teleop(args: TeleopArgs) -> None:
    from robojax.hil.record import ServeConfig, record
    from robojax.io.progress import console
    from robojax.runs import run_controller

    policy = run_controller(args.policy, args.env) if args.policy is not None else None
    serve = ServeConfig(host=args.host, port=args.port, allow_remote=args.allow_remote,
                        fps=args.fps)
    stats = record(args.env, args.out, args.episodes, policy=policy, speed=args.speed,
                   seed=args.seed, keep_failures=args.keep_failures, serve=serve,
                   env_config=parse_overrides(args.env_config, args.env))
    if stats["latency_ms_p50"] is not None:
        console.print(f"input → applied action: p50 {stats['latency_ms_p50']:.1f} ms, p99 "
                      f"{stats['latency_ms_p99']:.1f} ms; camera {stats['frames_per_second']:.1f}"
                      " frames/s")


def _collect(args: CollectArgs) -> None:
    from robojax.data.collect import collect_to_file
    from robojax.runs import run_controller

    if args.source == "human":
        if args.only_success or args.action_noise:
            raise ValueError("--only-success and --action-noise apply to the solver and run "
                             "sources; a person ends each episode with success or failure "
                             "(see robojax teleop --keep-failures).")
        return _teleop(TeleopArgs(env=args.env, out=args.out, episodes=args.episodes,
                                  seed=args.seed, env_config=args.env_config))

    source = args.source if args.source == "solver" else run_controller(args.source, args.env)
    collect_to_file(args.env, source, args.episodes, args.out, source_name=args.source,
                    only_success=args.only_success, seed=args.seed,
                    action_noise=args.action_noise,
                    env_config=parse_overrides(args.env_config, args.env))


def _rename_old_flags(argv: list[str]) -> list[str]:
    """Flags renamed since earlier versions keep working, with a note naming the new one."""
    from robojax.io.progress import console

    renamed, out = renamed_flags(), []
    for arg in argv:
        flag, sep, value = arg.partition("=")
        new = renamed.get(flag.replace("_", "-"))
        if new is not None:
            console.print(f"[yellow]note:[/] {flag} is now {new}")
            arg = new + sep + value
        out.append(arg)
    return out


def main(argv: list[str] | None = None) -> None:
    argv = _rename_old_flags(sys.argv[1:] if argv is None else list(argv))
    args = tyro.extras.subcommand_cli_from_dict(
        {"train": TrainArgs, "eval": EvalArgs, "collect": CollectArgs, "export": ExportArgs,
         "sim2sim": Sim2SimArgs, "compose": ComposeArgs, "vgps": VgpsArgs,
         "teleop": TeleopArgs, "envs": EnvsArgs},
        prog="robojax",
        description="robojax: parallel MJX training, evaluation and export.", args=argv)
    if isinstance(args, TrainArgs):
        from robojax import presets
        from robojax.train import train

        train(presets.apply(args, presets.given_fields(argv)))
    elif isinstance(args, EvalArgs):
        _eval(args)
    elif isinstance(args, CollectArgs):
        _collect(args)
    elif isinstance(args, ExportArgs):
        _export(args)
    elif isinstance(args, Sim2SimArgs):
        _sim2sim(args)
    elif isinstance(args, TeleopArgs):
        _teleop(args)
    elif isinstance(args, ComposeArgs):
        from robojax.steer import search

        search(args.first, args.second, args.weights, num_episodes=args.num_episodes,
               seed=args.seed, steps=args.steps)
    elif isinstance(args, VgpsArgs):
        _vgps(args)
    else:
        _envs()


def _vgps(args: VgpsArgs) -> None:
    from robojax.steer import value_guided_search

    value_guided_search(args.run_dir, num_candidates=args.candidates,
                        temperature=args.temperature, q_episodes=args.q_episodes,
                        num_episodes=args.num_episodes, seed=args.seed,
                        env_config=parse_overrides(args.env_config))


# Errors robojax raises for bad input, each with a message that names the problem and the fix.
_INPUT_ERRORS = (ValueError, TypeError, KeyError, FileNotFoundError, ImportError)


def _exit_code(err: Exception) -> int | None:
    """2 for bad input, 1 for a run that failed (diverged, disk full), None for anything else
    (a bug: its traceback is shown)."""
    from robojax.core.distributed import PeerLostError
    from robojax.io.run import RunWriteError, write_failure
    from robojax.train import NonFiniteTrainingError

    if isinstance(err, RunWriteError | NonFiniteTrainingError | PeerLostError | TimeoutError) or \
            write_failure(err) is not None:
        return 1
    return 2 if isinstance(err, _INPUT_ERRORS) else None


def _quiet_background_failures() -> None:
    """A failed background checkpoint write (e.g. a full disk) is reported once, as the
    error it raises in the train loop; the hundreds of lines its worker threads and event
    loops log on the way (absl, asyncio, unraisable exceptions) are left out."""
    import logging

    for name in ("absl", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    sys.unraisablehook = lambda unraisable: None


def run(argv: list[str] | None = None) -> None:
    """The `robojax` command: `main`, with a known error printed as its message alone on
    stderr and exit code 2 (bad input) or 1 (a failed run). ROBOJAX_DEBUG=1 shows the
    traceback instead."""
    debug = os.environ.get("ROBOJAX_DEBUG", "") not in ("", "0")
    if not debug:
        _quiet_background_failures()
    try:
        main(argv)
    except Exception as err:
        code = _exit_code(err)
        if code is None or debug:
            _leave_others(code or 1, err, show_traceback=True)
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"robojax: error: {message}\n(ROBOJAX_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        _leave_others(code, err)
        sys.exit(code)


def _leave_others(code: int, err: Exception, show_traceback: bool = False) -> None:
    """In a multi-process run, exit at once (after printing `err`'s traceback with
    `show_traceback`, which the exit would otherwise swallow): JAX's own exit would wait for the
    other processes, which wait in their next collective for this one, each until the timeout.
    Exiting breaks the collective, so they stop with an error naming a lost process. After a
    `PeerLostError` there is no one to wait for, and JAX itself aborts this process moments
    after it notices the loss, so the exit comes first."""
    import jax

    from robojax.core.distributed import PeerLostError

    if not (jax.distributed.is_initialized() and jax.process_count() > 1):
        return
    if show_traceback:
        import traceback

        traceback.print_exception(err)
    sys.stdout.flush()
    sys.stderr.flush()
    if not isinstance(err, PeerLostError) and jax.process_index() == 0:
        # Process 0 hosts the coordinator, whose loss aborts the others: leaving a moment later
        # lets those failing with the same error (bad flags) exit with it on their own.
        time.sleep(_COORDINATOR_GRACE_S)
    os._exit(code)


_COORDINATOR_GRACE_S = 2.0


if __name__ == "__main__":
    run()
