"""Orbax checkpoints of the whole train state, written atomically and restored with checks.

A checkpoint directory that a kill left half-written is skipped with a warning, never fatal.
"""

import logging
import shutil
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

log = logging.getLogger(__name__)


class IncompatibleCheckpointError(ValueError):
    """The checkpoint's arrays do not fit the state the current config builds."""


def _manager(directory: Path, max_to_keep: int | None = 3,
             background: bool = False) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                           enable_async_checkpointing=background)
    return ocp.CheckpointManager(directory.absolute(), options=options)


def _describe(tree: Any) -> list[list]:
    """[path, shape, dtype] of every leaf: what a checkpoint must match to be restored."""
    return [[jax.tree_util.keystr(path), list(np.shape(x)), str(np.asarray(x).dtype)
             if not hasattr(x, "dtype") else str(x.dtype)]
            for path, x in jax.tree_util.tree_leaves_with_path(tree)]


def _stored_leaves(tree: Any) -> dict[str, Any]:
    # Orbax refuses zero-size arrays (MJX data has several); they carry no values, so the
    # target's own empty arrays stand in for them on restore.
    return {f"{i:05d}": x for i, x in enumerate(jax.tree.leaves(tree)) if np.size(x) > 0}


def save(directory: str | Path, step: int, state: Any, max_to_keep: int | None = 3) -> Path:
    """Write `state` as checkpoint `step` under `directory` (temporary dir, then rename)."""
    with Writer(directory, max_to_keep) as writer:
        writer.write(step, state)
    return Path(directory) / str(step)


class Writer:
    """A run's checkpoints, written in the background: `write` returns once the state is
    copied to host memory (so the next train step may donate its buffers), and the files follow
    on another thread (temporary dir, then rename). Leaving the `with` block waits for the
    last write."""

    def __init__(self, directory: str | Path, max_to_keep: int | None = 3):
        self._manager = _manager(Path(directory), max_to_keep, background=True)

    def write(self, step: int, state: Any) -> None:
        self._manager.save(step, force=True, args=ocp.args.Composite(
            leaves=ocp.args.StandardSave(_stored_leaves(state)),
            tree=ocp.args.JsonSave({"leaves": _describe(state)})))

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def steps(directory: str | Path) -> list[int]:
    """Finished checkpoint steps under `directory`, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    with _manager(directory) as manager:
        return sorted(manager.all_steps())


def _mismatch(saved: list[list], target: list[list]) -> str:
    saved_map = {p: (tuple(s), d) for p, s, d in saved}
    target_map = {p: (tuple(s), d) for p, s, d in target}
    lines = []
    for name in sorted(set(saved_map) | set(target_map)):
        a, b = saved_map.get(name, "missing"), target_map.get(name, "missing")
        if a != b:
            lines.append(f"  {name}: checkpoint {a}, current config {b}")
    return "\n".join(lines[:12]) + ("\n  ..." if len(lines) > 12 else "")


def _as_array(x: Any) -> Any:
    """A target leaf as an array: an abstract one (`jax.ShapeDtypeStruct`) becomes zeros."""
    return jnp.zeros(x.shape, x.dtype) if isinstance(x, jax.ShapeDtypeStruct) else x


def restore(directory: str | Path, target: Any, step: int | None = None) -> tuple[Any, int]:
    """Restore the newest readable checkpoint (or `step`) into the structure of `target`, a
    pytree of arrays or of their `jax.ShapeDtypeStruct`s (e.g. from `jax.eval_shape`).

    Returns (state, step). Raises FileNotFoundError when there is none and
    IncompatibleCheckpointError when its arrays do not match `target`'s.
    """
    directory = Path(directory)
    candidates = [step] if step is not None else sorted(steps(directory), reverse=True)
    if not candidates:
        raise FileNotFoundError(f"no finished checkpoint in {directory}; start a new run "
                                "instead of resuming.")
    expected = _describe(target)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _stored_leaves(target))
    with _manager(directory) as manager:
        for candidate in candidates:
            try:
                saved = manager.restore(candidate, args=ocp.args.Composite(
                    tree=ocp.args.JsonRestore()))["tree"]["leaves"]
            except Exception as err:  # a torn write shows up as unreadable metadata
                log.warning("skipping unreadable checkpoint %s: %s", candidate, err)
                continue
            if saved != expected:
                raise IncompatibleCheckpointError(
                    f"checkpoint {directory / str(candidate)} does not match the state the "
                    f"current config builds:\n{_mismatch(saved, expected)}\nResume with the "
                    "config the run was started with, or start a new run directory.")
            try:
                leaves = manager.restore(candidate, args=ocp.args.Composite(
                    leaves=ocp.args.StandardRestore(abstract)))["leaves"]
            except Exception as err:
                log.warning("skipping unreadable checkpoint %s: %s", candidate, err)
                continue
            flat = [leaves.get(f"{i:05d}", _as_array(x))
                    for i, x in enumerate(jax.tree.leaves(target))]
            return jax.tree.unflatten(jax.tree.structure(target), flat), candidate
    raise FileNotFoundError(f"no readable checkpoint in {directory}.")


def remove_unfinished(directory: str | Path) -> list[Path]:
    """Delete temporary directories a killed save left behind; returns what was removed."""
    directory = Path(directory)
    removed = []
    for path in directory.glob("*.orbax-checkpoint-tmp*"):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def tree_equal(a: Any, b: Any) -> bool:
    """Bitwise equality of two pytrees of arrays."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb, strict=True))
