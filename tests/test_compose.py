"""Composition of two generative policies at sampling time: weight 1 and 0 are each part
exactly, a weight in between is neither, and mismatched parts are refused by name."""

import jax
import numpy as np
import pytest
from robojax.policies import DiffusionPolicy, FlowPolicy
from robojax.policies.compose import compose
from robojax.policies.diffusion import DenoiserConfig

from robojax.core.types import ArraySpec

MLP = DenoiserConfig(network="mlp", mlp_hidden=(32, 32), time_dim=16)
COND_A, COND_B, CHUNK = 6, 4, (8, 2)


def _params(policy, cond_size, seed):
    params = policy.init(jax.random.PRNGKey(seed), ArraySpec((cond_size,)), ArraySpec(CHUNK))
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed + 10), len(leaves))
    return jax.tree.unflatten(tree, [x + 0.3 * jax.random.normal(k, x.shape)
                                     for x, k in zip(leaves, keys, strict=True)])


@pytest.mark.parametrize("family", [FlowPolicy, DiffusionPolicy])
def test_weights_one_and_zero_are_each_part(family):
    first, second = family(denoiser=MLP), family(denoiser=DenoiserConfig(
        network="mlp", mlp_hidden=(16,), time_dim=8))
    params_a, params_b = _params(first, COND_A, 0), _params(second, COND_B, 1)
    cond_a = jax.random.normal(jax.random.PRNGKey(2), (5, COND_A))
    cond_b = jax.random.normal(jax.random.PRNGKey(3), (5, COND_B))
    noise = {"init": jax.random.normal(jax.random.PRNGKey(4), (5, *CHUNK))}
    both = np.concatenate([cond_a, cond_b], axis=-1)

    def composed(weight):
        policy, params = compose(first, params_a, second, params_b, weight, COND_A)
        return np.asarray(policy.sample_from_noise(params, both, noise, steps=4))

    alone_a = np.asarray(first.sample_from_noise(params_a, cond_a, noise, steps=4))
    alone_b = np.asarray(second.sample_from_noise(params_b, cond_b, noise, steps=4))
    np.testing.assert_array_equal(composed(1.0), alone_a)
    np.testing.assert_array_equal(composed(0.0), alone_b)
    middle = composed(0.5)
    assert not np.allclose(middle, alone_a) and not np.allclose(middle, alone_b)


def test_mismatched_parts_are_refused():
    flow, diffusion = FlowPolicy(denoiser=MLP), DiffusionPolicy(denoiser=MLP)
    pf, pd = _params(flow, COND_A, 0), _params(diffusion, COND_A, 1)
    with pytest.raises(ValueError, match="two diffusion or two flow policies"):
        compose(flow, pf, diffusion, pd, 0.5, COND_A)
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\]"):
        compose(flow, pf, flow, pf, 1.5, COND_A)
    epsilon = DiffusionPolicy(denoiser=MLP, prediction="epsilon")
    with pytest.raises(ValueError, match="differ in prediction"):
        compose(diffusion, pd, epsilon, pd, 0.5, COND_A)


def test_compose_refuses_a_run_that_is_not_a_generative_clone(tmp_path):
    from pathlib import Path

    from robojax import cli
    from robojax.io import run as run_dir_io
    from robojax.runs import TrainArgs

    run_dir_io.write_config(tmp_path / "ppo", TrainArgs(algo="ppo", env="detour"))
    run_dir_io.write_config(tmp_path / "gauss", TrainArgs(algo="bc", env="detour",
                                                          policy="gaussian",
                                                          dataset=Path("d.hdf5")))
    with pytest.raises(ValueError, match="is a `--algo ppo` run; composition mixes"):
        cli.main(["compose", str(tmp_path / "ppo"), str(tmp_path / "gauss")])
    with pytest.raises(ValueError, match="`--algo bc --policy gaussian` run"):
        cli.main(["compose", str(tmp_path / "gauss"), str(tmp_path / "ppo")])


def test_value_guidance_picks_the_mode_its_q_prefers():
    """A bimodal sampler (each chunk all +0.5 or all -0.5): a Q preferring positive actions
    makes the guided plan positive everywhere; one candidate is the sampler itself; a high
    temperature leaves both modes."""
    import jax.numpy as jnp
    from robojax.policies.guided import value_guided

    def sample(cond, key):
        side = jnp.where(jax.random.bernoulli(key, 0.5, (cond.shape[0],)), 0.5, -0.5)
        return jnp.broadcast_to(side[:, None, None], (cond.shape[0], *CHUNK))

    score = lambda cond, chunks: chunks.mean(axis=(-1, -2))
    cond, key = jnp.zeros((256, 3)), jax.random.PRNGKey(0)
    guided = np.asarray(value_guided(sample, score, 16)(cond, key))
    assert np.all(guided == 0.5)
    alone = np.asarray(value_guided(sample, score, 1)(cond, key))
    first_draw = np.asarray(sample(cond, jax.random.split(jax.random.split(key)[0], 1)[0]))
    np.testing.assert_array_equal(alone, first_draw)
    assert 0.3 < (alone[:, 0, 0] > 0).mean() < 0.7
    soft = np.asarray(value_guided(sample, score, 16, temperature=100.0)(cond, key))
    assert 0.3 < (soft[:, 0, 0] > 0).mean() < 0.7
    with pytest.raises(ValueError, match="num_candidates must be >= 1"):
        value_guided(sample, score, 0)


def test_vgps_refuses_a_run_that_is_not_a_generative_clone(tmp_path):
    from robojax import cli
    from robojax.io import run as run_dir_io
    from robojax.runs import TrainArgs

    run_dir_io.write_config(tmp_path / "ppo", TrainArgs(algo="ppo", env="detour"))
    with pytest.raises(ValueError, match="is a `--algo ppo` run; value-guided sampling draws"):
        cli.main(["vgps", str(tmp_path / "ppo")])


def test_a_task_without_a_success_metric_is_ranked_and_reported_by_its_return():
    """hopper or pendulum-swingup clones count no successes: a composition or a V-GPS row of
    theirs reports the return alone (not "success 0.000") and the best is the best return."""
    from robojax.steer import _ranking, _summary

    rows = [{"weight": 0.0, "success_rate": None, "success_ci": None, "episode_reward": 812.5},
            {"weight": 1.0, "success_rate": None, "success_ci": None, "episode_reward": 901.0}]
    assert _summary(rows[0]) == "return 812.5"
    assert max(rows, key=_ranking)["weight"] == 1.0
    scored = {"success_rate": 0.5, "success_ci": [0.4, 0.6], "episode_reward": 3.0}
    assert _summary(scored) == "success 0.500 [0.400, 0.600], return 3.0"
