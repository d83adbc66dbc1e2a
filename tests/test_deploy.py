"""The fixed-rate loop of `robojax.deploy` on a simulated clock: deadlines, the watchdog, bad
observations, clamps and rate limits. The policy here is a stand-in; the exported one is
tested in test_export.py."""

from concurrent.futures import Future

import numpy as np
import pytest

from robojax.deploy import Policy, SimulatedClock, check_observation, run


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
    clock = SimulatedClock()
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


def test_the_loop_ends_when_until_says_so():
    clock = SimulatedClock()
    feed, written = iter([[0.1, 0.1, 0.0]] * 10), []
    stats = run(EchoPolicy(clock, lambda k: 0.001), lambda: next(feed), written.append,
                rate_hz=100, steps=10, until=lambda: len(written) >= 3, clock=clock,
                sleep=clock.sleep)
    assert stats.steps == 3 and len(written) == 3


# -- chunked policies: synchronous and asynchronous planning ----------------------------------

class ChunkSession:
    """An ONNX session stand-in whose call c plans the chunk [100 c, 100 c + 1, ...]."""

    def __init__(self, chunk: int):
        self.chunk, self.calls = chunk, 0

    def run(self, names, feeds):
        plan = 100.0 * self.calls + np.arange(self.chunk, dtype=np.float32)
        self.calls += 1
        return plan[None, :, None], plan[None, :, None]


class LateFuture(Future):
    """A plan that finishes when the test says so, or when the policy must wait for it."""

    def __init__(self, fn, args):
        super().__init__()
        self.fn, self.args = fn, args

    def finish(self):
        if not self.done():
            self.set_result(self.fn(*self.args))

    def result(self, timeout=None):
        self.finish()
        return super().result(timeout)


class ManualExecutor:
    def __init__(self):
        self.submitted = []

    def submit(self, fn, *args):
        self.submitted.append(LateFuture(fn, args))
        return self.submitted[-1]


def _chunk_policy(asynchronous: bool, executor=None) -> Policy:
    contract = {"inputs": [{"name": "obs", "shape": ["batch", 1, 1]}],
                "observation": {"size": 1, "history": 1},
                "action": {"size": 1, "per_call": 4, "ctrl_low": [-1e9], "ctrl_high": [1e9]},
                "control_dt": 0.01}
    policy = Policy(ChunkSession(4), contract, asynchronous=asynchronous, executor=executor)
    policy.plan_seconds.append(0.025)  # plans take 2.5 periods: planning starts 3 actions early
    return policy


def test_a_chunked_policy_plans_when_its_chunk_is_used_up():
    policy = _chunk_policy(asynchronous=False)
    assert [float(policy.act([0.0])[0]) for _ in range(6)] == [0, 1, 2, 3, 100, 101]


def test_asynchronous_planning_switches_to_the_new_chunk_at_the_step_it_arrives():
    executor = ManualExecutor()
    policy = _chunk_policy(asynchronous=True, executor=executor)
    assert policy.lead == 3
    executed = [float(policy.act([0.0])[0]) for _ in range(3)]  # plan 1 starts at step 1
    assert executed == [0, 1, 2] and len(executor.submitted) == 1
    executor.submitted[0].finish()  # plan 1 arrives after step 2: its actions 0-1 are past
    executed += [float(policy.act([0.0])[0]) for _ in range(2)]  # plan 2 starts at step 3
    assert executed[3:] == [102, 103] and policy.starved == 0
    # Plan 2 is late: step 5 has no action left and waits for it, then takes its action 2.
    executed.append(float(policy.act([0.0])[0]))
    assert executed[5] == 202 and policy.starved == 1
    policy.reset()  # a new episode plans its first chunk at once
    assert float(policy.act([0.0])[0]) == 300


class EchoSession:
    """An ONNX session stand-in that records each observation and plans 0.1 + its first value."""

    def __init__(self):
        self.seen = []

    def run(self, names, feeds):
        obs = feeds["obs"][0, -1]
        self.seen.append(obs.tolist())
        action = np.full((1, 1, 1), 0.1 + obs[0], np.float32)
        return action, action


def test_a_policy_trained_on_its_last_actions_gets_them_appended_by_the_runtime():
    contract = {"inputs": [{"name": "obs", "shape": ["batch", 1, 3]}],
                "observation": {"size": 3, "history": 1, "last_actions": 2},
                "action": {"size": 1, "per_call": 1, "ctrl_low": [-1.0], "ctrl_high": [1.0]},
                "control_dt": 0.01}
    session = EchoSession()
    policy = Policy(session, contract)
    assert policy.obs_size == 1  # the robot's observation, without the actions
    for obs in (0.0, 0.5, 2.0, 0.0):
        policy.act([obs])
    # Actions 0.1, 0.6 and 2.1, the last clipped to 1 as the env clips what it executes.
    np.testing.assert_allclose(session.seen, [[0.0, 0.0, 0.0], [0.5, 0.0, 0.1], [2.0, 0.1, 0.6],
                                              [0.0, 0.6, 1.0]], rtol=1e-6)
    policy.reset()
    policy.act([0.0])
    assert session.seen[-1] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="the policy takes 1"):
        policy.act([0.0, 0.0, 0.0])  # the actions are the runtime's to append
