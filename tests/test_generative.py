"""Policy families on a toy two-mode dataset: each generative family learns both modes, the
Gaussian (MSE) baseline averages them; sampler consistency; energy inference; shapes."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from robojax.policies.diffusion import DenoiserConfig

from robojax import policies
from robojax.core.program import graph_export, unrolled_sampler_loops
from robojax.core.types import ArraySpec

pytestmark = pytest.mark.xdist_group("generative")

OBS, CHUNK = ArraySpec((3,)), ArraySpec((4, 2))
SMALL = DenoiserConfig(network="mlp", mlp_hidden=(128, 128), time_dim=64)
FAMILIES = {
    "diffusion": (policies.DiffusionPolicy(denoiser=SMALL, num_train_steps=50,
                                           prediction="epsilon"), 3000),
    "flow": (policies.FlowPolicy(denoiser=SMALL, max_steps=16, prediction="velocity"), 2000),
    "flow-sample": (policies.FlowPolicy(denoiser=SMALL, max_steps=16), 2000),
    "energy": (policies.EnergyPolicy(hidden_sizes=(64, 64), num_negatives=32,
                                     num_proposals=128, inferred_negatives=0), 500),
    "energy-inferred": (policies.EnergyPolicy(hidden_sizes=(64, 64), num_negatives=32,
                                              num_proposals=128, inferred_negatives=8), 600),
    "gaussian": (policies.GaussianPolicy(hidden_sizes=(64, 64)), 400),
}


def toy_batch(key, n=256):
    """Chunks that hold +0.5 or -0.5 on action 0 (equally likely) and 0 on action 1."""
    key_mode, key_noise = jax.random.split(key)
    sign = jnp.where(jax.random.bernoulli(key_mode, 0.5, (n,)), 1.0, -1.0)
    chunk = jnp.stack([0.5 * sign, jnp.zeros(n)], -1)[:, None, :].repeat(4, axis=1)
    return {"obs": jnp.zeros((n, 3)), "actions": chunk + 0.02 * jax.random.normal(
        key_noise, chunk.shape)}


@functools.cache
def trained(name):
    policy, steps = FAMILIES[name]
    params = policy.init(jax.random.PRNGKey(0), OBS, CHUNK)
    opt = optax.adam(1e-3)

    def step(carry, key):
        params, opt_state = carry
        key_batch, key_loss = jax.random.split(key)
        (loss, _), grads = jax.value_and_grad(policy.loss, has_aux=True)(
            params, toy_batch(key_batch), key_loss)
        updates, opt_state = opt.update(grads, opt_state)
        return (optax.apply_updates(params, updates), opt_state), loss

    (params, _), losses = jax.jit(lambda p: jax.lax.scan(
        step, (p, opt.init(p)), jax.random.split(jax.random.PRNGKey(1), steps)))(params)
    return policy, params, np.asarray(losses)


def draw(name, n=1000, key=5, **kwargs):
    policy, params, _ = trained(name)
    sample = policy.mode if name == "gaussian" else functools.partial(policy.sample, **kwargs)
    out = jax.jit(lambda o, k: sample(params, o, k) if name != "gaussian" else sample(params, o))(
        jnp.zeros((n, 3)), jax.random.PRNGKey(key))
    return np.asarray(out)


def mode_fractions(chunks):
    level = chunks[:, :, 0].mean(1)
    return (level > 0.3).mean(), (level < -0.3).mean()


def covers_both_modes(chunks) -> bool:
    """Nearly every chunk at one of the two levels, and each level drawn at least a fifth of the
    time: a mixture, however uneven after a short training, not a collapse or an average."""
    up, down = mode_fractions(chunks)
    return up > 0.2 and down > 0.2 and up + down > 0.85


# Predicting the clean chunk has an irreducible loss near t = 0, where noise says nothing about
# which mode a chunk came from, so its loss falls less far than a velocity's or a noise's.
LOSS_DROP = {"flow-sample": 0.8}


@pytest.mark.parametrize("name", ["diffusion", "flow", "flow-sample", "energy",
                                  "energy-inferred"])
@pytest.mark.slow
def test_generative_family_learns_both_modes(name):
    _, _, losses = trained(name)
    assert losses[-100:].mean() < LOSS_DROP.get(name, 0.5) * losses[:20].mean()
    chunks = draw(name)
    assert chunks.shape == (1000, 4, 2)
    assert covers_both_modes(chunks), mode_fractions(chunks)


def test_gaussian_mse_averages_the_modes():
    _, _, losses = trained("gaussian")
    assert losses[-50:].mean() < losses[:5].mean()
    chunks = draw("gaussian")
    assert not covers_both_modes(chunks)
    assert np.abs(chunks[:, :, 0]).mean() < 0.15  # it sits between the modes


def _two_point_denoiser(policy):
    """The exact epsilon of data at chunk level +-0.5 on action 0 and 0 on action 1."""
    alphas = policy._alphas_cumprod

    def predict(params, x, t, obs):
        ab = alphas[t][..., None, None]
        levels = jnp.array([0.5, -0.5])
        log_lik = -jnp.sum((x[..., 0, None] - jnp.sqrt(ab) * levels) ** 2, axis=-2) / (
            2 * (1 - ab[..., 0]))
        level = jnp.sum(jax.nn.softmax(log_lik, axis=-1) * levels, axis=-1)
        x0 = jnp.stack([jnp.broadcast_to(level[..., None], x.shape[:-1]),
                        jnp.zeros(x.shape[:-1])], axis=-1)
        return (x - jnp.sqrt(ab) * x0) / jnp.sqrt(1 - ab)

    return predict


@pytest.mark.slow
def test_ddim_with_all_steps_matches_ddpm_in_distribution():
    # With the exact denoiser both samplers must return the data distribution itself.
    policy = policies.DiffusionPolicy(num_train_steps=50, prediction="epsilon")
    object.__setattr__(policy, "_predict", _two_point_denoiser(policy))
    params = policies.ChunkParams({}, chunk=(4, 2))
    for sampler in ("ddpm", "ddim"):
        chunks = np.asarray(policy.sample(params, jnp.zeros((2000, 3)), jax.random.PRNGKey(0),
                                          steps=50, sampler=sampler))
        up, down = mode_fractions(chunks)
        assert abs(up - 0.5) < 0.04 and up + down == 1.0, (sampler, up, down)
        np.testing.assert_allclose(np.abs(chunks[:, :, 0]), 0.5, atol=1e-3)
        np.testing.assert_allclose(chunks[:, :, 1], 0.0, atol=1e-3)
    # With the learned denoiser, DDIM over all T steps keeps DDPM's mode balance.
    ddpm = draw("diffusion", steps=50, sampler="ddpm", n=2000)
    ddim = draw("diffusion", steps=50, sampler="ddim", n=2000, key=6)
    (up_p, down_p), (up_i, down_i) = mode_fractions(ddpm), mode_fractions(ddim)
    assert abs(up_p - up_i) < 0.08 and abs(down_p - down_i) < 0.08
    upper = lambda a: a[a[:, :, 0].mean(1) > 0, :, 0]
    assert abs(np.median(upper(ddpm)) - np.median(upper(ddim))) < 0.05


@pytest.mark.slow
def test_flow_one_step_agrees_with_many_steps():
    # The velocity-predicting shortcut model: on this toy its single step lands on a mode (the
    # sample-predicting one still leaves ~20% of single steps between the modes here).
    name = "flow"
    one, many = draw(name, steps=1), draw(name, steps=16)  # same key: same initial noise
    assert covers_both_modes(one), mode_fractions(one)
    same_mode = np.sign(one[:, :, 0].mean(1)) == np.sign(many[:, :, 0].mean(1))
    assert same_mode.mean() > 0.9
    assert np.abs(one - many).mean() < 0.1


@pytest.mark.slow
def test_energy_inference_lowers_the_energy():
    policy, params, _ = trained("energy")
    obs, key = jnp.zeros((256, 3)), jax.random.PRNGKey(3)
    uniform = jax.random.uniform(key, (256, 4, 2), minval=-1, maxval=1)
    e_uniform = policy.energy(params, obs, uniform)
    one = dataclasses.replace(policy, descent_starts=1)
    chunks, e_descent, taken = one.sample_with_energy(params, obs, key, steps=4)
    proposal = policy._best(*policy._proposals(params, obs, key))
    assert float(e_descent.mean()) <= float(policy.energy(params, obs, proposal).mean()) + 1e-4
    assert float(e_descent.mean()) < float(e_uniform.mean())
    assert 1 <= int(taken) <= 4
    # Several starts, drawn by energy: near zero temperature the lowest of them, which is
    # never above the single best proposal's descent.
    lowest = dataclasses.replace(policy, descent_starts=16, temperature=1e-3)
    x, e_several, _ = lowest.sample_with_energy(params, obs, key, steps=4)
    assert x.shape == chunks.shape and e_several.shape == e_descent.shape
    assert float(e_several.mean()) <= float(e_descent.mean()) + 1e-4
    np.testing.assert_allclose(lowest.energy(params, obs, x), e_several, rtol=1e-4, atol=1e-4)
    for inference, steps in (("dfo", 3), ("langevin", 30)):
        other = dataclasses.replace(policy, inference=inference)
        x, energy, _ = other.sample_with_energy(params, obs, key, steps=steps)
        assert float(energy.mean()) < float(e_uniform.mean())
        assert covers_both_modes(np.asarray(x)), (inference, mode_fractions(np.asarray(x)))


@pytest.mark.slow
def test_inferred_counter_examples_are_where_inference_lands():
    policy, params, _ = trained("energy-inferred")
    obs, key = jnp.zeros((16, 3)), jax.random.PRNGKey(4)
    inferred = policy._inferred(params, obs, key)
    assert inferred.shape == (16, 8, 4, 2)
    assert float(jnp.abs(inferred).max()) <= 1.0
    random = policy._random_chunks(key, (16, 128, 4, 2))
    e_inferred = policy.energy(params, obs[:, None], inferred)
    e_random = policy.energy(params, obs[:, None], random)
    assert float(e_inferred.max()) < float(jnp.median(e_random))  # each below most proposals


def test_latent_knots_score_and_return_piecewise_linear_chunks():
    policy = policies.EnergyPolicy(hidden_sizes=(16,), num_proposals=8, latent_knots=2)
    horizon_8 = ArraySpec((8, 2))
    params = policy.init(jax.random.PRNGKey(0), OBS, horizon_8)
    z = jax.random.uniform(jax.random.PRNGKey(1), (5, 2, 2), minval=-1, maxval=1)
    line = policy._decode(z, 8)  # straight chunks through two knots
    np.testing.assert_allclose(policy._encode(line), z, atol=1e-5)
    chunks, energy, _ = policy.sample_with_energy(params, jnp.zeros((5, 3)),
                                                  jax.random.PRNGKey(2), steps=2)
    assert chunks.shape == (5, 8, 2) and energy.shape == (5,)
    steps = np.diff(np.asarray(chunks), axis=1)  # constant slope along each chunk
    np.testing.assert_allclose(steps, steps[:, :1].repeat(7, axis=1), atol=1e-5)
    np.testing.assert_allclose(policy.energy(params, jnp.zeros((5, 3)), chunks), energy,
                               rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_energy_descent_stops_early_once_converged():
    policy, params, _ = trained("energy")
    loose = dataclasses.replace(policy, converged_tol=1e3)
    _, _, taken = loose.sample_with_energy(params, jnp.zeros((8, 3)), jax.random.PRNGKey(0),
                                           steps=10)
    assert int(taken) == 1


@pytest.mark.parametrize("tol", [1e3, 0.0])
def test_the_unrolled_energy_descent_ends_where_the_loop_does(tol):
    """Traced for export the descent is straight-line code of all its steps, which keeps the
    chunks once converged: the chunks, energies and step count of the loop that stops."""
    policy, params, _ = trained("energy")
    policy = dataclasses.replace(policy, converged_tol=tol)
    sample = jax.jit(lambda obs, key: policy.sample_with_energy(params, obs, key, steps=4))
    obs = jax.random.normal(jax.random.PRNGKey(1), (8, 3))
    looped = sample(obs, jax.random.PRNGKey(0))
    with unrolled_sampler_loops():  # a new function: `sample`'s cached trace has the loop
        unrolled = jax.jit(lambda obs, key: policy.sample_with_energy(
            params, obs, key, steps=4))(obs, jax.random.PRNGKey(0))
    assert int(looped[2]) == int(unrolled[2]) == (1 if tol else 4)
    for a, b in zip(looped[:2], unrolled[:2], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_sampling_shapes_batched_and_single():
    for name in ("diffusion", "flow", "energy"):
        policy, params, _ = trained(name)
        assert policy.sample(params, jnp.zeros((2, 5, 3)), jax.random.PRNGKey(0)).shape == (
            2, 5, 4, 2)
        assert policy.sample(params, jnp.zeros(3), jax.random.PRNGKey(0)).shape == (4, 2)


def test_unet_runs_and_rejects_bad_horizons():
    policy = policies.DiffusionPolicy(denoiser=DenoiserConfig(down_dims=(16, 32), groups=4))
    params = policy.init(jax.random.PRNGKey(0), OBS, ArraySpec((8, 2)))
    out = policy.sample(params, jnp.zeros((3, 3)), jax.random.PRNGKey(0), steps=2)
    assert out.shape == (3, 8, 2) and np.isfinite(np.asarray(out)).all()
    with pytest.raises(ValueError, match="divisible by 2"):
        policy.init(jax.random.PRNGKey(0), OBS, ArraySpec((7, 2)))
    with pytest.raises(ValueError, match=r"\(horizon, action_dim\)"):
        policy.init(jax.random.PRNGKey(0), OBS, ArraySpec((2,)))


def reference_conv(x, kernel, stride=1, dilation=1):
    """Direct loops: zeros inserted after each input step, "same" padding, then the stride."""
    batch, (k, _, cout) = x.shape[0], kernel.shape
    if dilation > 1:
        x = np.stack([x] + [np.zeros_like(x)] * (dilation - 1), 2).reshape(batch, -1, x.shape[2])
    left = (k - 1) // 2
    padded = np.pad(x, ((0, 0), (left, k - 1 - left), (0, 0)))
    out = np.zeros((batch, x.shape[1], cout))
    for t in range(x.shape[1]):
        for i in range(k):
            out[:, t] += padded[:, t + i] @ kernel[i]
    return out[:, ::stride]


@pytest.mark.parametrize("length,kernel_size,stride,dilation", [
    (16, 5, 1, 1), (4, 5, 1, 1), (1, 5, 1, 1), (4, 4, 1, 1), (16, 3, 2, 1), (2, 3, 2, 1),
    (8, 4, 1, 2), (1, 4, 1, 2)])
def test_unet_convolution_matches_direct_loops(length, kernel_size, stride, dilation):
    """Every path of the U-Net's Conv1d (native, banded matrix where the kernel is wider than
    the sequence, strided, zero-inserting, and the one multiply traced for an ONNX graph)
    computes the same convolution."""
    from robojax.policies.unet import Conv1d
    conv = Conv1d(6, kernel_size, stride=stride, input_dilation=dilation)
    x = jax.random.normal(jax.random.PRNGKey(0), (3, length, 5))
    params = conv.init(jax.random.PRNGKey(1), x)
    kernel, bias = (np.asarray(params["params"][n]) for n in ("kernel", "bias"))
    expected = reference_conv(np.asarray(x), kernel, stride, dilation) + bias
    np.testing.assert_allclose(conv.apply(params, x), expected, rtol=1e-5, atol=1e-5)
    with graph_export():
        np.testing.assert_allclose(conv.apply(params, x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("length,kernel_size,stride", [(16, 5, 1), (16, 3, 2), (8, 4, 1)])
def test_unet_convolution_gradient_matches_autodiff_of_the_native_convolution(
        length, kernel_size, stride):
    """Conv1d's own backward pass (im2col) gives the gradients XLA's convolution would."""
    from robojax.policies.unet import Conv1d
    conv = Conv1d(6, kernel_size, stride=stride)
    x = jax.random.normal(jax.random.PRNGKey(0), (3, length, 5))
    params = conv.init(jax.random.PRNGKey(1), x)
    weights = jax.random.normal(jax.random.PRNGKey(2), conv.apply(params, x).shape)
    left = (kernel_size - 1) // 2

    def native(params, x):
        out = jax.lax.conv_general_dilated(x, params["params"]["kernel"], (stride,),
                                           [(left, kernel_size - 1 - left)],
                                           dimension_numbers=("NWC", "WIO", "NWC"))
        return jnp.sum((out + params["params"]["bias"]) * weights)

    ours = jax.grad(lambda p, x: jnp.sum(conv.apply(p, x) * weights), argnums=(0, 1))(params, x)
    expected = jax.grad(native, argnums=(0, 1))(params, x)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_mish_and_its_gradient_match_the_formula():
    from robojax.policies.unet import mish
    x = jnp.linspace(-40.0, 40.0, 4001)
    formula = lambda x: x * jnp.tanh(jax.nn.softplus(x))
    np.testing.assert_allclose(mish(x), formula(x), rtol=1e-5, atol=1e-6)
    grad, expected = jax.vmap(jax.grad(mish))(x), jax.vmap(jax.grad(formula))(x)
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-5)


def test_dfo_resampling_draws_in_proportion_to_the_softmax():
    from robojax.policies.energy import _resample
    probs = np.array([0.1, 0.0, 0.6, 0.3])
    logits = jnp.log(jnp.asarray(probs) + 1e-12)
    index = np.asarray(_resample(jax.random.PRNGKey(0), jnp.broadcast_to(logits, (3, 20000, 4))))
    assert index.min() >= 0 and index.max() <= 3
    np.testing.assert_allclose(np.bincount(index.ravel(), minlength=4) / index.size, probs,
                               atol=0.005)


def test_unknown_family_and_bad_settings():
    with pytest.raises(KeyError, match="Did you mean 'diffusion'"):
        policies.make("difusion")
    with pytest.raises(ValueError, match="epsilon"):
        policies.DiffusionPolicy(prediction="velocity")
    with pytest.raises(ValueError, match="power of two"):
        policies.FlowPolicy(max_steps=12)
    with pytest.raises(ValueError, match="descent_starts"):
        policies.EnergyPolicy(descent_starts=0)
