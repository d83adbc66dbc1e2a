"""A run's memory, bounded from below from shapes alone (`jax.eval_shape`: nothing is
allocated or compiled), so that a run that cannot fit is refused before it starts instead of
swapping or dying in the allocator minutes later."""

from typing import Any, NamedTuple

import jax
import numpy as np

from robojax.core.env import Env


class InsufficientMemoryError(ValueError):
    """The run's env batch and buffers alone exceed the memory available."""


def tree_bytes(tree: Any) -> int:
    """Bytes of the arrays (or `jax.ShapeDtypeStruct`s) of a pytree."""
    return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def available_bytes() -> int | None:
    """Free memory of the devices the run uses: accelerator memory (limit less what is in
    use, over the local devices), or the host's available memory on CPU; None when unknown."""
    devices = jax.local_devices()
    stats = [d.memory_stats() or {} for d in devices] if devices[0].platform != "cpu" else []
    if stats and all("bytes_limit" in s for s in stats):
        return sum(s["bytes_limit"] - s.get("bytes_in_use", 0) for s in stats)
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


class MemoryEstimate(NamedTuple):
    """A lower bound of a run's memory: `per_env` bytes per parallel env (its state and its
    part of the rollout) and `fixed` bytes (replay buffers)."""

    per_env: int
    fixed: int

    def total(self, num_envs: int) -> int:
        return self.fixed + self.per_env * num_envs


def estimate(cfg: Any, env: Env, num_seeds: int) -> MemoryEstimate:
    """The lower bound for an algorithm config `cfg` (its `num_envs`, `rollout_length`,
    `buffer_capacity` where it has them) on `env`, over `num_seeds` seeds."""
    state = tree_bytes(jax.eval_shape(env.reset, jax.random.PRNGKey(0)))
    transition = 4 * (2 * env.observation_spec.shape[0] + env.action_spec.shape[0] + 3)
    per_env = state + getattr(cfg, "rollout_length", 1) * transition
    fixed = getattr(cfg, "buffer_capacity", 0) * transition
    return MemoryEstimate(per_env * num_seeds, fixed * num_seeds)


def _gb(n: int) -> str:
    return f"{n / 2**30:,.1f} GB"


def check(cfg: Any, env: Env, num_seeds: int, available: int | None = None,
          algo: str = "sac") -> None:
    """Refuse (InsufficientMemoryError) a run whose lower bound exceeds the available memory,
    naming the largest `--num-envs` that would fit."""
    num_envs = getattr(cfg, "num_envs", None)
    available = available_bytes() if available is None else available
    if num_envs is None or available is None:
        return
    bound = estimate(cfg, env, num_seeds)
    if bound.total(num_envs) <= available:
        return
    fits = (available - bound.fixed) // bound.per_env
    fewer_seeds = " (or fewer seeds)" if num_seeds > 1 else ""
    fix = (f"use at most --num-envs {fits}{fewer_seeds}" if fits >= 1 else
           f"the replay buffers alone need {_gb(bound.fixed)}: lower --{algo}.buffer-capacity")
    raise InsufficientMemoryError(
        f"{num_envs:,} envs x {num_seeds} seed(s) need at least {_gb(bound.total(num_envs))} "
        f"(env states, rollouts, buffers), and {_gb(available)} is available; {fix}.")
