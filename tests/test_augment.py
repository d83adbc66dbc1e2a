"""Mirror augmentation: the reflection maps, half-batch reflection, and BC's use of them."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from robojax.policies import DiffusionPolicy
from robojax.policies.diffusion import DenoiserConfig

from robojax import envs
from robojax.algos import bc
from robojax.data.augment import Reflection, check_reflection, reflect_half, reflect_obs


def test_check_reflection_names_the_problem():
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])
    check_reflection(Reflection(swap, -np.eye(1)), 2, 1)
    with pytest.raises(ValueError, match=r"obs_map must be \(3, 3\)"):
        check_reflection(Reflection(swap, -np.eye(1)), 3, 1)
    with pytest.raises(ValueError, match="action_map is not its own inverse"):
        check_reflection(Reflection(swap, 2 * np.eye(1)), 2, 1)


def test_reflect_half_mirrors_whole_windows_about_half_the_time(key):
    mirror = Reflection(np.array([[0.0, 1.0], [1.0, 0.0]]), -np.eye(1))
    obs = jax.random.normal(key, (2000, 2, 2))
    actions = jax.random.normal(jax.random.fold_in(key, 1), (2000, 4, 1))
    out = reflect_half(mirror, {"obs": obs, "actions": actions, "other": obs}, key)
    flipped = np.asarray(jnp.all(out["actions"] == -actions, axis=(1, 2)))
    kept = np.asarray(jnp.all(out["actions"] == actions, axis=(1, 2)))
    assert np.all(flipped | kept) and 0.45 < flipped.mean() < 0.55
    np.testing.assert_array_equal(out["obs"][flipped], obs[flipped][..., ::-1])
    np.testing.assert_array_equal(out["obs"][kept], obs[kept])
    assert out["other"] is obs  # other entries pass through


def test_bc_mirror_trains_on_symmetric_statistics_and_needs_a_symmetric_env(tmp_path, key):
    from robojax.data.collect import collect
    from robojax.data.demos import save

    demos, _ = collect("push-t", "solver", 4, only_success=True)
    path = tmp_path / "pusht.hdf5"
    save(path, demos)
    cfg = dataclasses.replace(bc.BCConfig(), dataset=path, mirror=True, batch_size=8,
                              diffusion=DiffusionPolicy(DenoiserConfig(network="mlp",
                                                                       mlp_hidden=(32,))))
    env = envs.make("push-t")
    data = bc.make_train_input(cfg, env)
    state = bc.init(cfg, env, data, key)
    mirror = env.reflection()
    # Normalization statistics of the demos and their images: the reflection fixes the mean.
    np.testing.assert_allclose(reflect_obs(mirror, state.obs_mean), state.obs_mean, atol=1e-6)
    no_mirror = dataclasses.replace(cfg, mirror=False)
    plain = bc.init(no_mirror, env, bc.make_train_input(no_mirror, env), key)
    assert not np.allclose(reflect_obs(mirror, plain.obs_mean), plain.obs_mean, atol=1e-3)
    new_state, info = jax.jit(lambda s: bc.grad_step(cfg, data, s))(state)
    assert np.isfinite(float(info["train/loss"])) and int(new_state.step) == 1
    with pytest.raises(ValueError, match=r"Envs with one: \['detour', 'push-t'\]"):
        bc.make_train_input(cfg, envs.make("point-mass"))
    assert envs.with_reflection() == ["detour", "push-t"]
