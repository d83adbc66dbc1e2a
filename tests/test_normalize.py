"""Running observation statistics (optax-style init/update) and the config switch."""

import dataclasses

import jax.numpy as jnp
import numpy as np

from robojax.core import normalize


def test_running_stats_match_numpy():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(3, 50, 4)).astype(np.float32)
    stats = normalize.init((4,))
    np.testing.assert_array_equal(normalize.normalize(stats, jnp.ones(4)), np.ones(4))
    for chunk in data:
        stats = normalize.update(stats, chunk)
    flat = data.reshape(-1, 4)
    np.testing.assert_allclose(stats.mean, flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(normalize.std(stats), flat.std(0), rtol=1e-4)


def test_observations_normalize_only_when_the_config_asks():
    @dataclasses.dataclass(frozen=True)
    class Config:
        normalize_observations: bool

    stats = normalize.update(normalize.init((2,)), jnp.array([[0.0, 10.0], [2.0, 30.0]]))
    obs = jnp.array([1.0, 20.0])
    np.testing.assert_allclose(normalize.observations(Config(True), stats, obs), [0.0, 0.0],
                               atol=1e-5)
    assert normalize.observations(Config(False), stats, obs) is obs
