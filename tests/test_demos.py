"""Demonstration files (HDF5, robomimic layout), window sampling and collection."""

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robojax import data, envs
from robojax.core.controller import Controller
from robojax.data.collect import collect, record

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)


def _episodes():
    rng = np.random.default_rng(0)
    return [{"obs": rng.normal(size=(n, 3)), "actions": rng.uniform(-1, 1, size=(n, 2)),
             "rewards": rng.normal(size=n), "dones": np.eye(n)[-1]} for n in (5, 3)]


def test_hdf5_round_trip(tmp_path):
    demos = data.from_episodes(_episodes(), "point-mass", {"episode_length": 5})
    path = data.save(tmp_path / "d.hdf5", demos)
    back = data.load(path)
    np.testing.assert_allclose(back.obs, demos.obs)
    np.testing.assert_allclose(back.actions, demos.actions)
    np.testing.assert_array_equal(back.ends, [5, 8])
    assert back.env_name == "point-mass" and back.env_kwargs == {"episode_length": 5}
    with h5py.File(path) as f:  # the robomimic layout other tools read
        assert set(f["data/demo_1"]) == {"obs", "actions", "rewards", "dones", "terminals"}
        assert f["data/demo_1"].attrs["num_samples"] == 3


def test_reads_robomimic_obs_groups_and_plain_obs(tmp_path):
    path = tmp_path / "rm.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("data/demo_0/obs/b_vel", data=np.ones((4, 1)))
        f.create_dataset("data/demo_0/obs/a_pos", data=np.zeros((4, 2)))
        f.create_dataset("data/demo_0/actions", data=np.zeros((4, 2)))
        f.create_dataset("data/demo_1/obs", data=np.ones((2, 3)))
        f.create_dataset("data/demo_1/actions", data=np.zeros((2, 2)))
    demos = data.load(path)
    np.testing.assert_array_equal(demos.obs[0], [0, 0, 1])  # keys sorted: a_pos, b_vel
    assert demos.num_episodes == 2 and demos.dones[3] and not demos.dones[2]
    assert data.load(path, obs_keys=["b_vel", "a_pos"]).obs[0].tolist() == [1, 0, 0]


@pytest.mark.parametrize("build, message", [
    (lambda f: f.create_group("other"), "no 'data' group"),
    (lambda f: f.create_group("data"), "no episodes"),
    (lambda f: f.create_dataset("data/demo_0/obs", data=np.zeros((3, 2))), "no 'actions'"),
    (lambda f: (f.create_dataset("data/demo_0/obs", data=np.zeros((3, 2))),
                f.create_dataset("data/demo_0/actions", data=np.zeros((4, 1)))), "4 actions but 3"),
    (lambda f: (f.create_dataset("data/demo_0/obs", data=np.zeros((0, 2))),
                f.create_dataset("data/demo_0/actions", data=np.zeros((0, 1)))), "empty"),
    (lambda f: (f.create_dataset("data/demo_0/obs", data=np.zeros(3)),
                f.create_dataset("data/demo_0/actions", data=np.zeros((3, 1)))), "2-D"),
])
def test_malformed_files_raise_clear_errors(tmp_path, build, message):
    path = tmp_path / "bad.hdf5"
    with h5py.File(path, "w") as f:
        build(f)
    with pytest.raises(data.DemoFileError, match=message):
        data.load(path)


def test_missing_and_non_hdf5_files(tmp_path):
    with pytest.raises(data.DemoFileError, match="robojax collect"):
        data.load(tmp_path / "nope.hdf5")
    (tmp_path / "text.hdf5").write_text("not hdf5")
    with pytest.raises(data.DemoFileError, match="not a readable HDF5"):
        data.load(tmp_path / "text.hdf5")


def test_env_mismatch_is_named():
    demos = data.from_episodes(_episodes(), "point-mass")
    with pytest.raises(data.DemoFileError, match="recorded on 'point-mass', not 'reacher'"):
        demos.check_env("reacher", 3, 2)
    with pytest.raises(data.DemoFileError, match="sizes 3/2"):
        demos.check_env("point-mass", 6, 2)


def test_windows_pad_with_episode_edges():
    # Episode 0 has steps 0..4 (obs value = global index), episode 1 steps 5..7.
    eps = [{"obs": np.arange(s, e)[:, None], "actions": np.arange(s, e)[:, None] * 10,
            "rewards": np.zeros(e - s), "dones": np.eye(e - s)[-1]} for s, e in ((0, 5), (5, 8))]
    arrays = data.to_device(data.from_episodes(eps))
    w = data.window(arrays, jnp.asarray(5), n_obs_steps=2, horizon=4)  # first step of ep 1
    np.testing.assert_array_equal(w["obs"][:, 0], [5, 5])
    np.testing.assert_array_equal(w["actions"][:, 0], [50, 50, 60, 70])
    w = data.window(arrays, jnp.asarray(4), n_obs_steps=3, horizon=5)  # last step of ep 0
    np.testing.assert_array_equal(w["obs"][:, 0], [2, 3, 4])
    np.testing.assert_array_equal(w["actions"][:, 0], [20, 30, 40, 40, 40])
    batch = jax.jit(data.sample_batch, static_argnums=(2, 3, 4))(
        arrays, jax.random.PRNGKey(0), 64, 2, 4)
    assert batch["obs"].shape == (64, 2, 1) and batch["actions"].shape == (64, 4, 1)
    # A window never mixes episodes: all its values come from one side of the boundary.
    obs = np.asarray(batch["obs"][..., 0])
    assert np.all((obs < 5).all(1) | (obs >= 5).all(1))


@pytest.mark.slow
def test_collect_from_solver_keeps_successful_episodes():
    demos, stats = collect("detour", "solver", 8, seed=1, only_success=True)
    assert demos.num_episodes == 8 and stats["success_rate"] > 0.9
    env = envs.make("detour")
    demos.check_env("detour", env.observation_spec.size, env.action_spec.size)
    assert demos.dones[demos.ends - 1].all() and not demos.dones[demos.starts].any()


def test_only_success_needs_a_success_metric():
    with pytest.raises(ValueError, match="no success metric"):
        collect("cartpole-balance", "solver", 2, only_success=True)
    _, stats = collect("cartpole-balance", "solver", 1)
    assert stats["success_rate"] is None  # not a rate of 0 where success is undefined


@pytest.mark.slow
def test_action_noise_moves_the_env_but_records_the_clean_actions():
    env = envs.make("point-mass")
    still = Controller(init=lambda state: (),
                       step=lambda carry, state, key: (jnp.zeros((4, 2)), carry))
    clean = record(env, still, jax.random.PRNGKey(0), 4, 20)
    noisy = record(env, still, jax.random.PRNGKey(0), 4, 20, action_noise=0.5)
    assert not noisy["actions"].any()  # what the source chose, not what the env got
    np.testing.assert_array_equal(clean["obs"][0], noisy["obs"][0])  # same starts
    assert np.abs(noisy["obs"][-1] - clean["obs"][-1]).max() > 1e-3  # pushed by the noise
    with pytest.raises(ValueError, match="action_noise must be >= 0"):
        collect("detour", "solver", 2, action_noise=-0.1)
