"""Energy-based policy: an energy E(obs, action chunk), low on demonstrated chunks.

Training (IBC's InfoNCE): the demonstrated chunk must have the lowest energy among
counter-examples -- random chunks over the action box and perturbed copies of the chunk itself,
which shape the basin around it. Random chunks (counter-examples and inference proposals alike)
are piecewise linear through `proposal_knots` uniform knots: a demonstrated chunk is smooth in
time, and among chunks whose every entry is drawn independently none comes near one once the
chunk has a few dozen entries. A second term trains the EBT-style refinement: a few steps of
gradient descent on the energy, with a learned step size, must carry a perturbed chunk back to
the demonstration (the loss differentiates through the descent).

Inference, chosen by `inference`:
- "descent" (EBT-Policy style): the lowest-energy of `num_proposals` uniform proposals, then
  `steps` learned-step descent steps; stops early once the energy stops changing (dynamic
  compute) and returns the final energy as an uncertainty signal (`sample_with_energy`).
- "dfo": IBC's derivative-free optimizer (resample by softmax of -E, add shrinking noise).
- "langevin": IBC's Langevin MCMC on the energy from the best proposal, shrinking step size.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from robojax.policies.diffusion import ChunkParams, chunk_params
from robojax.policies.networks import compiled_init
from robojax.policies.unet import mish

from robojax.core.program import NoiseSpec, sampler_while
from robojax.core.types import ArraySpec


def _interpolation(horizon: int, knots: int) -> np.ndarray:
    """(horizon, knots) weights of linear interpolation between knots spread over the horizon."""
    position = np.linspace(0.0, knots - 1, horizon)
    return np.maximum(0.0, 1.0 - np.abs(position[:, None] - np.arange(knots))).astype(np.float32)


def _through_knots(values: jax.Array, horizon: int) -> jax.Array:
    """(..., K, A) knot values -> (..., horizon, A): the piecewise-linear curve through them."""
    return jnp.matmul(_interpolation(horizon, values.shape[-2]), values)  # (H, K) @ (..., K, A)


def _resample(key: jax.Array, logits: jax.Array) -> jax.Array:
    """(..., P) indices drawn independently from softmax(logits) over the last axis, by
    inverting its cumulative sum: a binary search per draw, where `jax.random.categorical`
    with P draws needs P x P Gumbel variates."""
    cdf = jnp.cumsum(jax.nn.softmax(logits, axis=-1), axis=-1)
    u = jax.random.uniform(key, logits.shape) * cdf[..., -1:]
    search = lambda c, v: jnp.searchsorted(c, v, side="right", method="scan_unrolled")
    flat = jax.vmap(search)(cdf.reshape(-1, cdf.shape[-1]), u.reshape(-1, u.shape[-1]))
    return jnp.minimum(flat.reshape(logits.shape), logits.shape[-1] - 1)


class EnergyMLP(nn.Module):
    hidden_sizes: tuple[int, ...]

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        h = jnp.concatenate([obs, action], axis=-1)
        for size in self.hidden_sizes:
            h = mish(nn.Dense(size)(h))
        return nn.Dense(1)(h)[..., 0]


def _apply_mlp(variables: dict, obs: jax.Array, action: jax.Array) -> jax.Array:
    """`EnergyMLP.apply` on (obs, action) broadcast against each other, e.g. one observation
    (..., 1, cond) against many candidates (..., P, K * A).

    The first layer is split into its observation and action rows, so the observation's part
    is computed once, not once per candidate. Written with plain ops rather than flax's Dense:
    inference differentiates the energy, and exporters that stand their own graphs in for flax
    layers (jax2onnx) give those no gradient.
    """
    layers = variables["params"]
    first = layers["Dense_0"]
    n = obs.shape[-1]
    h = _matmul(obs, first["kernel"][:n]) + _matmul(action, first["kernel"][n:]) + first["bias"]
    candidates = h.shape[:-1]
    h = h.reshape(-1, h.shape[-1])  # the other layers on one 2D batch of rows
    for i in range(1, len(layers)):
        h = mish(h) @ layers[f"Dense_{i}"]["kernel"] + layers[f"Dense_{i}"]["bias"]
    return h.reshape(candidates)


def _matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """x (..., n) @ kernel (n, m) as one 2D multiply, the same to XLA. Converted to ONNX, a
    multiply with leading dimensions is an Einsum, which ONNX Runtime runs ~4x slower than the
    Gemm a 2D one is (and so is its gradient, inside the descent)."""
    return (x.reshape(-1, x.shape[-1]) @ kernel).reshape(*x.shape[:-1], kernel.shape[-1])


@dataclasses.dataclass(frozen=True)
class EnergyPolicy:
    hidden_sizes: tuple[int, ...] = (256, 256, 256)
    """Widths of the energy MLP over (observation, flattened chunk)."""
    num_negatives: int = 128
    """Counter-examples per demonstration in the InfoNCE loss (half uniform, half perturbed)."""
    negative_noise: tuple[float, float] = (0.05, 0.5)
    """Range of the noise scale of the perturbed counter-examples."""
    inferred_negatives: int = 16
    """Extra counter-examples found by the model's own inference (IBC's MCMC negatives): the
    lowest-energy of `num_proposals` random chunks, each descended `inference_steps` times
    with the current (frozen) energy. They raise the spurious minima inference would land in,
    which random and perturbed chunks rarely reach once a chunk has dozens of entries (detour:
    0.06 -> 0.48 success with 2 descent steps, experiments/bench/RESULTS.md); 0 turns them off
    (training is then ~3x cheaper per step)."""
    latent_knots: int = 0
    """Score chunks through this many knots per action dimension instead of entry by entry:
    the energy sees a chunk's least-squares fit by a piecewise-linear curve through the knots,
    inference searches over the knots and returns the curve (0: score the full chunk)."""
    temperature: float = 1.0
    """Softmax temperature of InfoNCE and DFO resampling."""
    refine_weight: float = 10.0
    """Weight of the learned-descent refinement loss. InfoNCE alone makes the basin around a
    demonstration steep but not a good descent target; weighted 10 (from 1) the refinement
    carries a perturbed chunk 4x closer to the demonstration (detour: squared error 0.0075
    instead of 0.031) and success rises (seed 0: 0.81 instead of 0.53-0.75 with 8 steps)."""
    refine_noise: float = 0.2
    """Noise scale of the perturbed chunks the refinement learns to denoise."""
    inference: str = "descent"
    """"descent" (proposal + learned-step descent), "dfo" or "langevin"."""
    inference_steps: int = 2
    """Descent steps ("descent"), resampling rounds ("dfo") or MCMC steps ("langevin")."""
    num_proposals: int = 256
    """Random candidate chunks drawn per observation."""
    descent_starts: int = 8
    """"descent" descends this many of the lowest-energy proposals side by side and draws
    one of them by its energy, p ~ exp(-E / temperature). The single best proposal often sits
    in a shallow basin that its descent cannot leave (detour, 3 seeds, 8 descent steps: 1 start
    0.83 success, 8 starts 0.99; experiments/bench/RESULTS.md, section 3)."""
    proposal_knots: int = 3
    """Random chunks are piecewise linear through this many uniform knots spread over the
    horizon (0, or at least the horizon: every entry independent, IBC's single-action case)."""
    converged_tol: float = 1e-3
    """"descent" stops early once every energy changed by less than this in a step."""
    dfo_noise: float = 0.33
    """Initial resampling noise of DFO (IBC's default), halved each round."""
    langevin_step: float = 0.2
    """Initial Langevin step size, decayed geometrically to 1% of it."""
    langevin_noise: float = 0.5
    """Langevin noise relative to the (clipped) energy gradient."""

    def __post_init__(self):
        if self.descent_starts < 1 or self.descent_starts > self.num_proposals:
            raise ValueError(f"descent_starts must be in 1..num_proposals "
                             f"({self.num_proposals}), got {self.descent_starts}")
        if self.inference not in ("descent", "dfo", "langevin"):
            raise ValueError(f"inference must be 'descent', 'dfo' or 'langevin', got "
                             f"{self.inference!r}")

    def _net(self) -> EnergyMLP:
        return EnergyMLP(self.hidden_sizes)

    def init(self, key: jax.Array, obs_spec: ArraySpec, act_spec: ArraySpec) -> ChunkParams:
        if len(act_spec.shape) != 2:
            raise ValueError(f"the energy policy scores action chunks: the action spec must be "
                             f"(horizon, action_dim), got {act_spec.shape}.")
        latent = self._latent_size(act_spec.shape[0]) * act_spec.shape[1]
        net = compiled_init(self._net().init)(key, jnp.zeros((1, obs_spec.size)),
                                              jnp.zeros((1, latent)))
        return chunk_params({"net": net, "log_step": jnp.log(jnp.float32(0.1))}, act_spec)

    def _latent_size(self, horizon: int) -> int:
        return self.latent_knots or horizon

    def _latent_shape(self, params: ChunkParams) -> tuple[int, int]:
        horizon, action_dim = params.chunk
        return self._latent_size(horizon), action_dim

    def _encode(self, chunk: jax.Array) -> jax.Array:
        """(..., H, A) chunks -> (..., K, A) latents (their least-squares knots)."""
        if not self.latent_knots:
            return chunk
        fit = np.linalg.pinv(_interpolation(chunk.shape[-2], self.latent_knots))
        return jnp.clip(jnp.einsum("kh,...ha->...ka", fit, chunk), -1.0, 1.0)

    def _decode(self, z: jax.Array, horizon: int) -> jax.Array:
        return _through_knots(z, horizon) if self.latent_knots else z

    def energy(self, params: ChunkParams, obs: jax.Array, chunk: jax.Array) -> jax.Array:
        """E(obs, chunk) for obs (..., cond) and chunks (..., H, A) -> (...)."""
        return self._energy(params, obs, self._encode(chunk))

    def _energy(self, params: ChunkParams, obs: jax.Array, z: jax.Array) -> jax.Array:
        """E over latents (..., K, A) (the chunks themselves unless `latent_knots`)."""
        flat = z.reshape(*z.shape[:-2], -1)
        return _apply_mlp(params.weights["net"], obs, flat)

    def _grad_energy(self, params, obs, x):
        return jax.grad(lambda x: jnp.sum(self._energy(params, obs, x)))(x)

    def _descend(self, params, obs, x):
        step = jnp.exp(params.weights["log_step"])
        return jnp.clip(x - step * self._grad_energy(params, obs, x), -1.0, 1.0)

    def loss(self, params: ChunkParams, batch: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """InfoNCE over counter-examples plus the refinement loss, on `batch["obs"]` (B, cond)
        and `batch["actions"]` (B, H, A)."""
        actions, obs = self._encode(batch["actions"]), batch["obs"]
        key_uniform, key_scale, key_noise, key_refine = jax.random.split(key, 4)
        b, n = actions.shape[0], self.num_negatives
        uniform = self._random_chunks(key_uniform, (b, n - n // 2, *actions.shape[1:]))
        lo, hi = self.negative_noise
        scale = jax.random.uniform(key_scale, (b, n // 2, 1, 1), minval=lo, maxval=hi)
        perturbed = jnp.clip(actions[:, None] + scale * jax.random.normal(
            key_noise, (b, n // 2, *actions.shape[1:])), -1.0, 1.0)
        candidates = [actions[:, None], uniform, perturbed]
        if self.inferred_negatives:
            candidates.append(self._inferred(params, obs, key_uniform))
        candidates = jnp.concatenate(candidates, axis=1)
        energies = self._energy(params, obs[:, None], candidates)  # (B, 1 + n)
        log_probs = jax.nn.log_softmax(-energies / self.temperature, axis=-1)
        info_nce = -jnp.mean(log_probs[:, 0])

        x = jnp.clip(actions + self.refine_noise * jax.random.normal(key_refine, actions.shape),
                     -1.0, 1.0)
        for _ in range(self.inference_steps):
            x = self._descend(params, obs, x)
        refine = jnp.mean((x - actions) ** 2)
        info = {"energy/info_nce": info_nce, "energy/refine_mse": refine,
                "energy/accuracy": jnp.mean(jnp.argmax(log_probs, axis=-1) == 0),
                "energy/step_size": jnp.exp(params.weights["log_step"])}
        return info_nce + self.refine_weight * refine, info

    def _inferred(self, params: ChunkParams, obs: jax.Array, key: jax.Array) -> jax.Array:
        """(B, inferred_negatives, K, A) latents: the best random proposals after descent."""
        x, energies = self._proposals(params, obs, jax.random.fold_in(key, 1))
        _, index = jax.lax.top_k(-energies, self.inferred_negatives)
        x = jnp.take_along_axis(x, index[..., None, None], axis=-3)
        for _ in range(self.inference_steps):
            x = self._descend(params, obs[:, None], x)
        return jax.lax.stop_gradient(x)

    def _knot_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of the uniform draws behind random chunks of `shape` (..., H, A)."""
        knots = self.proposal_knots
        if knots == 0 or knots >= shape[-2]:
            return shape
        return (*shape[:-2], knots, shape[-1])

    def _random_chunks(self, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        """Chunks of `shape` (..., H, A) in [-1, 1], piecewise linear through uniform knots."""
        values = jax.random.uniform(key, self._knot_shape(shape), minval=-1.0, maxval=1.0)
        return self._chunks_through(values, shape[-2])

    def _chunks_through(self, values: jax.Array, horizon: int) -> jax.Array:
        return values if values.shape[-2] == horizon else _through_knots(values, horizon)

    def _proposals(self, params, obs, key):
        """(..., P, H, A) random candidates and their energies."""
        shape = obs.shape[:-1] + (self.num_proposals, *self._latent_shape(params))
        return self._scored(params, obs, self._random_chunks(key, shape))

    def _scored(self, params, obs, x):
        return x, self._energy(params, obs[..., None, :], x)

    def _best(self, x, energies):
        index = jnp.argmin(energies, axis=-1)
        pick = lambda a: jnp.take_along_axis(a, index[..., None, None, None], axis=-3)[..., 0, :, :]
        return pick(x)

    def sample_with_energy(self, params: ChunkParams, obs: jax.Array, key: jax.Array, *,
                           steps: int | None = None) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(chunks (..., H, A), their energies (...), steps taken) with the configured
        inference; the energy is an uncertainty signal (high = unfamiliar)."""
        steps = self.inference_steps if steps is None else steps
        horizon = params.chunk[0]
        if self.inference == "dfo":
            x = self._dfo(params, obs, key, steps)
        elif self.inference == "langevin":
            x = self._langevin(params, obs, key, steps)
        else:
            x, energy, taken = self._descent(params, obs, key, steps)
            return self._decode(x, horizon), energy, taken
        return self._decode(x, horizon), self._energy(params, obs, x), jnp.asarray(steps)

    def sample(self, params: ChunkParams, obs: jax.Array, key: jax.Array, *,
               steps: int | None = None) -> jax.Array:
        """Action chunks (..., H, A) for observations (..., cond)."""
        return self.sample_with_energy(params, obs, key, steps=steps)[0]

    def noise_spec(self, params: ChunkParams, *, steps: int | None = None
                   ) -> dict[str, NoiseSpec]:
        """The noise one chunk consumes with "descent" inference: the uniform knots of the
        proposals and the Gumbel noise that picks one descended start."""
        if self.inference != "descent":
            raise ValueError(f"only the energy policy's 'descent' inference takes its noise as "
                             f"an input; this policy uses {self.inference!r}. Export it with "
                             "inference='descent' (`--energy.inference descent`).")
        shape = (self.num_proposals, *self._latent_shape(params))
        return {"proposals": NoiseSpec(self._knot_shape(shape), "uniform"),
                "pick": NoiseSpec((self.descent_starts,), "gumbel")}

    def sample_from_noise(self, params: ChunkParams, obs: jax.Array, noise: dict, *,
                          steps: int | None = None) -> jax.Array:
        """"descent" sampling with its randomness given (`noise_spec`), batched like obs."""
        self.noise_spec(params)  # names the fix for the other inference modes
        steps = self.inference_steps if steps is None else steps
        x = self._chunks_through(noise["proposals"], self._latent_shape(params)[0])
        x, _, _ = self._descend_starts(params, obs, *self._scored(params, obs, x), steps,
                                       noise["pick"])
        return self._decode(x, params.chunk[0])

    def _descent(self, params, obs, key, max_steps):
        x, energies = self._proposals(params, obs, key)
        pick = jax.random.gumbel(jax.random.fold_in(key, 2),
                                 (*energies.shape[:-1], self.descent_starts))
        return self._descend_starts(params, obs, x, energies, max_steps, pick)

    def _descend_starts(self, params, obs, x, energies, max_steps, gumbel):
        energies, index = jax.lax.top_k(-energies, self.descent_starts)
        x = jnp.take_along_axis(x, index[..., None, None], axis=-3)  # (..., S, K, A)
        energy = -energies

        def not_converged(carry):
            _, _, change, i, _ = carry
            return (i < max_steps) & (jnp.max(change) >= self.converged_tol)

        def descend(carry):
            x, energy, _, i, obs = carry
            x = self._descend(params, obs, x)
            new = self._energy(params, obs, x)
            return x, new, jnp.abs(new - energy), i + 1, obs

        # The observation rides in the carry: loop bodies that close over batch-sized arrays
        # lose the batch dimension in ONNX conversion (as a Loop node, `--no-unroll-sampler`).
        init = (x, energy, jnp.full_like(energy, jnp.inf), jnp.asarray(0), obs[..., None, :])
        x, energy, _, taken, _ = sampler_while(not_converged, descend, init, max_steps)
        # The model's own distribution over the descended starts, p ~ exp(-E / temperature),
        # drawn by the Gumbel-max trick: the best proposal most of the time, yet every mode as
        # often as the energy says (the lowest energy alone would always take the deeper mode).
        index = jnp.argmax(gumbel - energy / self.temperature, axis=-1)
        pick = lambda a: jnp.take_along_axis(a, index[..., None], axis=-1)[..., 0]
        x = jnp.take_along_axis(x, index[..., None, None, None], axis=-3)[..., 0, :, :]
        return x, pick(energy), taken

    def _dfo(self, params, obs, key, rounds):
        key_init, key_rounds = jax.random.split(key)
        x, energies = self._proposals(params, obs, key_init)

        def resample(carry, inputs):
            x, energies = carry
            key, noise_scale = inputs
            key_pick, key_noise = jax.random.split(key)
            index = _resample(key_pick, -energies / self.temperature)
            x = jnp.take_along_axis(x, index[..., None, None], axis=-3)
            x = jnp.clip(x + noise_scale * jax.random.normal(key_noise, x.shape), -1.0, 1.0)
            return (x, self._energy(params, obs[..., None, :], x)), None

        scales = self.dfo_noise * 0.5 ** jnp.arange(rounds)
        (x, energies), _ = jax.lax.scan(resample, (x, energies),
                                        (jax.random.split(key_rounds, rounds), scales))
        return self._best(x, energies)

    def _langevin(self, params, obs, key, num_steps):
        key_init, key_steps = jax.random.split(key)
        x = self._best(*self._proposals(params, obs, key_init))
        decay = 0.01 ** (jnp.arange(num_steps) / max(num_steps - 1, 1))

        def mcmc(x, inputs):
            key, scale = inputs
            step = self.langevin_step * scale
            grad = jnp.clip(self._grad_energy(params, obs, x), -1.0, 1.0)  # as IBC clips
            noise = jax.random.normal(key, x.shape)
            return jnp.clip(x - step * (grad + self.langevin_noise * noise), -1.0, 1.0), None

        x, _ = jax.lax.scan(mcmc, x, (jax.random.split(key_steps, num_steps), decay))
        return x
