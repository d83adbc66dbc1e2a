"""Diffusion policy: DDPM training of an action-chunk denoiser, DDPM or DDIM sampling.

Actions live in [-1, 1] (robojax's action convention), so samples are clipped there as in
Diffusion Policy. The observation is a flat conditioning vector (the history, flattened); the
action spec is the chunk shape (horizon, action_dim).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from robojax.policies.networks import compiled_init
from robojax.policies.unet import ConditionalUnet1D, DenoiserMLP

from robojax.core.program import NoiseSpec, sampler_scan
from robojax.core.types import ArraySpec


@struct.dataclass
class ChunkParams:
    """A generative policy's parameters and the (horizon, action_dim) of the chunks it draws.

    The chunk shape is static, part of the pytree's structure rather than an array, so jit,
    gradients, optimizers and checkpoints see only `weights`; `sample` reads the shape from it.
    """

    weights: dict
    chunk: tuple[int, int] = struct.field(pytree_node=False)


def chunk_params(weights: dict, act_spec: ArraySpec) -> ChunkParams:
    return ChunkParams(weights, tuple(int(d) for d in act_spec.shape))


@dataclasses.dataclass(frozen=True)
class DenoiserConfig:
    """The network shared by the diffusion and flow families."""

    network: str = "unet"
    """"unet" (1D temporal conv U-Net with FiLM, as Diffusion Policy) or "mlp"."""
    down_dims: tuple[int, ...] = (64, 128, 256)
    """U-Net channel widths per level (Diffusion Policy's default is (256, 512, 1024))."""
    kernel_size: int = 5
    """U-Net temporal convolution width."""
    groups: int = 8
    """GroupNorm groups in the U-Net."""
    mlp_hidden: tuple[int, ...] = (512, 512, 512)
    """Hidden widths of the MLP denoiser."""
    time_dim: int = 64
    """Width of the time (diffusion step / flow time) embedding."""

    def build(self):
        if self.network == "unet":
            return ConditionalUnet1D(self.down_dims, self.kernel_size, self.groups, self.time_dim)
        if self.network == "mlp":
            return DenoiserMLP(self.mlp_hidden, self.time_dim)
        raise ValueError(f"unknown denoiser network {self.network!r}; choose 'unet' or 'mlp'.")

    def check_chunk(self, act_spec: ArraySpec) -> None:
        if len(act_spec.shape) != 2:
            raise ValueError(f"generative policies act in chunks: the action spec must be "
                             f"(horizon, action_dim), got {act_spec.shape}.")
        factor = 2 ** (len(self.down_dims) - 1)
        if self.network == "unet" and act_spec.shape[0] % factor:
            raise ValueError(f"the U-Net with {len(self.down_dims)} levels needs a horizon "
                             f"divisible by {factor}, got {act_spec.shape[0]}; change the "
                             "horizon or down_dims.")

    def init(self, key: jax.Array, obs_spec: ArraySpec, act_spec: ArraySpec,
             time_size: int) -> dict:
        """The network's parameters, for `time_size` time inputs. Compiled: run op by op, a
        U-Net's init compiles each of its hundreds of small ops anew in every process."""
        self.check_chunk(act_spec)
        args = (jnp.zeros((1, *act_spec.shape)), jnp.zeros((1, time_size)),
                jnp.zeros((1, obs_spec.size)))
        return compiled_init(self.build().init)(key, *args)


def cosine_alphas_cumprod(num_steps: int, max_beta: float = 0.999) -> np.ndarray:
    """Cumulative signal fractions of the cosine schedule (`squaredcos_cap_v2`)."""
    f = lambda t: np.cos((t + 0.008) / 1.008 * np.pi / 2) ** 2
    t = np.arange(num_steps)
    betas = np.minimum(1 - f((t + 1) / num_steps) / f(t / num_steps), max_beta)
    return np.cumprod(1.0 - betas)


@dataclasses.dataclass(frozen=True)
class DiffusionPolicy:
    denoiser: DenoiserConfig = DenoiserConfig()
    """The denoising network."""
    num_train_steps: int = 100
    """Diffusion steps T of the forward process."""
    prediction: str = "sample"
    """What the network predicts: "sample" (the clean chunk; cloned the bimodal detour expert
    at 100% where epsilon reached 52%, experiments/bench/RESULTS.md) or "epsilon" (the noise,
    Diffusion Policy's default)."""
    sampler: str = "ddim"
    """Default sampler: "ddpm" (stochastic) or "ddim" (deterministic, eta = 0)."""
    inference_steps: int = 10
    """Default number of denoising steps when `sample` gets no `steps`."""

    def __post_init__(self):
        if self.prediction not in ("epsilon", "sample"):
            raise ValueError(f"prediction must be 'epsilon' or 'sample', got {self.prediction!r}")
        if self.sampler not in ("ddpm", "ddim"):
            raise ValueError(f"sampler must be 'ddpm' or 'ddim', got {self.sampler!r}")

    @property
    def _alphas_cumprod(self) -> jax.Array:
        return jnp.asarray(cosine_alphas_cumprod(self.num_train_steps), jnp.float32)

    def init(self, key: jax.Array, obs_spec: ArraySpec, act_spec: ArraySpec) -> ChunkParams:
        net = self.denoiser.init(key, obs_spec, act_spec, time_size=1)
        return chunk_params({"net": net}, act_spec)

    def _predict(self, params, x, t, obs):
        times = t[..., None].astype(jnp.float32)
        return self.denoiser.build().apply(params.weights["net"], x, times, obs)

    def loss(self, params: ChunkParams, batch: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """Denoising loss on `batch["obs"]` (B, cond) and `batch["actions"]` (B, H, A)."""
        actions = batch["actions"]
        key_t, key_noise = jax.random.split(key)
        t = jax.random.randint(key_t, actions.shape[:1], 0, self.num_train_steps)
        noise = jax.random.normal(key_noise, actions.shape)
        ab = self._alphas_cumprod[t][:, None, None]
        noisy = jnp.sqrt(ab) * actions + jnp.sqrt(1 - ab) * noise
        target = noise if self.prediction == "epsilon" else actions
        mse = jnp.mean((self._predict(params, noisy, t, batch["obs"]) - target) ** 2)
        return mse, {"diffusion/mse": mse}

    def _x0_and_eps(self, out, x, ab):
        if self.prediction == "epsilon":
            x0 = (x - jnp.sqrt(1 - ab) * out) / jnp.sqrt(ab)
            return jnp.clip(x0, -1.0, 1.0), out
        x0 = jnp.clip(out, -1.0, 1.0)
        return x0, (x - jnp.sqrt(ab) * x0) / jnp.sqrt(1 - ab)

    def _steps_and_sampler(self, steps: int | None, sampler: str | None) -> tuple[int, str]:
        steps = steps or self.inference_steps
        if not 1 <= steps <= self.num_train_steps:
            raise ValueError(f"steps must be in [1, {self.num_train_steps}], got {steps}")
        return steps, sampler or self.sampler

    def noise_spec(self, params: ChunkParams, *, steps: int | None = None,
                   sampler: str | None = None) -> dict[str, NoiseSpec]:
        """The noise one chunk consumes: the initial chunk x_T, and DDPM's per-step noise."""
        steps, sampler = self._steps_and_sampler(steps, sampler)
        spec = {"init": NoiseSpec(params.chunk)}
        if sampler == "ddpm":
            spec["steps"] = NoiseSpec((steps, *params.chunk))
        return spec

    def sample(self, params: ChunkParams, obs: jax.Array, key: jax.Array, *,
               steps: int | None = None, sampler: str | None = None) -> jax.Array:
        """Action chunks (..., H, A) for observations (..., cond) by `steps` denoising steps."""
        steps, sampler = self._steps_and_sampler(steps, sampler)
        shape = obs.shape[:-1] + params.chunk
        key_init, key_steps = jax.random.split(key)
        noise = {"init": jax.random.normal(key_init, shape)}
        if sampler == "ddpm":
            draws = jax.vmap(lambda k: jax.random.normal(k, shape))(
                jax.random.split(key_steps, steps))
            noise["steps"] = jnp.moveaxis(draws, 0, -3)
        return self.sample_from_noise(params, obs, noise, steps=steps, sampler=sampler)

    def sample_from_noise(self, params: ChunkParams, obs: jax.Array, noise: dict, *,
                          steps: int | None = None, sampler: str | None = None) -> jax.Array:
        """`sample` with its randomness given: `noise` as `noise_spec` says, batched like obs.

        `steps` is static: the reverse process is a `lax.scan` of that length over timesteps
        spaced T // steps apart.
        """
        steps, sampler = self._steps_and_sampler(steps, sampler)
        step_noise = (jnp.moveaxis(noise["steps"], -3, 0) if sampler == "ddpm"
                      else jnp.zeros((steps, 0)))

        def denoise(x, inputs):
            k, eta = inputs
            mean, std = self.denoise_step(params, x, k, steps, obs, sampler)
            return (mean if sampler == "ddim" else mean + std * eta), None

        x, _ = sampler_scan(denoise, noise["init"], (jnp.arange(steps), step_noise))
        return jnp.clip(x, -1.0, 1.0)

    def denoise_step(self, params: ChunkParams, x: jax.Array, k: jax.Array, steps: int,
                     obs: jax.Array, sampler: str | None = None
                     ) -> tuple[jax.Array, jax.Array]:
        """Mean and standard deviation of the chunk after denoising step `k` (0 .. steps-1,
        timestep (steps-1-k) * T // steps) from chunks `x` (..., H, A): the DDPM posterior
        q(x_prev | x, x0_hat), whose std is 0 on the last step, or the deterministic DDIM
        update (std 0)."""
        sampler = sampler or self.sampler
        ratio = self.num_train_steps // steps
        t = (steps - 1 - k) * ratio
        alphas = self._alphas_cumprod
        ab = alphas[t]
        ab_prev = jnp.where(t - ratio >= 0, alphas[jnp.maximum(t - ratio, 0)], 1.0)
        out = self._predict(params, x, jnp.broadcast_to(t, x.shape[:-2]), obs)
        x0, eps = self._x0_and_eps(out, x, ab)
        if sampler == "ddim":
            return jnp.sqrt(ab_prev) * x0 + jnp.sqrt(1 - ab_prev) * eps, jnp.zeros(())
        alpha_t = ab / ab_prev
        mean = (jnp.sqrt(ab_prev) * (1 - alpha_t) * x0
                + jnp.sqrt(alpha_t) * (1 - ab_prev) * x) / (1 - ab)
        std = jnp.sqrt(jnp.maximum((1 - ab_prev) / (1 - ab) * (1 - alpha_t), 1e-20))
        return mean, jnp.where(t > 0, std, 0.0)
