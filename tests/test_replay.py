import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robojax.data import replay


def _batch(start: int, n: int) -> dict:
    values = jnp.arange(start, start + n, dtype=jnp.float32)
    return {"obs": jnp.stack([values, -values], -1), "reward": values}


def test_add_fills_then_wraps_around_overwriting_the_oldest():
    buffer = replay.init({"obs": jnp.zeros(2), "reward": jnp.zeros(())}, capacity=5)
    assert buffer.capacity == 5 and int(buffer.size) == 0
    buffer = replay.add(buffer, _batch(0, 3))
    assert int(buffer.position) == 3 and int(buffer.size) == 3
    np.testing.assert_array_equal(buffer.data["reward"], [0, 1, 2, 0, 0])
    buffer = replay.add(buffer, _batch(3, 4))  # slots 3, 4, then 0, 1
    assert int(buffer.position) == 2 and int(buffer.size) == 5
    np.testing.assert_array_equal(buffer.data["reward"], [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.data["obs"][:, 1], [-5, -6, -2, -3, -4])


def test_add_and_sample_compile_into_one_program():
    buffer = replay.init({"obs": jnp.zeros(2), "reward": jnp.zeros(())}, capacity=8)

    @jax.jit
    def step(buffer, key):
        buffer = replay.add(buffer, _batch(0, 3))
        return buffer, replay.sample(buffer, key, 4)

    buffer, batch = step(buffer, jax.random.PRNGKey(0))
    assert batch["obs"].shape == (4, 2) and set(np.asarray(batch["reward"])) <= {0, 1, 2}


def test_sample_draws_only_filled_slots_uniformly():
    buffer = replay.add(replay.init({"reward": jnp.zeros(())}, 100), {"reward": jnp.arange(4.0)})
    drawn = np.asarray(replay.sample(buffer, jax.random.PRNGKey(1), 8000)["reward"])
    assert set(drawn) == {0, 1, 2, 3}
    counts = np.bincount(drawn.astype(int))
    assert np.all(np.abs(counts / 8000 - 0.25) < 0.03), counts


def test_mixed_batches_take_each_buffer_share():
    online = replay.full({"reward": jnp.zeros(10)})
    demos = replay.full({"reward": jnp.ones(3)})
    batch = replay.sample_mixed({"online": online, "demos": demos},
                                {"online": 0.5, "demos": 0.5}, jax.random.PRNGKey(0), 7)
    # 0.5 * 7 rounds to 4 for each; the first buffer gives the remainder back: 3 + 4 = 7
    np.testing.assert_array_equal(batch["reward"], [0, 0, 0, 1, 1, 1, 1])
    assert replay.shares({"a": 0.25, "b": 0.75}, 256) == {"a": 64, "b": 192}
    assert replay.shares({"a": 0.0, "b": 1.0}, 5) == {"a": 0, "b": 5}
    assert sum(replay.shares({"a": 0.3, "b": 0.3, "c": 0.4}, 5).values()) == 5


def test_add_where_writes_only_the_masked_transitions_in_order():
    buffer = replay.init({"obs": jnp.zeros(2), "reward": jnp.zeros(())}, capacity=5)
    buffer = replay.add_where(buffer, _batch(0, 5), jnp.array([False, True, False, True, True]))
    np.testing.assert_array_equal(buffer.data["reward"], [1, 3, 4, 0, 0])
    assert int(buffer.size) == 3 and int(buffer.position) == 3
    buffer = replay.add_where(buffer, _batch(10, 3), jnp.array([True, False, True]))  # wraps
    np.testing.assert_array_equal(buffer.data["reward"], [1, 3, 4, 10, 12])
    np.testing.assert_array_equal(buffer.data["obs"][3:, 1], [-10, -12])
    buffer = replay.add_where(buffer, _batch(20, 2), jnp.array([False, True]))
    np.testing.assert_array_equal(buffer.data["reward"], [21, 3, 4, 10, 12])
    assert int(buffer.size) == 5 and int(buffer.position) == 1


def test_mixed_batches_keep_the_shared_fields_and_fall_back_from_an_empty_buffer():
    online = replay.full({"reward": jnp.zeros(10), "flag": jnp.ones(10)})
    interventions = replay.init({"reward": jnp.zeros(()), "flag": jnp.zeros(())}, 8)
    fractions = {"online": 0.5, "interventions": 0.5}
    sample = lambda buffer: replay.sample_mixed(  # noqa: E731
        {"online": online, "interventions": buffer}, fractions, jax.random.PRNGKey(0), 6,
        fields=("reward",), fallback="online")
    batch = sample(interventions)  # empty: its half comes from the online buffer
    assert set(batch) == {"reward"}
    np.testing.assert_array_equal(batch["reward"], np.zeros(6))
    batch = sample(replay.add(interventions, {"reward": jnp.full(2, 7.0), "flag": jnp.ones(2)}))
    np.testing.assert_array_equal(batch["reward"], [0, 0, 0, 7, 7, 7])


def test_bad_buffers_and_fractions_are_named_errors():
    with pytest.raises(ValueError, match="capacity >= 1"):
        replay.init({"reward": jnp.zeros(())}, 0)
    small = replay.init({"reward": jnp.zeros(())}, 2)
    with pytest.raises(ValueError, match="raise the capacity"):
        replay.add(small, {"reward": jnp.zeros(3)})
    with pytest.raises(ValueError, match="sum to 1"):
        replay.shares({"a": 0.5, "b": 0.6}, 8)


def test_demo_transitions_keep_terminal_steps_and_drop_time_limit_cuts():
    # Two episodes: [0, 1, 2] ends in a terminal state; [3, 4] is cut by the time limit.
    obs = np.arange(5.0)[:, None]
    terminals = np.array([0, 0, 1, 0, 0], bool)
    data = replay.transitions_from_episodes(obs, obs * 10, np.arange(5.0), terminals,
                                            np.array([0, 3]), np.array([3, 5]))
    np.testing.assert_array_equal(data["obs"][:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(data["next_obs"][:, 0], [1, 2, 2, 4])
    np.testing.assert_array_equal(data["discount"], [1, 1, 0, 1])
    np.testing.assert_array_equal(data["reward"], [0, 1, 2, 3])
    np.testing.assert_array_equal(data["action"][:, 0], [0, 10, 20, 30])
    np.testing.assert_array_equal(data["last"], [False, False, True, True])
