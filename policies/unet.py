"""Denoising networks for action chunks: a 1D temporal conv U-Net with FiLM conditioning (the
architecture of Diffusion Policy's `ConditionalUnet1D`) and a small MLP alternative.

Both map a noisy chunk `x` (..., horizon, action_dim), one or more scalar "times" (..., n) --
the diffusion step, or a flow time and step size -- and a flat conditioning vector (..., cond)
to a tensor shaped like `x`.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def mish(x: jax.Array) -> jax.Array:
    return x * jnp.tanh(jax.nn.softplus(x))


class SinusoidalEmbedding(nn.Module):
    """Transformer-style sin/cos features of a scalar (the diffusion step embedding)."""

    dim: int

    @nn.compact
    def __call__(self, t: jax.Array) -> jax.Array:
        half = self.dim // 2
        freqs = jnp.exp(-jnp.log(10_000.0) * jnp.arange(half) / max(half - 1, 1))
        angles = t[..., None] * freqs
        return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class TimeEncoder(nn.Module):
    """Embed each of the n scalar times and mix them: sinusoid -> Dense -> Mish -> Dense."""

    dim: int

    @nn.compact
    def __call__(self, times: jax.Array) -> jax.Array:
        emb = SinusoidalEmbedding(self.dim)(times)  # (..., n, dim)
        emb = emb.reshape(*emb.shape[:-2], -1)
        return nn.Dense(self.dim)(mish(nn.Dense(self.dim * 4)(emb)))


class Conv1d(nn.Module):
    """1D convolution over (batch, length, channels) as gathered taps times one matrix.

    XLA:CPU's native convolution falls onto a slow path when the kernel is as wide as the
    sequence (a width-5 kernel on the U-Net's length-4 bottleneck ran ~40x slower than this);
    gathering the k shifted copies and multiplying once is fast on every backend.
    `stride` 2 keeps every second output (the U-Net's downsampling).
    """

    features: int
    kernel_size: int
    stride: int = 1
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        length, k = x.shape[-2], self.kernel_size
        left = (k - 1) // 2
        padded = jnp.pad(x, ((0, 0), (left, k - 1 - left), (0, 0)))
        taps = jnp.concatenate([padded[:, i:i + length] for i in range(k)], axis=-1)
        out = nn.Dense(self.features, kernel_init=self.kernel_init)(taps)
        return out[:, ::self.stride]


def upsample1d(x: jax.Array) -> jax.Array:
    """Double the length by inserting zeros between steps (a transposed conv follows)."""
    zeros = jnp.zeros_like(x)
    return jnp.stack([x, zeros], axis=2).reshape(x.shape[0], 2 * x.shape[1], x.shape[2])


class Conv1dBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish over (batch, length, channels)."""

    features: int
    kernel_size: int
    groups: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = Conv1d(self.features, self.kernel_size)(x)
        return mish(nn.GroupNorm(num_groups=self.groups)(x))


class ConditionalResidualBlock1D(nn.Module):
    """Two conv blocks; the conditioning sets a per-channel scale and bias between them (FiLM)."""

    features: int
    kernel_size: int
    groups: int

    @nn.compact
    def __call__(self, x: jax.Array, cond: jax.Array) -> jax.Array:
        out = Conv1dBlock(self.features, self.kernel_size, self.groups)(x)
        film = nn.Dense(2 * self.features)(mish(cond))[:, None, :]
        scale, bias = jnp.split(film, 2, axis=-1)
        out = Conv1dBlock(self.features, self.kernel_size, self.groups)(scale * out + bias)
        residual = x if x.shape[-1] == self.features else nn.Dense(self.features)(x)
        return out + residual


class ConditionalUnet1D(nn.Module):
    """U-Net over the time axis of an action chunk, conditioned on times and observations.

    The horizon must be divisible by 2 ** (len(down_dims) - 1).
    """

    down_dims: Sequence[int] = (64, 128, 256)
    kernel_size: int = 5
    groups: int = 8
    time_dim: int = 64

    @nn.compact
    def __call__(self, x: jax.Array, times: jax.Array, cond: jax.Array) -> jax.Array:
        batch_shape, (horizon, action_dim) = x.shape[:-2], x.shape[-2:]
        x = x.reshape(-1, horizon, action_dim)
        times = times.reshape(x.shape[0], -1)
        cond = jnp.concatenate([TimeEncoder(self.time_dim)(times),
                                cond.reshape(x.shape[0], -1)], axis=-1)
        block = lambda features: ConditionalResidualBlock1D(features, self.kernel_size,
                                                             self.groups)
        skips = []
        for i, dim in enumerate(self.down_dims):
            x = block(dim)(x, cond)
            x = block(dim)(x, cond)
            skips.append(x)
            if i < len(self.down_dims) - 1:
                x = Conv1d(dim, 3, stride=2)(x)
        for _ in range(2):
            x = block(self.down_dims[-1])(x, cond)
        # As in Diffusion Policy, the up path consumes the skips of the lower levels only.
        for dim in reversed(self.down_dims[:-1]):
            x = jnp.concatenate([x, skips.pop()], axis=-1)
            x = block(dim)(x, cond)
            x = block(dim)(x, cond)
            x = Conv1d(dim, 4)(upsample1d(x))  # a stride-2 transposed conv, kernel 4
        x = Conv1dBlock(self.down_dims[0], self.kernel_size, self.groups)(x)
        x = nn.Dense(action_dim, kernel_init=nn.initializers.zeros)(x)
        return x.reshape(*batch_shape, horizon, action_dim)


class DenoiserMLP(nn.Module):
    """The small alternative: an MLP over the flattened chunk, time features and conditioning."""

    hidden_sizes: Sequence[int] = (256, 256, 256)
    time_dim: int = 64

    @nn.compact
    def __call__(self, x: jax.Array, times: jax.Array, cond: jax.Array) -> jax.Array:
        chunk_shape = x.shape[-2:]
        h = jnp.concatenate([x.reshape(*x.shape[:-2], -1), TimeEncoder(self.time_dim)(times),
                             cond], axis=-1)
        for size in self.hidden_sizes:
            h = mish(nn.Dense(size)(h))
        out = nn.Dense(chunk_shape[0] * chunk_shape[1], kernel_init=nn.initializers.zeros)(h)
        return out.reshape(*x.shape[:-2], *chunk_shape)
