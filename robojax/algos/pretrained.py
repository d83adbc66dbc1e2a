"""Starting an algorithm from a trained run (`--init-from RUN_DIR`): loading it and refusing,
by name, a run that cannot be the start (another env, another algorithm or policy family)."""

from pathlib import Path
from typing import Any

from robojax.core.env import Env, display_name
from robojax.io import run as run_dir_io


def load_cloned(path: Path | None, env: Env, families: tuple[str, ...], algo: str) -> Any:
    """The behaviour-cloning run in `path` (`robojax.runs.Run`, latest checkpoint, first seed),
    checked to clone one of `families` on `env`."""
    from robojax import runs  # the run layer sits above the algorithms

    family = " or ".join([", ".join(families[:-1]), families[-1]] if len(families) > 1 else
                         families)
    name = display_name(env)
    start = f"`robojax train --algo bc --policy {families[0]} --env {name} ...`"
    if path is None:
        raise ValueError(f"--algo {algo} fine-tunes a cloned {family} policy: pass "
                         f"--init-from RUN_DIR, the directory of a {start} run.")
    if not run_dir_io.is_run(path):
        where, again = ("", "") if Path(path).is_absolute() else (
            f" under the current directory, {Path.cwd()}",
            "relative paths are read from there: run from the directory training ran in, or ")
        raise ValueError(f"--init-from {path} is not a run directory{where} (no config.json); "
                         f"{again}pass the directory of a {start} run.")
    args = runs.read_args(path)
    cloned = args.algo_config().policy if args.algo == "bc" else None
    if cloned not in families:
        trained = args.algo if cloned is None else f"bc --policy {cloned}"
        fits = {"flow": "reinflow", "diffusion": "dppo"}.get(cloned)
        hint = f" (--algo {fits} fine-tunes it)" if fits and fits != algo else ""
        raise ValueError(f"--init-from {path} is a `--algo {trained}` run{hint}; --algo {algo} "
                         f"fine-tunes a behaviour-cloned {family} policy: train one with {start}.")
    if args.env != name:
        raise ValueError(f"--init-from {path} was trained on {args.env!r}, not {name!r}; "
                         f"pass --env {args.env} or a run cloned on {name}.")
    try:
        run = runs.load_run(path)
    except FileNotFoundError as err:
        raise ValueError(f"--init-from {path} holds no checkpoint to start from ({err}); "
                         "train the clone to its end, or resume it.") from err
    if run.state.obs_mean.shape[-1] != env.observation_spec.size:
        raise ValueError(f"--init-from {path} sees {run.state.obs_mean.shape[-1]} observation "
                         f"values and this {name} {env.observation_spec.size}: pass the "
                         f"--env-config it was trained with ({list(args.env_config)}).")
    return run
