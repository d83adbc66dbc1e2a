"""A run directory on disk: `config.json` (the arguments it was trained with), `checkpoints/`,
`metrics.csv`, `tb/`, plots and videos.

Generic over the arguments' dataclass, so training, evaluation, collection and export read and
write runs the same way (`robojax.runs` binds it to `TrainArgs` and the algorithm registry).
"""

import dataclasses
import errno
import json
import time
import typing
from pathlib import Path
from typing import Any

import jax

from robojax.io import checkpoint

CONFIG = "config.json"
CHECKPOINTS = "checkpoints"


class RunWriteError(OSError):
    """The run directory cannot be written (full disk, no permission, read-only)."""


_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS,
                 errno.ENOTDIR, errno.EEXIST}
_WRITE_MESSAGES = ("No space left on device", "Disk quota exceeded", "Read-only file system",
                   "Permission denied")


def write_failure(err: BaseException) -> str | None:
    """Why writing failed, when `err` (or an exception it was raised from, e.g. inside orbax)
    is a full disk or a path that cannot be written; else None."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _WRITE_ERRNOS:
            return err.strerror or str(err)
        hit = next((m for m in _WRITE_MESSAGES if m in str(err)), None)
        if hit:
            return hit
        err = err.__cause__ or err.__context__
    return None


def default_run_dir(env_name: str, algo_name: str) -> Path:
    """runs/<env>-<algo>-<date>-<time>."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{env_name.replace(':', '-')}-{algo_name}-{stamp}"


def is_run(run_dir: str | Path) -> bool:
    return (Path(run_dir) / CONFIG).exists()


def write_config(run_dir: str | Path, args: Any) -> None:
    """Write the frozen dataclass `args` to `run_dir/config.json` (creating the directory)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG).write_text(json.dumps(to_json(args), indent=2))


def read_config(run_dir: str | Path, args_type: type) -> Any:
    """The `args_type` instance saved in `run_dir/config.json`."""
    path = Path(run_dir) / CONFIG
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} has no {CONFIG}; is it a robojax run directory? "
                                "Pass a directory written by `robojax train`.")
    return from_json(args_type, json.loads(path.read_text()))


def to_json(obj):
    """Dataclasses to dicts, paths to strings, tuples to lists, recursively."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple):
        return [to_json(x) for x in obj]
    return obj


def from_json(cls, data: dict):
    """A frozen dataclass from its JSON form: nested configs rebuilt, lists back to tuples,
    paths back to Paths; a field renamed since (`cls.RENAMED`, old name -> new) is read under
    its new name; unknown keys (from other versions) are skipped."""
    renamed = getattr(cls, "RENAMED", {})
    data = {renamed.get(k, k): v for k, v in data.items()}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value, hint = data[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_json(hint, value)
        elif isinstance(value, list):
            value = tuple(value)
        elif value is not None and Path in typing.get_args(hint) + (hint,):
            value = Path(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def restore_states(run_dir: str | Path, abstract_state: Any, num_seeds: int,
                   identity: dict | None = None, step: int | None = None) -> tuple[Any, int]:
    """The newest intact checkpoint of `run_dir` (or the one of iteration `step`), restored
    into the shapes of one seed's `abstract_state` (e.g. `jax.eval_shape(init, ...)`: no values
    are computed), stacked over `num_seeds` seeds when there are several; and its iteration.
    `identity` is checked against the one the checkpoint records (`checkpoint.restore`)."""
    if num_seeds > 1:
        abstract_state = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct((num_seeds, *x.shape), x.dtype), abstract_state)
    return checkpoint.restore(Path(run_dir) / CHECKPOINTS, abstract_state, step=step,
                              identity=identity)


def seed_state(states: Any, num_seeds: int, index: int, run_dir: str | Path = "the run") -> Any:
    """Seed `index`'s state of a run's restored `states`; an index past the run's seeds is a
    named error."""
    if not 0 <= index < num_seeds:
        raise ValueError(f"seed index {index} is out of range: {run_dir} trained {num_seeds} "
                         f"seed(s); pass 0..{num_seeds - 1}.")
    return states if num_seeds == 1 else jax.tree.map(lambda x: x[index], states)
