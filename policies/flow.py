"""Flow-matching policy: rectified flow from Gaussian noise (t = 0) to action chunks (t = 1).

The network predicts the clean chunk (or, optionally, the velocity directly); sampling
integrates the implied velocity with k Euler steps. With `shortcut`
(Frans et al., "One Step Diffusion via Shortcut Models") the network is also conditioned on the
step size d and trained so that one step of size 2d equals two steps of size d; then a single
step (k = 1) already lands on the data, without a separate distillation stage.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
from robojax.policies.diffusion import ChunkParams, DenoiserConfig, chunk_params

from robojax.core.program import NoiseSpec, sampler_scan
from robojax.core.types import ArraySpec


@dataclasses.dataclass(frozen=True)
class FlowPolicy:
    denoiser: DenoiserConfig = DenoiserConfig()
    """The velocity network."""
    inference_steps: int = 10
    """Default number of Euler steps when `sample` gets no `steps`."""
    shortcut: bool = True
    """Condition on the step size and train self-consistency, so few-step (even 1-step)
    sampling works. It costs k-step precision: on push-t, 10 Euler steps succeed in 0.44 of the
    episodes with it and 0.69 without (one seed each, experiments/bench/RESULTS.md 3b), so train
    without it when many-step sampling is all you need."""
    max_steps: int = 128
    """Finest step grid of the shortcut model (a power of two); its step size trains by plain
    flow matching."""
    consistency_fraction: float = 0.25
    """Share of each batch spent on the self-consistency targets."""
    prediction: str = "sample"
    """What the network outputs: "sample", the chunk at t = 1, from which the velocity is
    (sample - x) / (1 - t); or "velocity" (plain rectified flow). On the bimodal detour task
    sample prediction lifts 10-step success from 0.82 to 1.0 and 1-step from 0.13 to 0.57."""

    def __post_init__(self):
        if self.max_steps < 2 or self.max_steps & (self.max_steps - 1):
            raise ValueError(f"max_steps must be a power of two >= 2, got {self.max_steps}")
        if self.prediction not in ("velocity", "sample"):
            raise ValueError(f"prediction must be 'velocity' or 'sample', got "
                             f"{self.prediction!r}")

    def init(self, key: jax.Array, obs_spec: ArraySpec, act_spec: ArraySpec) -> ChunkParams:
        net = self.denoiser.init(key, obs_spec, act_spec, time_size=2)  # time and step size
        return chunk_params({"net": net}, act_spec)

    def _output(self, params, x, t, d, obs):
        if not self.shortcut:
            d = jnp.zeros_like(d)
        times = jnp.stack([t, d], axis=-1) * 1000.0  # the embedding's frequencies suit [0, 1000]
        return self.denoiser.build().apply(params.weights["net"], x, times, obs)

    def velocity(self, params: ChunkParams, x: jax.Array, t: jax.Array, d: jax.Array,
                 obs: jax.Array) -> jax.Array:
        """Velocity at time t for a step of size d (d = 0: the instantaneous flow)."""
        out = self._output(params, x, t, d, obs)
        if self.prediction == "sample":
            return (out - x) / _remaining(t)
        return out

    def _regression(self, params, x, t, d, obs, target_velocity):
        """Squared error of the network's output against a target velocity at (x, t), in the
        output's own terms (a sample target is where the velocity leads by t = 1)."""
        out = self._output(params, x, t, d, obs)
        if self.prediction == "sample":
            target = x + _remaining(t) * target_velocity
        else:
            target = target_velocity
        return jnp.mean((out - target) ** 2)

    def loss(self, params: ChunkParams, batch: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """Flow matching on `batch["obs"]` (B, cond), `batch["actions"]` (B, H, A), plus the
        shortcut self-consistency loss on a fraction of the batch."""
        actions, obs = batch["actions"], batch["obs"]
        key_t, key_noise, key_sc = jax.random.split(key, 3)
        t = jax.random.uniform(key_t, actions.shape[:1])
        noise = jax.random.normal(key_noise, actions.shape)
        x_t = (1 - t[:, None, None]) * noise + t[:, None, None] * actions
        flow_mse = self._regression(params, x_t, t, jnp.zeros_like(t), obs, actions - noise)
        info = {"flow/mse": flow_mse}
        if not self.shortcut:
            return flow_mse, info
        n = max(1, int(actions.shape[0] * self.consistency_fraction))
        sc_mse = self._consistency_loss(params, noise[:n], actions[:n], obs[:n], key_sc)
        info["flow/consistency_mse"] = sc_mse
        return flow_mse + sc_mse, info

    def _consistency_loss(self, params, noise, actions, obs, key):
        """One step of size 2d must match two steps of size d (targets not differentiated)."""
        key_level, key_t = jax.random.split(key)
        levels = int(math.log2(self.max_steps))
        # d2 = 2d ranges over 1, 1/2, ..., 2 / max_steps.
        level = jax.random.randint(key_level, actions.shape[:1], 0, levels)
        d2 = 2.0 ** (-level.astype(jnp.float32))
        d = d2 / 2
        # t on the grid of multiples of 2d inside [0, 1 - 2d].
        slots = jnp.round(1.0 / d2).astype(jnp.int32)
        t = jax.random.randint(key_t, actions.shape[:1], 0, slots) * d2
        x_t = (1 - t[:, None, None]) * noise + t[:, None, None] * actions
        small_d = jnp.where(d <= 1.0 / self.max_steps, 0.0, d)  # the finest level is the flow
        sg = jax.lax.stop_gradient
        v1 = sg(self.velocity(params, x_t, t, small_d, obs))
        x_mid = x_t + d[:, None, None] * v1
        v2 = sg(self.velocity(params, x_mid, t + d, small_d, obs))
        target = jnp.clip((v1 + v2) / 2, -4.0, 4.0)
        return self._regression(params, x_t, t, d2, obs, target)

    def noise_spec(self, params: ChunkParams, *, steps: int | None = None
                   ) -> dict[str, NoiseSpec]:
        """The noise one chunk consumes: the initial chunk at t = 0."""
        return {"init": NoiseSpec(params.chunk)}

    def sample(self, params: ChunkParams, obs: jax.Array, key: jax.Array, *,
               steps: int | None = None, clip: bool = True) -> jax.Array:
        """Action chunks (..., H, A) for observations (..., cond) by `steps` Euler steps,
        clipped to [-1, 1] unless `clip` is False (clipping has no gradient outside)."""
        noise = {"init": jax.random.normal(key, obs.shape[:-1] + params.chunk)}
        return self.sample_from_noise(params, obs, noise, steps=steps, clip=clip)

    def sample_from_noise(self, params: ChunkParams, obs: jax.Array, noise: dict, *,
                          steps: int | None = None, clip: bool = True) -> jax.Array:
        """`sample` with its randomness given: `noise` as `noise_spec` says, batched like obs."""
        steps = steps or self.inference_steps
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        x, _ = sampler_scan(lambda x, i: (self.euler_step(params, x, i, steps, obs), None),
                            noise["init"], jnp.arange(steps))
        return jnp.clip(x, -1.0, 1.0) if clip else x

    def euler_step(self, params: ChunkParams, x: jax.Array, i: jax.Array, steps: int,
                   obs: jax.Array) -> jax.Array:
        """Chunks `x` (..., H, A) after Euler step `i` (0 .. steps-1) of `steps`: the
        deterministic part of each transition of the sampling chain."""
        dt = 1.0 / steps
        d = 0.0 if steps >= self.max_steps else dt
        batch = jnp.ones(x.shape[:-2])
        return x + dt * self.velocity(params, x, i * dt * batch, d * batch, obs)


def _remaining(t: jax.Array) -> jax.Array:
    """1 - t, broadcast over the chunk and kept away from 0."""
    return jnp.maximum(1.0 - t, 1e-3)[..., None, None]
