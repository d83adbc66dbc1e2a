"""Return estimates checked against numbers worked by hand."""

import jax.numpy as jnp
import numpy as np
import pytest

from robojax.algos.returns import compute_gae


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
