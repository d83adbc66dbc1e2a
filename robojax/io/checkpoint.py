"""Orbax checkpoints of the whole train state, written atomically and restored with checks.

Each checkpoint records, beside its arrays, their shapes, a CRC-32 of every array and the run's
identity (env, algorithm and their configs; the versions that wrote it), all under a digest.
Restoring verifies each: a checkpoint that a kill left half-written or whose bytes were damaged
is skipped with a warning naming it, and the newest intact one is used; one written by another
run (a different identity) or for other shapes is refused with an error.
"""

import hashlib
import json
import logging
import shutil
import zlib
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from robojax.core import distributed

log = logging.getLogger(__name__)


class IncompatibleCheckpointError(ValueError):
    """The checkpoint's arrays do not fit the state the current config builds."""


class ForeignCheckpointError(ValueError):
    """The checkpoint was written by a run with another env, algorithm or config."""


class DamagedCheckpointError(ValueError):
    """No checkpoint in the directory is intact."""


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


def _crc32(x: Any) -> int:
    # Of the whole array: in a multi-process run, gathered from every process's shards.
    return zlib.crc32(np.ascontiguousarray(distributed.host_value(x)).reshape(-1)
                      .view(np.uint8))


def _digest(record: dict) -> str:
    body = {k: v for k, v in record.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _record(leaves: dict[str, Any], state: Any, identity: dict | None) -> dict:
    """What a checkpoint says about itself: shapes, checksums and identity, under a digest."""
    record = {"leaves": _describe(state), "crc32": {k: _crc32(x) for k, x in leaves.items()},
              "identity": identity}
    return {**record, "digest": _digest(record)}


def save(directory: str | Path, step: int, state: Any, max_to_keep: int | None = 3,
         identity: dict | None = None) -> Path:
    """Write `state` as checkpoint `step` under `directory` (temporary dir, then rename)."""
    with Writer(directory, max_to_keep, identity) as writer:
        writer.write(step, state)
    return Path(directory) / str(step)


class Writer:
    """A run's checkpoints, written in the background: `write` returns once the state is
    copied to host memory (so the next train step may donate its buffers), and the files follow
    on another thread (temporary dir, then rename). Leaving the `with` block waits for the
    last write. `identity` (JSON-able, e.g. the env and algorithm with their configs) is
    recorded in every checkpoint and checked by `restore`."""

    def __init__(self, directory: str | Path, max_to_keep: int | None = 3,
                 identity: dict | None = None):
        self._manager = _manager(Path(directory), max_to_keep, background=True)
        self._identity = identity

    def write(self, step: int, state: Any) -> None:
        leaves = _stored_leaves(state)
        self._manager.save(step, force=True, args=ocp.args.Composite(
            leaves=ocp.args.StandardSave(leaves),
            tree=ocp.args.JsonSave(_record(leaves, state, self._identity))))

    def wait(self) -> None:
        """Block until every checkpoint written so far is on disk."""
        self._manager.wait_until_finished()

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc is not None and distributed.is_peer_loss(exc):
            return  # the last write would wait for a process that is gone: leave it unfinished
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


def _identity_mismatch(saved: dict | None, expected: dict | None) -> str:
    """The identity fields (versions aside) that differ, as text; '' when they agree or
    either side has none."""
    if saved is None or expected is None:
        return ""
    keys = sorted((set(saved) | set(expected)) - {"versions"})
    return "; ".join(f"{k}: checkpoint {saved.get(k)!r}, this run {expected.get(k)!r}"
                     for k in keys if not _agrees(saved.get(k), expected.get(k)))


def _agrees(saved: Any, expected: Any) -> bool:
    """Whether a recorded identity value matches this run's. A config field the record lacks
    was added since the checkpoint was written: this run, configured from the run's saved
    flags, holds its default there, so it is not compared."""
    if isinstance(saved, dict) and isinstance(expected, dict):
        return set(saved) <= set(expected) and all(_agrees(v, expected[k])
                                                    for k, v in saved.items())
    return saved == expected


def _read_record(manager, candidate: int) -> dict:
    """The checkpoint's record, its digest verified; raises ValueError when damaged."""
    record = manager.restore(candidate, args=ocp.args.Composite(
        tree=ocp.args.JsonRestore()))["tree"]
    if set(record) != {"leaves"} and record.get("digest") != _digest(record):  # older: leaves
        raise ValueError("its record (shapes, checksums, identity) fails its digest")
    return record


def _verify(leaves: dict[str, Any], record: dict) -> None:
    """Raise ValueError naming the first array whose CRC-32 differs from the recorded one."""
    for name, crc in record.get("crc32", {}).items():
        if name not in leaves or _crc32(leaves[name]) != crc:
            raise ValueError(f"array {name} fails its checksum")


def restore(directory: str | Path, target: Any, step: int | None = None,
            identity: dict | None = None) -> tuple[Any, int]:
    """Restore the newest intact checkpoint (or `step`) into the structure of `target`, a
    pytree of arrays or of their `jax.ShapeDtypeStruct`s (e.g. from `jax.eval_shape`).

    A damaged checkpoint (unreadable, or failing its digest or an array's checksum) is skipped
    with a warning naming it. Returns (state, step). Raises FileNotFoundError when there is no
    finished checkpoint, DamagedCheckpointError when none is intact,
    ForeignCheckpointError when the recorded identity differs from `identity`, and
    IncompatibleCheckpointError when its arrays do not match `target`'s.
    """
    directory = Path(directory)
    finished = sorted(steps(directory), reverse=True)
    if not finished:
        raise FileNotFoundError(f"no finished checkpoint in {directory}; start a new run "
                                "instead of resuming.")
    if step is not None and step not in finished:
        raise FileNotFoundError(f"no finished checkpoint {step} in {directory}; it holds "
                                f"{', '.join(map(str, sorted(finished)))}.")
    candidates = [step] if step is not None else finished
    expected = _describe(target)
    abstract = jax.tree.map(_restore_target, _stored_leaves(target))
    damaged = []
    with _manager(directory) as manager:
        for candidate in candidates:
            try:
                record = _read_record(manager, candidate)
            except Exception as err:  # a torn write or damaged bytes
                damaged.append(_skip(directory, candidate, err))
                continue
            foreign = _identity_mismatch(record.get("identity"), identity)
            if foreign:
                raise ForeignCheckpointError(
                    f"checkpoint {directory / str(candidate)} was written by another run "
                    f"({foreign}). Evaluate or resume it with the config it was trained with "
                    "(its config.json), or start a new run directory.")
            if record["leaves"] != expected:
                raise IncompatibleCheckpointError(
                    f"checkpoint {directory / str(candidate)} does not match the state the "
                    f"current config builds:\n{_mismatch(record['leaves'], expected)}\nResume "
                    "with the config the run was started with, or start a new run directory.")
            try:
                leaves = manager.restore(candidate, args=ocp.args.Composite(
                    leaves=ocp.args.StandardRestore(abstract)))["leaves"]
                _verify(leaves, record)
            except Exception as err:
                damaged.append(_skip(directory, candidate, err))
                continue
            if damaged:
                log.warning("using checkpoint %s, the newest intact one", candidate)
            flat = [leaves.get(f"{i:05d}", _as_array(x))
                    for i, x in enumerate(jax.tree.leaves(target))]
            return jax.tree.unflatten(jax.tree.structure(target), flat), candidate
    raise DamagedCheckpointError(
        f"no intact checkpoint in {directory}: {'; '.join(damaged)}. Start a new run directory "
        "(the metrics and config of this one are unaffected).")


def _restore_target(x: Any) -> jax.ShapeDtypeStruct:
    """Where a leaf is restored: where `x` is, or, for an abstract leaf without a place, on
    this process's first device (a run trained over several devices or processes is read back
    onto one)."""
    leaf = ocp.utils.to_shape_dtype_struct(x)
    if getattr(leaf, "sharding", None) is None:
        local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        leaf = jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=local)
    return leaf


def _skip(directory: Path, candidate: int, err: Exception) -> str:
    reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    log.warning("skipping damaged checkpoint %s: %s", directory / str(candidate), reason)
    return f"{candidate} ({reason})"


def set_aside_newer(directory: str | Path, step: int) -> list[Path]:
    """Rename the checkpoints newer than `step` (those a restore skipped as damaged) to
    `damaged-<step>`, so training can write those steps again; returns the new paths. In a
    multi-process run every process calls it and process 0 renames."""
    directory = Path(directory)
    moved = []
    for newer in (s for s in steps(directory) if s > step):
        target = directory / f"damaged-{newer}"
        if distributed.is_main():
            shutil.rmtree(target, ignore_errors=True)
            (directory / str(newer)).rename(target)
        moved.append(target)
    distributed.barrier("robojax-set-aside")
    return moved


def remove_unfinished(directory: str | Path) -> list[Path]:
    """Delete temporary directories a killed save left behind; returns what was removed. In a
    multi-process run every process calls it, process 0 removes (the others return [])."""
    directory = Path(directory)
    removed = []
    if distributed.is_main():
        for path in directory.glob("*.orbax-checkpoint-tmp*"):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    distributed.barrier("robojax-remove-unfinished")
    return removed


def tree_equal(a: Any, b: Any) -> bool:
    """Bitwise equality of two pytrees of arrays."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb, strict=True))
