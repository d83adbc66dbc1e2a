"""Return estimates checked against numbers worked by hand."""

import jax.numpy as jnp
import numpy as np
import pytest

from robojax.algos.returns import compute_gae, n_step_transitions


def test_gae_matches_hand_computation():
    # One env, 3 steps, gamma = 0.5, lambda = 0.5, no episode end.
    rewards = jnp.array([[1.0], [2.0], [3.0]])
    values = jnp.array([[0.5], [1.0], [1.5]])
    next_values = jnp.array([[1.0], [1.5], [2.0]])
    false = jnp.zeros((3, 1), bool)
    adv, targets = compute_gae(rewards, values, next_values, false, false, 0.5, 0.5)
    # deltas: 1 + .5*1 - .5 = 1.0 ; 2 + .5*1.5 - 1 = 1.75 ; 3 + .5*2 - 1.5 = 2.5
    # A2 = 2.5 ; A1 = 1.75 + .25*2.5 = 2.375 ; A0 = 1.0 + .25*2.375 = 1.59375
    np.testing.assert_allclose(adv[:, 0], [1.59375, 2.375, 2.5])
    np.testing.assert_allclose(targets[:, 0], [2.09375, 3.375, 4.0])


def test_gae_termination_vs_truncation():
    rewards = jnp.array([[1.0, 1.0], [1.0, 1.0]])
    values = jnp.zeros((2, 2))
    next_values = jnp.full((2, 2), 10.0)
    done = jnp.array([[True, True], [False, False]])
    truncated = jnp.array([[False, True], [False, False]])  # env 0 terminates, env 1 truncates
    adv, _ = compute_gae(rewards, values, next_values, done, truncated, 0.9, 1.0)
    assert float(adv[0, 0]) == pytest.approx(1.0)  # terminal: no bootstrap, no leak from t=1
    assert float(adv[0, 1]) == pytest.approx(1.0 + 0.9 * 10.0)  # truncated: bootstrap V(final)
    # NaN in a terminal next value (a diverged env) cannot leak.
    nan_next = next_values.at[0, 0].set(jnp.nan)
    adv, _ = compute_gae(rewards, values, nan_next, done, truncated, 0.9, 1.0)
    assert np.all(np.isfinite(adv))


def _rollout(rewards, discounts, last):
    """A (T, 1) rollout whose observation at step t is t (next_obs t + 1)."""
    steps = len(rewards)
    column = lambda x, dtype=jnp.float32: jnp.asarray(x, dtype)[:, None]  # noqa: E731
    return {"obs": jnp.arange(steps, dtype=jnp.float32)[:, None, None],
            "next_obs": jnp.arange(1, steps + 1, dtype=jnp.float32)[:, None, None],
            "reward": column(rewards), "discount": column(discounts), "last": column(last, bool)}


def test_n_step_sums_within_the_rollout_and_the_episode():
    # gamma = 0.5, n = 3. Step 1 is cut by a time limit (discount 1, last), step 3 terminates.
    out = n_step_transitions(_rollout([1.0, 2.0, 4.0, 8.0, 16.0], [1, 1, 1, 0, 1],
                                      [0, 1, 0, 1, 0]), 3, 0.5)
    assert "last" not in out
    # t=0: 1 + .5*2, stops at the time limit, bootstraps from obs 2 with discount .5 * 1
    # t=1: 2, its own bootstrap            t=2: 4 + .5*8 = 8, discount .5 * 0 (terminated)
    # t=3: 8, discount 0                    t=4: 16, the rollout's end: its own next obs
    np.testing.assert_allclose(out["reward"][:, 0], [2.0, 2.0, 8.0, 8.0, 16.0])
    np.testing.assert_allclose(out["discount"][:, 0], [0.5, 1.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(out["next_obs"][:, 0, 0], [2, 2, 4, 4, 5])
    np.testing.assert_array_equal(out["obs"], _rollout([0] * 5, [1] * 5, [0] * 5)["obs"])


def test_n_step_of_a_long_episode_takes_n_rewards_and_one_step_is_unchanged():
    steps = _rollout([1.0, 1.0, 1.0, 1.0], [1, 1, 1, 1], [0, 0, 0, 0])
    out = n_step_transitions(steps, 2, 0.9)
    # t=0..2: 1 + .9, bootstrap .9 from obs t+2; t=3: the rollout's last step alone.
    np.testing.assert_allclose(out["reward"][:, 0], [1.9, 1.9, 1.9, 1.0])
    np.testing.assert_allclose(out["discount"][:, 0], [0.9, 0.9, 0.9, 1.0])
    np.testing.assert_allclose(out["next_obs"][:, 0, 0], [2, 3, 4, 4])
    one = n_step_transitions(steps, 1, 0.9)
    assert set(one) == {"obs", "next_obs", "reward", "discount"}
    np.testing.assert_array_equal(one["reward"], steps["reward"])


def test_n_step_stops_at_a_step_stored_without_bootstrap():
    # Step 1 is stored with discount 0 inside an episode (e.g. RLIF's relabelled takeover).
    out = n_step_transitions(_rollout([1.0, -1.0, 1.0], [1, 0, 1], [0, 0, 0]), 3, 0.5)
    np.testing.assert_allclose(out["reward"][:, 0], [0.5, -1.0, 1.0])
    np.testing.assert_allclose(out["discount"][:, 0], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(out["next_obs"][:, 0, 0], [2, 2, 3])
