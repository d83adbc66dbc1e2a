"""A fixed-rate control loop around a `Policy`, with deadline accounting and safety checks.

    stats = run(policy, read_obs, write_command, rate_hz=50, steps=10_000)

Every period the loop reads an observation, computes a command and writes it. It never raises
for what a robot can throw at it:
- no fresh observation (read_obs returned None): the last command is held, and after
  `watchdog_s` without one the declared safe command is sent (with `safe_command=None`, the
  hold goes on), counted as `stale`;
- a NaN/inf observation, a wrong size, or an exception in the policy: the safe command,
  counted as a `fault`;
- every command is clamped to the actuator range and, with `max_delta`, rate limited;
- a step that takes longer than the period is an `overrun`; the loop then starts the next
  period at once instead of bursting to catch up.
`clock` and `sleep` are injectable, so tests (and `robojax sim2sim`) run the loop on a
`SimulatedClock`.
"""

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from robojax.deploy.policy import Policy


@dataclasses.dataclass
class LoopStats:
    steps: int = 0
    overruns: int = 0
    """Steps whose compute took longer than the period."""
    faults: int = 0
    """Bad observations (NaN/inf, wrong size) and policy errors, answered by the safe command."""
    stale: int = 0
    """Steps without a fresh observation for longer than the watchdog allows."""
    latencies: list = dataclasses.field(default_factory=list, repr=False)
    """Compute time per step (s), from reading the observation to writing the command."""
    lateness: list = dataclasses.field(default_factory=list, repr=False)
    """How late each step started (s) against its schedule."""

    def summary(self) -> dict:
        ms = lambda xs, q: float(np.percentile(xs, q) * 1e3) if xs else 0.0  # noqa: E731
        return {"steps": self.steps, "overruns": self.overruns, "faults": self.faults,
                "stale": self.stale, "latency_p50_ms": ms(self.latencies, 50),
                "latency_p99_ms": ms(self.latencies, 99),
                "latency_max_ms": ms(self.latencies, 100),
                "jitter_p99_ms": ms(self.lateness, 99)}


class SimulatedClock:
    """Time that passes only when the loop sleeps: pass `clock=c, sleep=c.sleep` to `run`."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def run(policy: Policy, read_obs: Callable[[], np.ndarray | None],
        write_command: Callable[[np.ndarray], None], rate_hz: float, *, steps: int,
        safe_command: np.ndarray | None = None, watchdog_s: float | None = None,
        max_delta: float | None = None, until: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep) -> LoopStats:
    """Run `steps` control steps at `rate_hz`; returns the loop's statistics.

    `safe_command` (actuator units) answers faults and stale observations; None holds the last
    command (zeros before the first). `watchdog_s` defaults to three periods. `until`, asked
    after each command, ends the loop early when it returns True (e.g. an episode's end).
    """
    period = 1.0 / rate_hz
    watchdog_s = 3 * period if watchdog_s is None else watchdog_s
    stats = LoopStats()
    last = np.zeros(policy.action_size, np.float32)
    safe = lambda: last if safe_command is None else np.asarray(safe_command, np.float32)  # noqa: E731
    start = clock()
    fresh_at = start
    for k in range(steps):
        scheduled = start + k * period
        now = clock()
        if now < scheduled:
            sleep(scheduled - now)
            now = clock()
        stats.lateness.append(max(0.0, now - scheduled))
        command = _step(policy, read_obs, stats, safe)
        if command is not None:
            fresh_at = now
        elif clock() - fresh_at > watchdog_s:
            stats.stale += 1
            command = safe()
        else:
            command = last  # no news yet: hold
        command = np.clip(command, policy.ctrl_low, policy.ctrl_high)
        if max_delta is not None:
            command = np.clip(command, last - max_delta, last + max_delta)
        write_command(command)
        last = command
        latency = clock() - now
        stats.latencies.append(latency)
        stats.steps += 1
        if latency > period:
            stats.overruns += 1
            start += (now + latency) - (scheduled + period)  # restart the schedule from here
        if until is not None and until():
            break
    return stats


def _step(policy: Policy, read_obs, stats: LoopStats, safe) -> np.ndarray | None:
    """The command for a fresh observation (the safe one for a bad observation or a policy
    error, counted as a fault), or None when there is no fresh observation."""
    try:
        obs = read_obs()
        if obs is None:
            return None
        return policy.act(obs)  # `act` checks the observation (size, NaN/inf) and raises
    except Exception:  # noqa: BLE001 - the loop must keep commanding the robot
        stats.faults += 1
        return safe()
