"""Q-function ensembles for off-policy learners: E critics as one vmapped network, with a
scalar head trained by squared error or an HL-Gauss head trained by cross-entropy.

HL-Gauss ("Stop Regressing", Farebrother et al. 2024) represents a value as a categorical
distribution over `num_bins` bins spanning a fixed range. A scalar target y becomes the
histogram of N(y, sigma^2) over the bins (sigma = `sigma_ratio` bin widths), the critic is
trained by cross-entropy against it, and its value is the expectation over the bin centres.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from robojax.policies.networks import MLP, compiled_init

KINDS = ("mse", "hl_gauss")


class QNetwork(nn.Module):
    """Q(obs, action): an MLP on their concatenation, `out_size` outputs (1 or the bins)."""

    hidden_sizes: tuple[int, ...]
    out_size: int
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, action], axis=-1)
        return MLP(self.hidden_sizes, self.out_size, self.activation,
                   layer_norm=self.layer_norm)(x)


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """`num_critics` Q networks of one architecture; `kind` picks the head and its loss."""

    kind: str = "mse"
    num_critics: int = 2
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False
    num_bins: int = 101
    value_range: tuple[float, float] = (0.0, 100.0)
    sigma_ratio: float = 0.75

    def _net(self) -> QNetwork:
        out = self.num_bins if self.kind == "hl_gauss" else 1
        return QNetwork(self.hidden_sizes, out, self.activation, self.layer_norm)

    def init(self, key: jax.Array, obs: jax.Array, action: jax.Array) -> dict:
        """Stacked parameters (leading axis: critic) for one observation and action."""
        keys = jax.random.split(key, self.num_critics)
        return compiled_init(jax.vmap(lambda k: self._net().init(k, obs, action)))(keys)

    def outputs(self, params: dict, obs: jax.Array, action: jax.Array) -> jax.Array:
        """Every critic's raw head output (E, ..., 1 or num_bins)."""
        return jax.vmap(self._net().apply, in_axes=(0, None, None))(params, obs, action)

    def values(self, params: dict, obs: jax.Array, action: jax.Array) -> jax.Array:
        """Every critic's Q value (E, ...)."""
        return self.values_of(self.outputs(params, obs, action))

    def values_of(self, outputs: jax.Array) -> jax.Array:
        if self.kind == "hl_gauss":
            return expected_value(outputs, self.support()[1])
        return outputs[..., 0]

    def loss(self, outputs: jax.Array, target: jax.Array) -> jax.Array:
        """Summed over critics, averaged over the batch: 0.5 squared error, or cross-entropy
        against the target's HL-Gauss histogram."""
        if self.kind == "hl_gauss":
            edges, _ = self.support()
            histogram = hl_gauss_histogram(target, edges, self.sigma_ratio * _width(edges))
            ce = -jnp.sum(histogram * jax.nn.log_softmax(outputs, axis=-1), axis=-1)
            return jnp.sum(jnp.mean(ce, axis=-1))
        return jnp.sum(0.5 * jnp.mean((outputs[..., 0] - target) ** 2, axis=-1))

    def support(self) -> tuple[np.ndarray, np.ndarray]:
        """Bin edges (num_bins + 1) and centres (num_bins) over `value_range`."""
        return hl_gauss_support(*self.value_range, self.num_bins)

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"critic must be one of {KINDS}, got {self.kind!r}.")
        if self.num_critics < 1:
            raise ValueError(f"num_critics must be >= 1, got {self.num_critics}.")
        lo, hi = self.value_range
        if self.kind == "hl_gauss" and (hi <= lo or self.num_bins < 2):
            raise ValueError(f"HL-Gauss needs value_range (low, high) with low < high and "
                             f">= 2 bins, got {self.value_range} and {self.num_bins}.")


def _width(edges: np.ndarray) -> float:
    return float(edges[1] - edges[0])


def hl_gauss_support(low: float, high: float, num_bins: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.linspace(low, high, num_bins + 1, dtype=np.float32)
    return edges, (edges[:-1] + edges[1:]) / 2


def hl_gauss_histogram(target: jax.Array, edges: np.ndarray, sigma: float) -> jax.Array:
    """The probability N(target, sigma^2) puts in each bin, renormalized to the support
    (..., num_bins); targets outside the range are clipped into it first."""
    y = jnp.clip(target, edges[0], edges[-1])[..., None]
    cdf = jax.scipy.special.erf((jnp.asarray(edges) - y) / (np.sqrt(2.0) * sigma))
    mass = cdf[..., 1:] - cdf[..., :-1]
    return mass / (cdf[..., -1:] - cdf[..., :1])


def expected_value(logits: jax.Array, centers: np.ndarray) -> jax.Array:
    """The value of a categorical head: the mean bin centre under softmax(logits)."""
    return jnp.sum(jax.nn.softmax(logits, axis=-1) * jnp.asarray(centers), axis=-1)
