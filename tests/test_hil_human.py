"""The simulated human (`robojax.hil.human`) on hand-made action streams: reaction delay,
takeover duration and hysteresis, noise, attention and budget, the stall and value rules."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robojax.hil import human

EXPERT = jnp.zeros((1, 2))


def _run(cfg, gaps, *, num_envs=1, episode_starts=None, **signals):
    """Feed `gaps[t]` (B,) as the policy's deviation (along the first action component) and
    return the takeover masks (T, B) and executed actions (T, B, 2)."""
    state = human.init(num_envs, 2)
    step = jax.jit(lambda s, a, k, e, sig: human.act(cfg, s, a, jnp.zeros_like(a), k,
                                                     episode_start=e, **sig))
    masks, actions = [], []
    for t, gap in enumerate(gaps):
        policy = jnp.stack([jnp.asarray(gap, jnp.float32), jnp.zeros(num_envs)], axis=-1)
        start = None if episode_starts is None else jnp.asarray(episode_starts[t])
        sig = {k: jnp.asarray(v[t], jnp.float32) for k, v in signals.items()}
        state, mask, action = step(state, policy, jax.random.PRNGKey(t), start, sig)
        masks.append(np.asarray(mask))
        actions.append(np.asarray(action))
    return np.array(masks), np.array(actions), state


def test_a_takeover_starts_reaction_delay_steps_after_the_rule_fires():
    cfg = human.HumanConfig(threshold=0.5, reaction_delay=3, min_takeover=4, action_noise=0.0)
    gaps = [[0.0]] * 2 + [[0.9]] + [[0.0]] * 10  # one deviant step at t=2, then none
    masks, actions, _ = _run(cfg, gaps)
    # Noticed at t=2, acts at t=5 although the policy recovered; holds 4 steps, hands back.
    assert masks[:, 0].astype(int).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0]
    np.testing.assert_array_equal(actions[5:9, 0], 0.0)  # the expert's action, no noise


def test_the_human_keeps_control_while_the_policy_still_disagrees():
    cfg = human.HumanConfig(threshold=0.5, release_threshold=0.25, reaction_delay=0,
                            min_takeover=2, action_noise=0.0)
    gaps = [[0.9], [0.4], [0.3], [0.2], [0.4]]  # above the release threshold until t=3
    masks, _, _ = _run(cfg, gaps)
    assert masks[:, 0].astype(int).tolist() == [1, 1, 1, 0, 0]


def test_the_human_acts_with_noise_and_within_the_action_range():
    cfg = human.HumanConfig(threshold=0.0, reaction_delay=0, action_noise=0.2)
    _, actions, _ = _run(cfg, [[1.0] * 256] * 4, num_envs=256)
    assert np.std(actions) == pytest.approx(0.2, rel=0.1)
    assert np.abs(actions).max() <= 1.0


def test_attention_limits_the_envs_held_at_once_most_deviant_first():
    cfg = human.HumanConfig(threshold=0.5, reaction_delay=0, min_takeover=100, attention=2)
    masks, _, _ = _run(cfg, [[0.6, 0.9, 0.0, 0.8]] * 5, num_envs=4)
    assert (masks.sum(axis=1) == 2).all()
    assert masks[0].tolist() == [False, True, False, True]  # envs 1 and 3 deviate the most


def test_the_budget_caps_the_intervention_steps_of_the_run():
    cfg = human.HumanConfig(threshold=0.5, reaction_delay=0, min_takeover=100, budget=7)
    masks, _, state = _run(cfg, [[0.9, 0.9]] * 6, num_envs=2)
    assert masks.sum() == 7 and int(state.used) == 7


def test_a_new_episode_ends_the_takeover_and_clears_the_countdown():
    cfg = human.HumanConfig(threshold=0.5, reaction_delay=1, min_takeover=100)
    starts = [[False], [False], [False], [True], [False], [False]]
    masks, _, _ = _run(cfg, [[0.9], [0.9], [0.9], [0.0], [0.0], [0.0]], episode_starts=starts)
    assert masks[:, 0].astype(int).tolist() == [0, 1, 1, 0, 0, 0]


def test_smoothing_ignores_exploration_noise_and_catches_a_sustained_deviation():
    """The difference averaged over the episode's steps (a running mean for the first 4, then
    an exponential average with weight 1/4), worked by hand: after the alternating +-0.8 the
    average stays within 0.41; under a steady 0.6 it passes 0.5 at the sixth step (t=13:
    0.491 at t=12, 0.518 at t=13)."""
    noise = [[0.0]] + [[0.8], [-0.8]] * 3 + [[0.8]]  # t = 0..7
    gaps = noise + [[0.6]] * 8  # t = 8..15
    smoothed = human.HumanConfig(threshold=0.5, reaction_delay=0, min_takeover=100,
                                 smoothing=4)
    masks, _, state = _run(smoothed, gaps)
    assert masks[:, 0].astype(int).tolist() == [0] * 13 + [1] * 3
    expected = 0.6 + (0.1414 - 0.6) * 0.75**8  # t=7's average, then 8 steps of 0.6
    assert float(state.mean_difference[0, 0]) == pytest.approx(expected, abs=1e-3)
    each_step = dataclasses.replace(smoothed, smoothing=1)  # every 0.8 step fires
    masks, _, _ = _run(each_step, gaps)
    assert masks[:, 0].astype(int).tolist() == [0] + [1] * 15


def test_a_new_episode_starts_the_average_afresh():
    cfg = human.HumanConfig(threshold=0.5, reaction_delay=0, min_takeover=100, smoothing=4)
    starts = [[False]] * 4 + [[True], [False]]
    masks, _, state = _run(cfg, [[0.9]] * 4 + [[0.2], [0.2]], episode_starts=starts)
    # Without the new episode the average would be 0.9 * 0.75 + 0.2 * 0.25 = 0.725 at t=4.
    assert masks[:, 0].astype(int).tolist() == [1, 1, 1, 1, 0, 0]
    assert float(state.mean_difference[0, 0]) == pytest.approx(0.2)
    assert int(state.watched[0]) == 2


def test_the_stall_rule_steps_in_when_progress_stops():
    cfg = human.HumanConfig(rule="stall", stall_steps=3, reaction_delay=0, min_takeover=1,
                            release_threshold=10.0)
    progress = [[0.0], [0.1], [0.2], [0.2], [0.2], [0.2], [0.5]]
    masks, _, _ = _run(cfg, [[0.0]] * 7, progress=progress)
    # No gain for 3 steps after t=2 (t=3, 4, 5): the human steps in at t=5 for one step.
    assert masks[:, 0].astype(int).tolist() == [0, 0, 0, 0, 0, 1, 0]


def test_the_value_rule_compares_the_reference_values():
    cfg = human.HumanConfig(rule="value", value_ratio=0.9, reaction_delay=0, min_takeover=1,
                            release_threshold=10.0)
    masks, _, _ = _run(cfg, [[0.0]] * 3, q_policy=[[1.0], [0.5], [0.95]],
                       q_expert=[[1.0], [1.0], [1.0]])
    assert masks[:, 0].astype(int).tolist() == [0, 1, 0]


def test_a_trusting_human_raises_the_threshold_over_training():
    cfg = human.HumanConfig(threshold=0.75, trusted_threshold=2.0, trust_steps=500,
                            reaction_delay=0, min_takeover=1, release_threshold=10.0)
    # 0.75 at the start, a quarter of the way (125 of 500 steps), then 2.0 from 500 steps on.
    assert float(human.threshold(cfg, jnp.asarray(0))) == pytest.approx(0.75)
    assert float(human.threshold(cfg, jnp.asarray(125))) == pytest.approx(1.0625)
    assert float(human.threshold(cfg, jnp.asarray(5000))) == pytest.approx(2.0)
    assert human.threshold(cfg) == 0.75  # no step count: the starting threshold
    policy = jnp.array([[1.5, 0.0]])  # 1.5 from the expert's action
    fires = [bool(human.act(cfg, human.init(1, 2), policy, EXPERT, jax.random.PRNGKey(0),
                            env_steps=jnp.asarray(steps))[1][0]) for steps in (0, 250, 400)]
    assert fires == [True, True, False]  # thresholds 0.75, 1.375, 1.75


def test_the_metrics_count_takeovers_and_human_seconds():
    cfg = human.HumanConfig(threshold=0.5, reaction_delay=0, min_takeover=5)
    before = human.init(4, 2)
    after, _, _ = human.act(cfg, before, jnp.array([[0.9, 0.0]] * 2 + [[0.0, 0.0]] * 2),
                            jnp.zeros((4, 2)), jax.random.PRNGKey(0))
    m = human.metrics(before, after, dt=0.05)
    assert int(m["hil/interventions"]) == 2 and float(m["hil/intervention_rate"]) == 0.5
    assert float(m["hil/human_seconds"]) == pytest.approx(0.1)


def test_a_rollouts_summary_sums_its_steps_and_names_a_trusting_humans_threshold():
    steps = {"hil/interventions": jnp.array([1.0, 0.0, 2.0]),
             "hil/intervention_steps": jnp.array([1.0, 2.0, 3.0]),
             "hil/budget_used": jnp.array([4.0, 6.0, 9.0])}
    state = human.init(2, 2)._replace(used=jnp.asarray(9))
    fixed = human.summarize(human.HumanConfig(), steps, state, transitions=12, dt=0.2,
                            env_steps=jnp.asarray(250))
    assert {k: float(v) for k, v in fixed.items()} == pytest.approx({
        "hil/interventions": 3.0, "hil/intervention_steps": 6.0, "hil/budget_used": 9.0,
        "hil/intervention_rate": 0.5, "hil/human_seconds_total": 1.8})
    trusting = human.HumanConfig(threshold=0.75, trusted_threshold=2.0, trust_steps=500)
    summary = human.summarize(trusting, steps, state, 12, 0.2, jnp.asarray(250))
    assert float(summary["hil/threshold"]) == pytest.approx(1.375)  # halfway: 0.75 + 0.625


def test_a_rule_without_its_signal_and_bad_settings_are_refused():
    with pytest.raises(ValueError, match="pass progress="):
        human.act(human.HumanConfig(rule="stall"), human.init(1, 2), EXPERT, EXPERT,
                  jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="attention must be >= 1"):
        human.HumanConfig(attention=0)
    with pytest.raises(ValueError, match="smoothing must be >= 1"):
        human.HumanConfig(smoothing=0)
    with pytest.raises(ValueError, match="needs rule='deviation' and trust_steps >= 1"):
        human.HumanConfig(rule="stall", trusted_threshold=2.0, trust_steps=100)
    with pytest.raises(ValueError, match="trust_steps=0"):
        human.HumanConfig(trusted_threshold=2.0)
