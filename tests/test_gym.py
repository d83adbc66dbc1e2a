"""The Gymnasium vector view, driven by Gymnasium's own vector wrappers in both autoreset
modes."""

import numpy as np
import pytest

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)

gymnasium = pytest.importorskip("gymnasium")
from gymnasium.vector import AutoresetMode  # noqa: E402
from gymnasium.wrappers import vector as gym_wrappers  # noqa: E402

from robojax import envs  # noqa: E402
from robojax.core.gym import GymVectorEnv  # noqa: E402


def _view(mode=AutoresetMode.NEXT_STEP, num_envs=3, episode_length=4):
    return GymVectorEnv(envs.make("point-mass"), num_envs=num_envs,
                        episode_length=episode_length, autoreset_mode=mode)


def test_next_step_is_the_default_and_resets_on_the_step_after_the_end():
    env = _view()
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, _ = env.reset(seed=1)
    assert obs.shape == (3, 6) and env.action_space.shape == (3, 2)
    push = np.full((3, 2), 0.5, np.float32)
    for _ in range(4):
        last, reward, terminated, truncated, info = env.step(push)
    assert truncated.all() and not terminated.any() and "final_obs" not in info
    # The ending step returned the episode's last observation (the puck moved from the start)
    first, reward, terminated, truncated, _ = env.step(push)  # the reset step: action ignored
    assert not np.allclose(first, last)
    assert (reward == 0).all() and not truncated.any() and not terminated.any()
    np.testing.assert_allclose(first[:, 2:4], 0.0, atol=1e-6)  # a new episode: puck at rest
    following, reward, *_ = env.step(push)  # the new episode runs on
    assert (reward != 0).any() and not np.allclose(following, first)


def test_same_step_mode_is_selectable():
    env = _view(AutoresetMode.SAME_STEP)
    env.reset(seed=1)
    for _ in range(4):
        obs, reward, terminated, truncated, info = env.step(np.zeros((3, 2), np.float32))
    assert truncated.all() and info["final_obs"].shape == (3, 6)
    np.testing.assert_allclose(obs[:, 2:4], 0.0, atol=1e-6)  # already the new episode
    with pytest.raises(ValueError, match="autoreset_mode"):
        _view("SOMETIMES")


def test_bad_actions_are_named_errors():
    env = _view()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="num_envs, action_size"):
        env.step(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full((3, 2), np.nan))


@pytest.fixture(scope="module")
def small_view():
    """One compiled view shared by the wrapper tests (each starts with a reset)."""
    return _view(num_envs=2, episode_length=3)


@pytest.mark.parametrize("wrap", [
    lambda e: gym_wrappers.NormalizeObservation(e),
    lambda e: gym_wrappers.TransformObservation(e, lambda o: 2 * o, e.observation_space),
    lambda e: gym_wrappers.FlattenObservation(e),
    lambda e: gym_wrappers.DtypeObservation(e, np.float64),
    lambda e: gym_wrappers.RecordEpisodeStatistics(e),
    lambda e: gym_wrappers.ClipAction(e),
    lambda e: gym_wrappers.RescaleAction(e, -2.0, 2.0),
    lambda e: gym_wrappers.NormalizeReward(e),
], ids=["NormalizeObservation", "TransformObservation", "FlattenObservation",
        "DtypeObservation", "RecordEpisodeStatistics", "ClipAction", "RescaleAction",
        "NormalizeReward"])
def test_gymnasiums_vector_wrappers_drive_the_view(wrap, small_view):
    env = wrap(small_view)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 6)
    ends = 0
    for _ in range(8):  # two full episodes and their reset steps
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs.shape == (2, 6) and np.all(np.isfinite(obs)) and reward.shape == (2,)
        ends += int(truncated.sum())
    assert ends == 4
    if isinstance(env, gym_wrappers.RecordEpisodeStatistics):
        assert len(env.return_queue) == 4
