"""A training run's arguments and loading a finished run back.

`TrainArgs` holds what `robojax train` takes: the shared flags of `RunArgs` plus one field per
registered algorithm (`--ppo.*`, `--bc.*`, ...), generated from the registry. `load_run`
rebuilds a run's algorithm, config and env from its directory and restores its checkpoint.
"""

import dataclasses
import functools
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import jax
import tyro

from robojax import algos, envs
from robojax.core.env import Env
from robojax.io import run as run_dir_io


@dataclasses.dataclass(frozen=True)
class RunArgs:
    """Train a policy; writes checkpoints, metrics.csv, TensorBoard events, a plot and a video."""

    algo: str = "ppo"
    """Training algorithm (see `robojax.algos.names()`): ppo, bc, dagger, apg, shac, ild, sac,
    rlpd, hil, reinflow, dppo or residual."""
    env: str = "cartpole-balance"
    """A registered env (see `robojax envs`), `playground:<Name>` or `brax:<name>`."""
    run_dir: Path | None = None
    """Output directory; default runs/<env>-<algo>-<time>."""
    resume: Path | None = None
    """Continue the run in this directory from its newest intact checkpoint; takes
    --num-timesteps (to train longer), --on-nonfinite, --keep-checkpoints, --video and
    --progress, and refuses other flags that differ from the run's."""
    preset: Literal["auto", "none"] = "auto"
    """auto: the task's training preset (`robojax envs` lists them) for every field no flag
    sets; none: the algorithm's plain defaults."""
    seed: int = 0
    """Seed of every random draw; same seed and machine give bitwise the same run."""
    num_seeds: int = 1
    """Train this many seeds at once, vmapped in one compiled program."""
    num_envs: int | None = None
    """Parallel training envs per seed (overrides the algorithm config)."""
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
    on_nonfinite: Literal["stop", "rollback"] = "stop"
    """When the parameters or optimizer state turn NaN or infinite: stop with an error naming
    the iteration and the last good checkpoint, or roll back to that checkpoint with the
    learning rates lowered tenfold (at most 3 times; recorded in config.json)."""
    rollbacks: tyro.conf.Suppress[int] = 0
    """Rollbacks the run has made (written by the trainer)."""
    video: bool = True
    """Render a rollout of the final policy to video.mp4."""
    progress: bool = True
    """Show a live progress bar."""
    keep_checkpoints: int = 3
    """Checkpoints kept on disk, the newest; 0 keeps every one (each can then be scored with
    `robojax eval RUN --checkpoint N`). A resumed run may change it."""
    policy: str | None = None
    """Policy family for learning from demonstrations: gaussian, diffusion, flow, energy."""
    dataset: Path | None = None
    """Demonstrations (HDF5, robomimic layout) for --algo bc, or sampled beside online data
    by --algo sac, rlpd and hil."""
    demo: Path | None = None
    """The one demonstration (HDF5) that --algo ild imitates."""
    init_from: Path | None = None
    """The run a fine-tuning algorithm starts from: a `--algo bc --policy flow` run for
    --algo reinflow, `--policy diffusion` for --algo dppo, any `--algo bc` run for --algo
    residual."""
    distributed: bool = False
    """Train across processes with jax.distributed, one per host (or per GPU), every process
    started with the same command: with --coordinator, --num-processes and --process-id, or
    with none of them under SLURM (srun), Open MPI (mpirun) or on a Cloud TPU slice, where JAX
    reads them. Process 0 writes the run directory, which must be on a filesystem all
    processes share."""
    coordinator: str | None = None
    """HOST:PORT of the coordinator process 0 hosts, for --distributed."""
    num_processes: int | None = None
    """Processes of a --distributed run (config.json records the count; a resumed run needs
    the same)."""
    process_id: int | None = None
    """This process's index, 0 to N-1, in a --distributed run."""
    distributed_timeout: int = 60
    """Seconds a --distributed run waits for every process to join; later, a process silent
    this long counts as gone and the others stop with an error."""

    def algo_config(self):
        """The chosen algorithm's config with the shared flags applied."""
        cfg = getattr(self, self.algo)
        fields = {f.name for f in dataclasses.fields(cfg)}
        given = (("num_envs", self.num_envs), ("num_timesteps", self.num_timesteps),
                 ("episode_length", self.episode_length), ("policy", self.policy),
                 ("dataset", self.dataset), ("demo", self.demo), ("init_from", self.init_from))
        for name, value in given:
            if value is not None and name not in fields:
                raise ValueError(f"--{name.replace('_', '-')} does not apply to --algo "
                                 f"{self.algo}; drop it.")
        return dataclasses.replace(cfg, **{k: v for k, v in given if v is not None})

    def validate(self) -> None:
        """Refuse what cannot run before anything is written: a seed count below one, an
        unknown env, an env-config field the env does not have."""
        if self.num_seeds < 1:
            raise ValueError(f"--num-seeds must be >= 1, got {self.num_seeds}.")
        if self.keep_checkpoints < 0:
            raise ValueError(f"--keep-checkpoints must be >= 0 (0 keeps every checkpoint), got "
                             f"{self.keep_checkpoints}.")
        if ":" not in self.env:  # foreign envs (playground:, brax:) are checked when built
            envs.get_config(self.env, **self.env_overrides())
            envs.get_config(self.env, **self.eval_overrides())
        self.algo_config().validate()
        if getattr(self.algo_config(), "teleop", False) and self.num_seeds > 1:
            raise ValueError(f"--{self.algo}.teleop serves one page to one run; drop "
                             f"--num-seeds {self.num_seeds} (or the page).")
        launch = {"--coordinator": self.coordinator, "--process-id": self.process_id}
        given = [flag for flag, value in launch.items() if value is not None]
        if given and not self.distributed:
            raise ValueError(f"{' and '.join(given)} apply to multi-process runs; add "
                             "--distributed.")
        if self.distributed:
            from robojax.core.distributed import check_flags

            check_flags(self.coordinator, self.num_processes, self.process_id)

    def env_overrides(self) -> dict:
        """The env-config overrides training runs with (--env-config)."""
        return envs.parse_overrides(self.env_config, self.env)

    def eval_overrides(self, extra: dict | None = None) -> dict:
        """The env-config overrides a run is evaluated with: --env-config, then
        --eval-env-config, then `extra`, each key replacing the one before (a `reward_scales`
        given later replaces the earlier one whole, then merges into the env's defaults)."""
        return {**self.env_overrides(), **envs.parse_overrides(self.eval_env_config, self.env),
                **(extra or {})}


def _train_args_type(names: tuple[str, ...]) -> type:
    """`RunArgs` plus a field per registered algorithm holding its config."""
    fields = []
    for name in names:
        config = algos.get(name).Config
        summary = (config.__doc__ or name).strip().splitlines()[0].rstrip(".")
        help_text = f"{summary} (used with --algo {name})."
        fields.append((name, Annotated[config, tyro.conf.arg(help=help_text)],
                       dataclasses.field(default=config())))
    train_args = dataclasses.make_dataclass("TrainArgs", fields, bases=(RunArgs,), frozen=True)
    train_args.__module__ = __name__
    return train_args


TrainArgs = _train_args_type(tuple(algos.names()))
"""What `robojax train` takes: `RunArgs` and each registered algorithm's config."""


def renamed_flags() -> dict[str, str]:
    """Flags of fields renamed since earlier versions (`Config.RENAMED`), old -> new."""
    flags = {}
    for name in algos.names():
        for old, new in getattr(algos.get(name).Config, "RENAMED", {}).items():
            flags[f"--{name}.{old.replace('_', '-')}"] = f"--{name}.{new.replace('_', '-')}"
    return flags


# Fields a resumed run may change (e.g. train longer): left out of the checkpoint's identity,
# as are the learning rates (`--on-nonfinite rollback` lowers them).
RESUMABLE_FIELDS = ("num_timesteps",)
# Fields that set how a run is evaluated, never what it trains: left out of the identity too,
# so a run can be evaluated either way, and runs saved before such a field existed still load.
EVALUATION_FIELDS = ("deterministic_eval",)


def run_identity(args: Any) -> dict:
    """What a run's checkpoints record and are checked against on restore: the env and its
    config overrides, the algorithm and its config (less `RESUMABLE_FIELDS` and
    `EVALUATION_FIELDS`), and the versions that wrote them (recorded, not checked)."""
    import mujoco

    import robojax

    algo_config = {k: v for k, v in run_dir_io.to_json(args.algo_config()).items()
                   if k not in RESUMABLE_FIELDS + EVALUATION_FIELDS
                   and not k.endswith("learning_rate")}
    return {"env": args.env, "env_config": sorted(args.env_config), "algo": args.algo,
            "algo_config": algo_config,
            "versions": {"robojax": robojax.__version__, "jax": jax.__version__,
                         "mujoco": mujoco.__version__}}


# What a resumed run takes from the command line; every other flag must match the saved run.
_RESUME_FLAGS = ("num_timesteps", "video", "progress", "on_nonfinite", "keep_checkpoints")
# How this launch joins the other processes: taken from the command line, never compared.
_LAUNCH_FLAGS = ("distributed", "coordinator", "num_processes", "process_id",
                 "distributed_timeout")


def _flags(args: TrainArgs) -> dict[str, Any]:
    """Every flag of `args` by its command-line name, nested algorithm configs flattened."""
    flags = {}
    for f in dataclasses.fields(args):
        value = getattr(args, f.name)
        if f.name in algos.names():
            flags.update({f"{f.name}.{g.name}": getattr(value, g.name)
                          for g in dataclasses.fields(value)})
        elif f.name not in ("resume", "run_dir", *_LAUNCH_FLAGS):
            flags[f.name] = value
    return flags


def shared_flags(args: TrainArgs) -> dict[str, Any]:
    """The flags every process of a --distributed run must share: all but --process-id."""
    return {**_flags(args), "run_dir": args.run_dir, "resume": args.resume,
            **{k: getattr(args, k) for k in _LAUNCH_FLAGS if k != "process_id"}}


def check_process_count(saved: TrainArgs, processes: int, run_dir: Path) -> None:
    """Refuse to resume a run with a process count other than the one that trained it."""
    trained = saved.num_processes or 1
    if trained != processes:
        how = (f"with --distributed and {trained} processes" if trained > 1 else
               "as one process, without --distributed")
        raise ValueError(f"the run in {run_dir} was trained by {trained} process(es) and this "
                         f"resume has {processes}: resume it {how} (the same devices keep the run "
                         "reproducible), or start a new run directory.")


def resumed_args(given: TrainArgs, saved: TrainArgs) -> TrainArgs:
    """The saved run's arguments, with what `given` sets of `_RESUME_FLAGS` (e.g. more
    `--num-timesteps` to train longer); any other flag given with a value other than the saved
    one is refused by name."""
    defaults, given_flags, saved_flags = _flags(TrainArgs()), _flags(given), _flags(saved)
    changed = {k: v for k, v in given_flags.items()
               if v != defaults.get(k) and v != saved_flags.get(k)}
    refused = {k: v for k, v in changed.items() if k.rsplit(".", 1)[-1] not in _RESUME_FLAGS}
    if refused:
        named = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in refused.items())
        raise ValueError(f"--resume continues a run with the flags it was started with; {named} "
                         "would change it. Drop them (a resumed run takes --num-timesteps, "
                         "--on-nonfinite, --keep-checkpoints, --video and --progress), or start "
                         "a new run directory.")
    saved = dataclasses.replace(saved, **{k: getattr(given, k) for k in _LAUNCH_FLAGS})
    for name, value in changed.items():
        algo, _, field = name.rpartition(".")
        if algo:
            saved = dataclasses.replace(saved, **{algo: dataclasses.replace(
                getattr(saved, algo), **{field: value})})
        else:
            saved = dataclasses.replace(saved, **{field: value})
    return saved


def read_args(run_dir: str | Path) -> Any:
    """The `TrainArgs` a run directory was trained with."""
    return run_dir_io.read_config(run_dir, TrainArgs)


class Run(NamedTuple):
    """A run loaded back: its arguments, algorithm module and config, the env it is
    evaluated on, the restored train state (of one seed, or of all stacked) and the iteration
    of the checkpoint."""

    args: Any
    algo: Any
    cfg: Any
    env: Env
    state: Any
    step: int


def restore_run(run_dir: str | Path, env_config: dict | None = None,
                checkpoint: int | None = None) -> Run:
    """Like `load_run`, with the train states of all seeds (stacked when there are several)."""
    args = read_args(run_dir)
    algo = algos.get(args.algo)
    cfg = args.algo_config()
    env = envs.make(args.env, **args.eval_overrides(env_config))
    # The state as training built it (its env state may differ from the evaluation env's,
    # e.g. the action queue of a delay), and only its shapes: restoring needs no initial values.
    train_env = envs.make(args.env, **args.env_overrides()) if args.eval_env_config or \
        env_config else env
    make_input = getattr(algo, "restore_input", algo.make_train_input)  # reads no dataset
    init = functools.partial(algo.init, cfg, train_env, make_input(cfg, train_env))
    abstract = jax.eval_shape(init, jax.random.PRNGKey(0))
    states, step = run_dir_io.restore_states(run_dir, abstract, args.num_seeds,
                                             identity=run_identity(args), step=checkpoint)
    return Run(args, algo, cfg, env, states, step)


def load_run(run_dir: str | Path, seed_index: int = 0, env_config: dict | None = None,
             checkpoint: int | None = None) -> Run:
    """A run with the state of its latest checkpoint (or of the one of iteration
    `checkpoint`); of a run trained with `--num-seeds N`, the state of seed `seed_index`
    (0..N-1). `env_config` overrides the run's env config (after its `--eval-env-config`), e.g.
    to evaluate with the task's own reward a policy trained with shaping terms."""
    run = restore_run(run_dir, env_config, checkpoint)
    state = run_dir_io.seed_state(run.state, run.args.num_seeds, seed_index, run_dir)
    return run._replace(state=state)


def run_controller(run_dir: str | Path, env_name: str):
    """The trained policy of the run in `run_dir` (its latest checkpoint, first seed) as a
    controller, checked to be trained on `env_name`."""
    args, algo, cfg, _, state, _ = load_run(run_dir)
    if args.env != env_name:
        raise ValueError(f"the run in {run_dir} was trained on {args.env!r}, not "
                         f"{env_name!r}; pass --env {args.env}.")
    return algo.controller(cfg, state)
