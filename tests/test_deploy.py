"""The fixed-rate loop of `robojax.deploy` on a simulated clock: deadlines, the watchdog, bad
observations, clamps and rate limits. The policy here is a stand-in; the exported one is
tested in test_export.py."""

import numpy as np
import pytest

from robojax.deploy import check_observation, run


class Clock:
    """Simulated time: `sleep` advances it, and so does each `act` by `compute_s`."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class EchoPolicy:
    """Commands the observation's first two values, taking `compute_s[k]` on call k."""

    obs_size, action_size = 3, 2
    ctrl_low, ctrl_high = np.array([-1.0, -1.0]), np.array([1.0, 1.0])

    def __init__(self, clock, compute_s):
        self.clock, self.compute_s, self.calls = clock, compute_s, 0

    def act(self, obs):
        self.clock.now += self.compute_s(self.calls)
        self.calls += 1
        return check_observation(obs, self.obs_size)[:2]


def _loop(observations, *, compute_s=lambda k: 0.001, **kwargs):
    clock = Clock()
    policy = EchoPolicy(clock, compute_s)
    feed, written = iter(observations), []
    stats = run(policy, lambda: next(feed), written.append, rate_hz=100,
                steps=len(observations), clock=clock, sleep=clock.sleep, **kwargs)
    return stats, np.array(written), clock


def test_a_loop_within_its_deadlines_keeps_the_schedule():
    stats, written, clock = _loop([[0.5, -0.5, 0.0]] * 100)
    assert (stats.steps, stats.overruns, stats.faults, stats.stale) == (100, 0, 0, 0)
    assert clock.now == pytest.approx(0.99 + 0.001)  # 100 periods of 10 ms, the last one busy
    summary = stats.summary()
    assert summary["latency_p99_ms"] == pytest.approx(1.0)
    assert summary["jitter_p99_ms"] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(written, [[0.5, -0.5]] * 100)


def test_overruns_are_counted_and_the_schedule_restarts_without_a_burst():
    slow = {10: 0.025, 50: 0.012}  # two steps run past the 10 ms period
    stats, _, clock = _loop([[0.0, 0.0, 0.0]] * 100, compute_s=lambda k: slow.get(k, 0.001))
    assert stats.overruns == 2
    assert max(stats.latencies) == pytest.approx(0.025)
    # No step tried to catch up: every period after an overrun starts when the last step ended.
    assert clock.now == pytest.approx(0.99 + 0.001 + (0.025 - 0.01) + (0.012 - 0.01))


def test_bad_observations_get_the_safe_command_and_count_as_faults():
    obs = [[0.3, 0.3, 0.0], [np.nan, 0.0, 0.0], [0.1, 0.2], [np.inf, 1, 1], [0.4, 0.4, 0.0]]
    stats, written, _ = _loop(obs, safe_command=np.zeros(2))
    assert stats.faults == 3 and stats.steps == 5
    np.testing.assert_allclose(written, [[0.3, 0.3], [0, 0], [0, 0], [0, 0], [0.4, 0.4]])


def test_the_watchdog_commands_safety_when_observations_stop():
    obs = [[0.5, 0.5, 0.0]] * 5 + [None] * 10  # the sensor stops after 5 steps
    stats, written, _ = _loop(obs, safe_command=np.array([0.0, -1.0]), watchdog_s=0.035)
    # Held while within 35 ms of the last observation, then the safe command.
    assert stats.stale == 7
    np.testing.assert_allclose(written[:8], [[0.5, 0.5]] * 8)
    np.testing.assert_allclose(written[8:], [[0.0, -1.0]] * 7)


def test_commands_are_clamped_to_the_actuator_range_and_rate_limited():
    obs = [[5.0, -5.0, 0.0]] * 4
    stats, written, _ = _loop(obs, max_delta=0.3)
    np.testing.assert_allclose(written, [[0.3, -0.3], [0.6, -0.6], [0.9, -0.9], [1.0, -1.0]])


def test_an_observation_of_the_wrong_size_is_named():
    with pytest.raises(ValueError, match="observation has 2 values, the policy takes 3"):
        check_observation([1.0, 2.0], 3)
    with pytest.raises(ValueError, match="NaN or inf"):
        check_observation([1.0, np.nan, 2.0], 3)
