"""The host loop around a compiled algorithm: run directory, progress, eval, logging,
checkpoints, learning-curve plot and rollout video. The math lives in `robojax.algos`."""

import concurrent.futures
import dataclasses
import functools
import json
import math
import time
import typing
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from robojax import algos
from robojax.algos.apg import APGConfig
from robojax.algos.bc import BCConfig
from robojax.algos.ild import ILDConfig
from robojax.algos.ppo import PPOConfig
from robojax.algos.shac import SHACConfig
from robojax.core.adapters import make_env, parse_overrides
from robojax.io import checkpoint
from robojax.io.metrics import MetricsLogger
from robojax.io.progress import TrainProgress, console


@dataclasses.dataclass(frozen=True)
class TrainArgs:
    """Train a policy; writes checkpoints, metrics.csv, TensorBoard events, a plot and a video."""

    algo: str = "ppo"
    """Training algorithm: ppo, bc, apg, shac or ild."""
    env: str = "cartpole-balance"
    """A registered env (see `robojax envs`), `playground:<Name>` or `brax:<name>`."""
    run_dir: Path | None = None
    """Output directory; default runs/<env>-<algo>-<time>."""
    resume: Path | None = None
    """Continue the run in this directory from its latest checkpoint (other flags ignored)."""
    seed: int = 0
    """Seed of every random draw; same seed and machine give bitwise the same run."""
    num_seeds: int = 1
    """Train this many seeds at once, vmapped in one compiled program."""
    num_envs: int | None = None
    """Parallel envs per seed (overrides the algorithm config)."""
    num_timesteps: int | None = None
    """Env steps per seed (overrides the algorithm config)."""
    episode_length: int | None = None
    """Time limit in control steps; default: the env config's."""
    env_config: tuple[str, ...] = ()
    """Overrides of the env's config as KEY=VALUE, e.g. `--env-config observation=keypoints`
    (values read as Python literals; `robojax envs` lists the envs)."""
    eval_env_config: tuple[str, ...] = ()
    """Overrides applied on top of --env-config for the periodic evaluations (and `robojax
    eval` of the run) only: train on a shaped reward, log the task's, e.g. `--env-config
    "reward_scales={'energy': 1.0}" --eval-env-config "reward_scales={'energy': 0.0}"`."""
    video: bool = True
    """Render a rollout of the final policy to video.mp4."""
    progress: bool = True
    """Show a live progress bar."""
    policy: str | None = None
    """Policy family for learning from demonstrations: gaussian, diffusion, flow, energy."""
    dataset: Path | None = None
    """Demonstrations (HDF5, robomimic layout) for --algo bc."""
    demo: Path | None = None
    """The one demonstration (HDF5) that --algo ild imitates."""
    ppo: PPOConfig = PPOConfig()
    """PPO hyperparameters (used when --algo ppo)."""
    bc: BCConfig = BCConfig()
    """Behaviour-cloning hyperparameters (used when --algo bc)."""
    apg: APGConfig = APGConfig()
    """Analytic-policy-gradient hyperparameters (used when --algo apg)."""
    shac: SHACConfig = SHACConfig()
    """Short-horizon actor-critic hyperparameters (used when --algo shac)."""
    ild: ILDConfig = ILDConfig()
    """Imitation-through-differentiable-physics hyperparameters (used when --algo ild)."""

    def algo_config(self):
        cfg = getattr(self, self.algo)
        fields = {f.name for f in dataclasses.fields(cfg)}
        given = (("num_envs", self.num_envs), ("num_timesteps", self.num_timesteps),
                 ("episode_length", self.episode_length), ("policy", self.policy),
                 ("dataset", self.dataset), ("demo", self.demo))
        for name, value in given:
            if value is not None and name not in fields:
                raise ValueError(f"--{name.replace('_', '-')} does not apply to --algo "
                                 f"{self.algo}; drop it.")
        return dataclasses.replace(cfg, **{k: v for k, v in given if v is not None})


def _to_json(obj):
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple):
        return list(obj)
    return obj


def eval_overrides(args: TrainArgs, extra: dict | None = None) -> dict:
    """The env-config overrides a run is evaluated with: --env-config, then --eval-env-config,
    then `extra`, each key replacing the one before (a `reward_scales` given later replaces
    the earlier one whole, then merges into the env's defaults)."""
    return {**parse_overrides(args.env_config), **parse_overrides(args.eval_env_config),
            **(extra or {})}


def args_from_json(data: dict) -> TrainArgs:
    """Rebuild the TrainArgs saved in a run's config.json."""
    return _from_json(TrainArgs, data)


def _from_json(cls, data: dict):
    """A frozen dataclass from its JSON form: nested configs rebuilt, lists back to tuples,
    paths back to Paths; unknown keys (from other versions) skipped."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value, hint = data[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = _from_json(hint, value)
        elif isinstance(value, list):
            value = tuple(value)
        elif value is not None and Path in typing.get_args(hint) + (hint,):
            value = Path(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def _default_run_dir(args: TrainArgs) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{args.env.replace(':', '-')}-{args.algo}-{stamp}"


def _stack(states):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *states)


def _first_seed(tree, num_seeds: int):
    return tree if num_seeds == 1 else jax.tree.map(lambda x: x[0], tree)


def _mean_metrics(metrics: dict) -> dict[str, float]:
    return {k: float(np.mean(np.asarray(v))) for k, v in metrics.items()}


def _chunking(cfg, num_evals: int) -> tuple[int, int, int]:
    """(iterations per compiled call, calls between evals, total iterations)."""
    total = cfg.num_iterations()
    per_eval = max(1, math.ceil(total / max(num_evals, 1)))
    calls_per_eval = min(per_eval, 4)  # a few progress updates between evals
    chunk = max(1, math.ceil(per_eval / calls_per_eval))
    per_eval = chunk * calls_per_eval
    return chunk, calls_per_eval, math.ceil(total / per_eval) * per_eval


def train(args: TrainArgs) -> Path:
    """Run (or resume) training as `args` says; returns the run directory."""
    start = time.perf_counter()
    if args.resume is not None:
        run_dir = Path(args.resume)
        config_path = run_dir / "config.json"
        if not config_path.exists():
            raise FileNotFoundError(f"{run_dir} has no config.json; is it a robojax run "
                                    "directory? Pass the directory `robojax train` created.")
        args = dataclasses.replace(args_from_json(json.loads(config_path.read_text())),
                                   resume=run_dir, run_dir=run_dir, progress=args.progress)
    algo = algos.get(args.algo)
    cfg = args.algo_config()
    cfg.validate()  # bad flags fail before anything is written
    if args.resume is None:
        run_dir = Path(args.run_dir) if args.run_dir else _default_run_dir(args)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(_to_json(args), indent=2))
    env = make_env(args.env, **parse_overrides(args.env_config))
    train_input = algo.make_train_input(cfg, env)
    eval_env = algo.make_eval_env(cfg, make_env(args.env, **eval_overrides(args)))
    unit, plot_key = algo.PROGRESS_UNIT, algo.PLOT_KEY
    seed_keys = jax.random.split(jax.random.PRNGKey(args.seed), args.num_seeds)
    if args.num_seeds == 1:
        state = algo.init(cfg, env, seed_keys[0])
    else:
        state = _stack([algo.init(cfg, env, k) for k in seed_keys])

    chunk, calls_per_eval, total_iters = _chunking(cfg, cfg.num_evals)
    steps_per_iter = cfg.steps_per_iteration()

    def run_chunk(state):
        step = functools.partial(algo.train_iteration, cfg, train_input)
        return jax.lax.scan(lambda s, _: step(s), state, None, length=chunk)

    def run_eval(state, key):
        return algo.evaluate(cfg, eval_env, state, key)

    if args.num_seeds > 1:
        run_chunk, run_eval = jax.vmap(run_chunk), jax.vmap(run_eval, in_axes=(0, None))
    run_chunk = jax.jit(run_chunk, donate_argnums=0)
    run_eval = jax.jit(run_eval)
    eval_key = jax.random.PRNGKey(args.seed + 1_000_003)

    ckpt_dir = run_dir / "checkpoints"
    resumed_iter = None
    if args.resume is not None:
        checkpoint.remove_unfinished(ckpt_dir)
        try:
            state, resumed_iter = checkpoint.restore(ckpt_dir, state)
            console.print(f"resumed {run_dir} at iteration {resumed_iter}")
        except FileNotFoundError:
            console.print(f"no finished checkpoint in {ckpt_dir}; starting from scratch")
    iteration = resumed_iter or 0
    logger = MetricsLogger(run_dir, resume_env_steps=None if resumed_iter is None
                           else resumed_iter * steps_per_iter, step_key=unit)
    wall_offset = logger.last_wall_time if resumed_iter is not None else 0.0

    def wall() -> float:
        return wall_offset + time.perf_counter() - start

    def evaluate_and_log(state, train_metrics: dict) -> dict:
        eval_metrics = _mean_metrics(run_eval(state, jax.random.fold_in(eval_key, iteration)))
        row = {unit: iteration * steps_per_iter, "wall_time_s": wall(),
               "iteration": iteration, **train_metrics, **eval_metrics}
        logger.log(row)
        return row

    console.print(f"[bold]robojax[/] {args.algo} on {args.env}: {cfg.num_envs} envs x "
                  f"{args.num_seeds} seed(s), {total_iters * steps_per_iter:,} steps per seed, "
                  f"{len(jax.devices())} {jax.default_backend()} device(s) → {run_dir}")
    train_key = "train/reward" if unit == "env_steps" else "train/loss"
    progress = TrainProgress(total_iters * steps_per_iter, enabled=args.progress,
                             unit=unit.replace("_", " "), train_label=train_key.split("/")[1],
                             eval_label=plot_key.removeprefix("eval/"))
    with (progress, concurrent.futures.ThreadPoolExecutor(1) as pool,
          checkpoint.Writer(ckpt_dir) as checkpoints):
        progress.update(iteration * steps_per_iter, status="compiling")
        # The train step compiles on another thread while the first evaluation compiles and
        # runs: a cold start costs the longer of the two, not their sum.
        compiling = pool.submit(lambda: run_chunk.lower(state).compile())
        if resumed_iter is None:
            row = evaluate_and_log(state, {})
            progress.update(0, eval_reward=row[plot_key])
        compiling.result()
        while iteration < total_iters:
            state, metrics = run_chunk(state)
            iteration += chunk
            train_metrics = _mean_metrics(metrics)
            progress.update(iteration * steps_per_iter, train_reward=train_metrics.get(
                train_key), status="training")
            if iteration % (chunk * calls_per_eval) == 0 or iteration >= total_iters:
                row = evaluate_and_log(state, train_metrics)
                checkpoints.write(iteration, state)
                progress.update(iteration * steps_per_iter, eval_reward=row[plot_key])
    logger.close()
    _finish(args, run_dir, env, algo, cfg, _first_seed(state, args.num_seeds), wall())
    return run_dir


def train_or_resume(args: TrainArgs) -> Path:
    """`train(args)` into `args.run_dir`, unless a run is already there: then resume it from
    its latest checkpoint (a finished run only redraws its plot). For sweeps that are stopped
    and started again."""
    if args.run_dir is not None and (Path(args.run_dir) / "config.json").exists():
        return train(dataclasses.replace(args, resume=args.run_dir))
    return train(args)


def _finish(args: TrainArgs, run_dir: Path, env, algo, cfg, state, wall_time: float) -> None:
    from robojax.io.metrics import read_metrics
    from robojax.io.plots import plot_learning_curve

    unit, key = algo.PROGRESS_UNIT, algo.PLOT_KEY
    title = f"{args.algo} ({cfg.policy})" if hasattr(cfg, "policy") else args.algo
    plot = plot_learning_curve(run_dir / "metrics.csv", run_dir / "learning_curve.png",
                               title=f"{title} on {args.env}", key=key, step_key=unit)
    last = read_metrics(run_dir / "metrics.csv")[-1]
    console.print(f"{key} {last[key]:.4g} (episode reward {last['eval/episode_reward']:.1f}) "
                  f"after {last[unit]:,} {unit.replace('_', ' ')}, {wall_time:.0f} s → {plot}")
    if args.video:
        from robojax.rollout import save_video

        save_video(env, algo.controller(cfg, state), run_dir / "video.mp4",
                   key=jax.random.PRNGKey(args.seed))
