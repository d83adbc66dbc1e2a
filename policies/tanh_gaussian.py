"""Tanh-squashed Gaussian policy with a state-dependent standard deviation: the actor of SAC
and RLPD.

The network outputs a mean and a log std per action dimension; an action is tanh of a Gaussian
draw, so it lies in (-1, 1) (robojax's action convention) and its log density carries the
change-of-variables term of the squash.
"""

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct
from robojax.policies.gaussian import gaussian_log_prob
from robojax.policies.networks import MLP, compiled_init

from robojax.core.types import ArraySpec


@struct.dataclass
class ActorParams:
    """The network's weights and the action size, static (pytree metadata, not an array)."""

    weights: dict
    action_size: int = struct.field(pytree_node=False)


@dataclasses.dataclass(frozen=True)
class TanhGaussianPolicy:
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Widths of the hidden layers."""
    activation: str = "relu"
    """Hidden-layer nonlinearity."""
    log_std_range: tuple[float, float] = (-5.0, 2.0)
    """The log std is squashed into this interval (as SAC's reference implementations)."""

    def _net(self, action_size: int) -> MLP:
        return MLP(self.hidden_sizes, 2 * action_size, self.activation)

    def init(self, key: jax.Array, obs_spec: ArraySpec, act_spec: ArraySpec) -> ActorParams:
        weights = compiled_init(self._net(act_spec.size).init)(key, jnp.zeros(obs_spec.shape))
        return ActorParams(weights, act_spec.size)

    def mean_and_log_std(self, params: ActorParams, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Mean and log std (..., action_size) of the Gaussian before the squash."""
        out = self._net(params.action_size).apply(params.weights, obs)
        mean, raw = jnp.split(out, 2, axis=-1)
        lo, hi = self.log_std_range
        return mean, lo + 0.5 * (hi - lo) * (jnp.tanh(raw) + 1.0)

    def mode(self, params: ActorParams, obs: jax.Array) -> jax.Array:
        """tanh of the mean: the deterministic action eval and export run."""
        return jnp.tanh(self.mean_and_log_std(params, obs)[0])

    def sample_and_log_prob(self, params: ActorParams, obs: jax.Array, key: jax.Array
                            ) -> tuple[jax.Array, jax.Array]:
        """A reparameterized action (differentiable in `params`) and its log density."""
        mean, log_std = self.mean_and_log_std(params, obs)
        u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        return jnp.tanh(u), gaussian_log_prob(mean, log_std, u) - squash_correction(u)

    def sample(self, params: ActorParams, obs: jax.Array, key: jax.Array, *,
               steps: int | None = None) -> jax.Array:
        """A random action; `steps` is accepted for interface parity and unused."""
        return self.sample_and_log_prob(params, obs, key)[0]


def squash_correction(u: jax.Array) -> jax.Array:
    """log |d tanh(u) / du| summed over the last axis, in a form stable for large |u|:
    log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))."""
    return jnp.sum(2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)

