"""The host loop around a compiled algorithm: run directory, progress, eval, logging,
checkpoints, learning-curve plot and rollout video. The math lives in `robojax.algos`; the
contract between the two is `robojax.algos.base`.

`train(args)` runs four stages: `resolve_args` (the arguments, or those of the run to
resume), `build` (env, train input, initial state: what can fail on bad input fails here,
before the run directory is written), `run_loop` (compiled iterations, evaluations,
checkpoints) and `finish` (plot and video).

With `--distributed` every process runs the same loop over global arrays (`join_processes`
connects them first); process 0 alone writes the config, metrics, plot and video, and all of
them write their parts of each checkpoint.
"""

import concurrent.futures
import dataclasses
import functools
import math
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from robojax import algos, envs
from robojax.algos import acting
from robojax.core import distributed, memory, sharding
from robojax.core.env import Env
from robojax.io import checkpoint
from robojax.io import run as run_dir_io
from robojax.io.metrics import MetricsLogger
from robojax.io.progress import TrainProgress, console
from robojax.rollout import nonfinite_action_warning, reports_success
from robojax.runs import (
    TrainArgs,
    check_process_count,
    read_args,
    resumed_args,
    run_identity,
    shared_flags,
)


@jax.jit
def _stack(states: list):
    """The seeds' states as one, with a leading seed axis: one program for the whole tree
    (leaf by leaf, every distinct leaf shape would compile one at the run's start)."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *states)


@jax.jit
def _seed_zero(tree):
    return jax.tree.map(lambda x: x[0], tree)


def _first_seed(tree, num_seeds: int):
    return tree if num_seeds == 1 else _seed_zero(tree)


def _mean_metrics(metrics: dict) -> dict[str, float]:
    return {k: float(np.mean(distributed.host_value(v))) for k, v in metrics.items()}


def _chunking(cfg, num_evals: int) -> tuple[int, int, int]:
    """(iterations per compiled call, calls between evals, total iterations)."""
    total = cfg.num_iterations()
    per_eval = max(1, math.ceil(total / max(num_evals, 1)))
    calls_per_eval = min(per_eval, 4)  # a few progress updates between evals
    chunk = max(1, math.ceil(per_eval / calls_per_eval))
    per_eval = chunk * calls_per_eval
    return chunk, calls_per_eval, math.ceil(total / per_eval) * per_eval


def resolve_args(args: TrainArgs, run_dir: Path) -> TrainArgs:
    """The arguments to train with: `args`, or, with `args.resume`, the saved arguments of the
    run in `run_dir` with the flags a resumed run takes (`resumed_args`)."""
    if args.resume is None:
        return args
    saved = read_args(run_dir)
    check_process_count(saved, jax.process_count(), run_dir)
    args = dataclasses.replace(resumed_args(args, saved), resume=run_dir, run_dir=run_dir)
    args.validate()
    return args


class Setup(NamedTuple):
    """What the loop needs: the algorithm, its config, the env (unbatched), what each
    iteration consumes, the batched evaluation env and the initial state of every seed."""

    algo: Any
    cfg: Any
    env: Env
    train_input: Any
    eval_env: Env
    state: Any


def build(args: TrainArgs) -> Setup:
    """Envs, train input and initial state (stacked over seeds) for `args`."""
    algo = algos.get(args.algo)
    cfg = args.algo_config()
    cfg.validate()
    env = envs.make(args.env, **args.env_overrides())
    memory.check(cfg, env, args.num_seeds, algo=args.algo)
    train_input = algo.make_train_input(cfg, env)
    eval_env = acting.make_eval_env(cfg, envs.make(args.env, **args.eval_overrides()))
    seed_keys = jax.random.split(jax.random.PRNGKey(args.seed), args.num_seeds)
    states = [algo.init(cfg, env, train_input, key) for key in seed_keys]
    state = states[0] if args.num_seeds == 1 else _stack(states)
    if jax.process_count() > 1:  # every leaf a global array, also of algorithms that never shard
        state = sharding.place_on_mesh(state)
    return Setup(algo, cfg, env, train_input, eval_env, committed(state))


def train(args: TrainArgs) -> Path:
    """Run (or resume) training as `args` says; returns the run directory."""
    start = time.perf_counter()
    args.validate()  # bad flags fail before anything is written
    args = join_processes(args)
    run_dir = Path(args.resume or args.run_dir or run_dir_io.default_run_dir(args.env, args.algo))
    if args.distributed:
        run_dir = Path(distributed.exchange_text(str(run_dir))[0])  # process 0's
    try:
        args = resolve_args(args, run_dir)
        setup = build(args)  # bad input (data, memory) fails before anything is written
        if distributed.is_main():
            run_dir_io.write_config(run_dir, args)
        state, wall_time = run_loop(args, run_dir, setup, start)
        state = _first_seed(state, args.num_seeds)
        if jax.process_count() > 1:
            state = distributed.to_host(state)
        if distributed.is_main():
            finish(args, run_dir, setup, state, wall_time)
    except Exception as err:
        if distributed.is_peer_loss(err):
            raise distributed.PeerLostError(
                f"process {jax.process_index()} stops: another of the run's "
                f"{jax.process_count()} processes is gone ({_first_line(err)}). The "
                f"checkpoints written so far are intact: start all {jax.process_count()} "
                f"processes again with --resume {run_dir}.") from err
        reason = run_dir_io.write_failure(err)
        if reason is None:
            raise
        then = (f"then continue with `robojax train --resume {run_dir}` (the checkpoints "
                "written so far are intact)" if run_dir_io.is_run(run_dir) else
                "or pick another --run-dir (nothing was written)")
        raise run_dir_io.RunWriteError(
            f"cannot write the run directory {run_dir.absolute()}: {reason}. Free space or "
            f"make it writable, {then}.") from err
    return run_dir


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def join_processes(args: TrainArgs) -> TrainArgs:
    """With `--distributed`: connect to the other processes, check that all were started with
    the same flags, and record the process count. Only process 0 prints from here on."""
    if not args.distributed:
        return args
    distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                           args.distributed_timeout)
    args = dataclasses.replace(args, num_processes=jax.process_count())
    distributed.check_same(shared_flags(args))  # each check here fails on every process at once
    devices, num_envs = jax.device_count(), getattr(args.algo_config(), "num_envs", 0)
    if args.resume is None and num_envs % devices:  # a resumed run was checked when it started
        raise ValueError(f"--num-envs {num_envs} does not split over the {devices} devices of "
                         f"the {jax.process_count()} processes; use a multiple of {devices}.")
    console.quiet = not distributed.is_main()
    return args


class NonFiniteTrainingError(RuntimeError):
    """The learner's state (parameters, optimizer, statistics) became NaN or infinite."""


# Env states and replay data are left out: the NaN guard resets diverged envs, and the
# learners keep non-finite transitions out of their updates.
_UNCHECKED_FIELDS = ("env_state", "buffer", "history")


def nonfinite_count(state: Any) -> jax.Array:
    """How many values of the learner's part of `state` are NaN or infinite."""
    if dataclasses.is_dataclass(state):
        state = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)
                 if f.name not in _UNCHECKED_FIELDS and f.metadata.get("pytree_node", True)}
    leaves = [x for x in jax.tree.leaves(state) if jnp.issubdtype(jnp.result_type(x),
                                                                  jnp.inexact)]
    return sum((jnp.sum(~jnp.isfinite(x)) for x in leaves), jnp.zeros((), jnp.int32))


def _compiled_steps(args: TrainArgs, setup: Setup, chunk: int):
    """The compiled `chunk` iterations (state donated) and evaluation, vmapped over seeds.
    The chunk also counts the non-finite values its final state holds (`nonfinite_count`)."""
    algo, cfg = setup.algo, setup.cfg

    def run_chunk(state):
        step = functools.partial(algo.train_iteration, cfg, setup.train_input)
        state, metrics = jax.lax.scan(lambda s, _: step(s), state, None, length=chunk)
        return state, {**metrics, "train/nonfinite": nonfinite_count(state)}

    def run_eval(state, key):
        return algo.evaluate(cfg, setup.eval_env, state, key)

    if args.num_seeds > 1:
        run_chunk, run_eval = jax.vmap(run_chunk), jax.vmap(run_eval, in_axes=(0, None))
    return jax.jit(run_chunk, donate_argnums=0), jax.jit(run_eval)


def committed(state):
    """`state` with each array committed to the device(s) it is on, as checkpoints restore it.
    A chunk returns committed arrays whenever any of its inputs is committed, and jax compiles a
    program again for inputs that differ from the last call's only in that: an initial state
    mixing the two (a restored base policy beside freshly initialized weights) would have its
    first chunk and evaluation compiled twice, and its resume compiled a third time."""
    return jax.tree.map(lambda x: x if not isinstance(x, jax.Array) or x.committed
                        else jax.device_put(x, x.sharding), state)


def _resume_state(args: TrainArgs, ckpt_dir: Path, state):
    """The latest finished checkpoint's state and iteration, or `state` and None."""
    if args.resume is None:
        return state, None
    checkpoint.remove_unfinished(ckpt_dir)
    try:
        state, iteration = checkpoint.restore(ckpt_dir, state, identity=run_identity(args))
    except FileNotFoundError:
        console.print(f"no finished checkpoint in {ckpt_dir}; starting from scratch")
        return state, None
    for path in checkpoint.set_aside_newer(ckpt_dir, iteration):
        console.print(f"[yellow]warning:[/] the damaged checkpoint is kept as {path}")
    console.print(f"resumed {args.resume} at iteration {iteration}")
    return state, iteration


def run_loop(args: TrainArgs, run_dir: Path, setup: Setup, start: float) -> tuple[Any, float]:
    """Train to the end: compiled chunks of iterations, an evaluation (logged) and a
    background checkpoint every `calls_per_eval` chunks. Returns the final state and the run's
    wall time (including earlier sessions of a resumed run)."""
    algo, cfg = setup.algo, setup.cfg
    chunk, calls_per_eval, total_iters = _chunking(cfg, cfg.num_evals)
    steps_per_iter = cfg.steps_per_iteration()
    run_chunk, run_eval = _compiled_steps(args, setup, chunk)
    eval_key = jax.random.PRNGKey(args.seed + 1_000_003)
    ckpt_dir = Path(run_dir) / run_dir_io.CHECKPOINTS
    state, resumed_iter = _resume_state(args, ckpt_dir, setup.state)
    iteration = resumed_iter or 0
    unit, plot_key = algo.PROGRESS_UNIT, _plot_key(algo, setup.env)
    logger = MetricsLogger(run_dir, resume_step=None if resumed_iter is None
                           else resumed_iter * steps_per_iter,
                           step_key=unit) if distributed.is_main() else _NoMetrics()
    wall_offset = logger.last_wall_time if resumed_iter is not None else 0.0

    def wall() -> float:
        return wall_offset + time.perf_counter() - start

    warned = []

    def evaluate_and_log(state, train_metrics: dict) -> dict:
        eval_metrics = _mean_metrics(run_eval(state, jax.random.fold_in(eval_key, iteration)))
        row = {unit: iteration * steps_per_iter, "wall_time_s": wall(),
               "iteration": iteration, **train_metrics, **eval_metrics}
        logger.log(row)
        warning = nonfinite_action_warning(row)
        if warning and not warned:
            console.print(f"[yellow]warning:[/] iteration {iteration}: {warning}")
            warned.append(iteration)
        return row

    console.print(f"[bold]robojax[/] {args.algo} on {args.env}: "
                  f"{getattr(cfg, 'num_envs', cfg.num_eval_envs)} envs x {args.num_seeds} "
                  f"seed(s), {total_iters * steps_per_iter:,} {unit.replace('_', ' ')} per "
                  f"seed, {_devices()} → {run_dir}")
    progress = TrainProgress(total_iters * steps_per_iter,
                             enabled=args.progress and distributed.is_main(),
                             unit=unit.replace("_", " "),
                             train_label=algo.TRAIN_KEY.split("/")[1],
                             eval_label=plot_key.removeprefix("eval/"))
    with (progress, concurrent.futures.ThreadPoolExecutor(1) as pool,
          checkpoint.Writer(ckpt_dir, args.keep_checkpoints or None,
                            identity=run_identity(args)) as checkpoints):
        progress.update(iteration * steps_per_iter, status="compiling")
        # The train step compiles on another thread while the first evaluation compiles and
        # runs: a cold start costs the longer of the two, not their sum.
        compiling = pool.submit(lambda: run_chunk.lower(state).compile())
        if resumed_iter is None:
            row = evaluate_and_log(state, {})
            progress.update(0, eval_value=row[plot_key])
            if args.on_nonfinite == "rollback":  # a good state to roll back to from the start
                checkpoints.write(0, state)
        compiling.result()
        while iteration < total_iters:
            state, metrics = run_chunk(state)
            iteration, before = iteration + chunk, iteration
            nonfinite = int(np.sum(distributed.host_value(metrics["train/nonfinite"])))
            if nonfinite:  # nothing of it is logged or saved
                checkpoints.wait()
                args, setup, state, iteration = _roll_back(args, setup, run_dir, state,
                                                           metrics, iteration)
                run_chunk, run_eval = _compiled_steps(args, setup, chunk)
                continue
            train_metrics = _mean_metrics(metrics)
            progress.update(iteration * steps_per_iter,
                            train_value=train_metrics.get(algo.TRAIN_KEY), status="training")
            # At the first chunk's end at or past each evaluation point: a run resumed with more
            # --num-timesteps may step off the new schedule's grid.
            if _passed(before, iteration, chunk * calls_per_eval) or iteration >= total_iters:
                row = evaluate_and_log(state, train_metrics)
                checkpoints.write(iteration, state)
                progress.update(iteration * steps_per_iter, eval_value=row[plot_key])
    logger.close()
    return state, wall()


def _passed(before: int, after: int, every: int) -> bool:
    """Whether the iterations (before, after] include a multiple of `every`."""
    return after // every > before // every


class _NoMetrics:
    """The metrics logger of the processes other than 0 in a distributed run: process 0 logs."""

    last_wall_time = 0.0

    def log(self, row: dict) -> None:
        pass

    def close(self) -> None:
        pass


def _devices() -> str:
    count = f"{len(jax.devices())} {jax.default_backend()} device(s)"
    return count if jax.process_count() == 1 else f"{count} in {jax.process_count()} processes"


# --on-nonfinite rollback: each rollback multiplies the learning rates by this, at most this often.
ROLLBACK_LR_SCALE, MAX_ROLLBACKS = 0.1, 3


def _roll_back(args: TrainArgs, setup: Setup, run_dir: Path, state, metrics: dict,
               iteration: int) -> tuple[TrainArgs, Setup, Any, int]:
    """After a chunk ending at `iteration` left non-finite values in the learner: with
    `--on-nonfinite rollback` (and rollbacks left), the arguments with the learning rates
    lowered (recorded in config.json), the setup, and the state and iteration of the newest
    checkpoint; else NonFiniteTrainingError, naming the iteration and the last good checkpoint."""
    count = int(np.sum(metrics["train/nonfinite"]))
    ckpt_dir = run_dir / run_dir_io.CHECKPOINTS
    done, rollbacks = checkpoint.steps(ckpt_dir), args.rollbacks
    if args.on_nonfinite == "rollback" and done and rollbacks < MAX_ROLLBACKS:
        cfg = getattr(args, args.algo)
        rates = {f.name: getattr(cfg, f.name) * ROLLBACK_LR_SCALE
                 for f in dataclasses.fields(cfg) if f.name.endswith("learning_rate")}
        args = dataclasses.replace(args, rollbacks=rollbacks + 1, **{
            args.algo: dataclasses.replace(cfg, **rates)})
        if distributed.is_main():
            run_dir_io.write_config(run_dir, args)
        state, restored = checkpoint.restore(ckpt_dir, state, identity=run_identity(args))
        checkpoint.set_aside_newer(ckpt_dir, restored)
        console.print(f"[yellow]rollback {rollbacks + 1} of {MAX_ROLLBACKS}:[/] {count} NaN or "
                      f"infinite value(s) by iteration {iteration}; back to iteration "
                      f"{restored} with learning rate(s) x{ROLLBACK_LR_SCALE}: "
                      + ", ".join(f"{k}={v:.3g}" for k, v in rates.items()))
        return args, setup._replace(cfg=args.algo_config()), state, restored
    last = (f"the last good checkpoint is iteration {max(done)}: continue from it with "
            f"--resume {run_dir}" if done else "no checkpoint was written before it")
    tried = (f" after {rollbacks} rollback(s) with lower learning rates" if rollbacks else "")
    raise NonFiniteTrainingError(
        f"training diverged{tried}: {count} NaN or infinite value(s) in the parameters or "
        f"optimizer state by iteration {iteration}; {last}, or start again with a lower "
        "learning rate (or reward scaling, or --on-nonfinite rollback).")


def train_or_resume(args: TrainArgs) -> Path:
    """`train(args)` into `args.run_dir`, unless a run is already there: then resume it from
    its latest checkpoint (a finished run only redraws its plot). For sweeps that are stopped
    and started again."""
    if args.run_dir is not None and run_dir_io.is_run(args.run_dir):
        return train(dataclasses.replace(args, resume=args.run_dir))
    return train(args)


def _plot_key(algo, env: Env) -> str:
    """What the progress line shows and the learning curve plots: the algorithm's `PLOT_KEY`,
    or the return where that is the success rate and the env reports no success."""
    if algo.PLOT_KEY == "eval/success_rate" and not reports_success(env):
        return "eval/episode_reward"
    return algo.PLOT_KEY


def finish(args: TrainArgs, run_dir: Path, setup: Setup, state, wall_time: float) -> None:
    """The learning-curve plot, a summary line and (with `args.video`) a rollout video of
    `state`'s policy (one seed's)."""
    from robojax.io.metrics import read_metrics
    from robojax.io.plots import plot_learning_curve

    algo, cfg, env = setup.algo, setup.cfg, setup.env
    unit, key = algo.PROGRESS_UNIT, _plot_key(algo, env)
    title = f"{args.algo} ({cfg.policy})" if hasattr(cfg, "policy") else args.algo
    plot = plot_learning_curve(run_dir / "metrics.csv", run_dir / "learning_curve.png",
                               title=f"{title} on {args.env}", key=key, step_key=unit)
    last = read_metrics(run_dir / "metrics.csv")[-1]
    console.print(f"{key} {last[key]:.4g} (episode reward {last['eval/episode_reward']:.1f}) "
                  f"after {last[unit]:,} {unit.replace('_', ' ')}, {wall_time:.0f} s → {plot}")
    if "hil/intervention_rate" in last:
        from robojax.io.plots import plot_interventions

        plot_interventions(run_dir / "metrics.csv", run_dir / "interventions.png",
                           title=f"{title} on {args.env}")
    if args.video:
        from robojax.rollout import save_video

        save_video(env, algo.controller(cfg, state), run_dir / "video.mp4",
                   key=jax.random.PRNGKey(args.seed))
