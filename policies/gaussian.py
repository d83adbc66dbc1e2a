"""Gaussian policy: an MLP mean with a learned state-independent log standard deviation.

The unimodal baseline of the policy families and the actor of PPO. Follows the common policy
interface: `init`, `sample`, `log_prob`, `loss` (behaviour cloning by MSE on the mean).
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
from robojax.policies.networks import MLP, compiled_init

from robojax.core.types import ArraySpec

_LOG_2PI = math.log(2 * math.pi)


@dataclasses.dataclass(frozen=True)
class GaussianPolicy:
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Widths of the mean network's hidden layers."""
    activation: str = "tanh"
    """Hidden-layer nonlinearity."""
    init_log_std: float = -0.5
    """Initial log standard deviation of every action dimension."""
    max_log_std: float | None = None
    """Upper bound on the log standard deviation (None: unbounded). Actions are clipped to
    [-1, 1], so a std beyond ~1 changes nothing the env sees while an entropy bonus keeps
    paying for it: 0.0 stops it growing there."""

    def _net(self, action_size: int) -> MLP:
        return MLP(self.hidden_sizes, action_size, self.activation, out_scale=0.01)

    def init(self, key: jax.Array, obs_spec: ArraySpec, act_spec: ArraySpec) -> dict:
        """Fresh parameters for observations and actions of the given specs."""
        net = self._net(act_spec.size)
        params = compiled_init(net.init)(key, jnp.zeros(obs_spec.shape))
        return {"net": params, "log_std": jnp.full(act_spec.shape, self.init_log_std,
                                                     jnp.float32)}

    def mean_and_log_std(self, params: dict, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Mean and log std shaped (..., *action shape): a single action or an action chunk."""
        shape = params["log_std"].shape
        mean = self._net(params["log_std"].size).apply(params["net"], obs)
        mean = mean.reshape(*mean.shape[:-1], *shape)
        log_std = params["log_std"]
        if self.max_log_std is not None:
            log_std = jnp.minimum(log_std, self.max_log_std)
        return mean, jnp.broadcast_to(log_std, mean.shape)

    def mode(self, params: dict, obs: jax.Array) -> jax.Array:
        """The most likely action (the mean): what a deployed policy executes."""
        return self.mean_and_log_std(params, obs)[0]

    def sample(self, params: dict, obs: jax.Array, key: jax.Array, *,
               steps: int | None = None) -> jax.Array:
        """A random action; `steps` is accepted for interface parity and unused."""
        mean, log_std = self.mean_and_log_std(params, obs)
        return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)

    def log_prob(self, params: dict, obs: jax.Array, action: jax.Array) -> jax.Array:
        mean, log_std = self.mean_and_log_std(params, obs)
        log_p = gaussian_log_prob(mean, log_std, action)
        return _sum_trailing(log_p, params["log_std"].ndim - 1)

    def entropy(self, params: dict, obs: jax.Array) -> jax.Array:
        _, log_std = self.mean_and_log_std(params, obs)
        entropy = jnp.sum(log_std + 0.5 * (1.0 + _LOG_2PI), axis=-1)
        return _sum_trailing(entropy, params["log_std"].ndim - 1)

    def loss(self, params: dict, batch: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """Behaviour cloning: mean squared error of the mean on `batch["obs"]/["actions"]`."""
        mean = self.mode(params, batch["obs"])
        mse = jnp.mean((mean - batch["actions"]) ** 2)
        return mse, {"bc/mse": mse}


@dataclasses.dataclass(frozen=True)
class MirroredGaussian(GaussianPolicy):
    """A Gaussian policy equivariant under a mirror symmetry of its task.

    Its input stacks an input and that input's mirror image on axis -2. The mean averages the
    network on the first with the mirror image of the network on the second (and the log std
    with its own mirror image), so mirrored inputs get exactly mirrored action distributions:
    nothing the network learns can favour one side of a symmetric task over the other.
    """

    action_map: tuple[tuple[float, ...], ...] = ()
    """The reflection of actions, a signed permutation (one +-1 per row), so that it maps a
    diagonal Gaussian to a diagonal Gaussian."""

    def mean_and_log_std(self, params: dict, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Mean and log std (..., action_size) of inputs (..., 2, input_size): an input and its
        mirror image."""
        mean, log_std = super().mean_and_log_std(params, obs)
        mirror = jnp.asarray(self.action_map, mean.dtype)
        return (0.5 * (mean[..., 0, :] + mean[..., 1, :] @ mirror.T),
                0.5 * (log_std[..., 0, :] + log_std[..., 1, :] @ jnp.abs(mirror).T))


def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, x: jax.Array) -> jax.Array:
    """Log density of a diagonal Gaussian, summed over the last axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * _LOG_2PI, axis=-1)


def _sum_trailing(x: jax.Array, n: int) -> jax.Array:
    return jnp.sum(x, axis=tuple(range(-n, 0))) if n else x
