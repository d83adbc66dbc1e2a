"""Policy composition at sampling time ("Compose Your Policies", Cao et al. 2025): two trained
policies of one generative family drive one sampler, their networks' outputs mixed by a convex
weight at every step, with no retraining.

Both families' steps are affine in the network output (a flow's velocity in its predicted
chunk, a DDIM or DDPM step in its predicted clean chunk or noise), so mixing the outputs mixes
the velocity fields or denoisers. Each network keeps its own conditioning: the composed policy
takes both observation encodings side by side, `concat(cond_first, cond_second)`.
"""

import dataclasses

import jax
from robojax.policies.diffusion import ChunkParams, DenoiserConfig, DiffusionPolicy
from robojax.policies.flow import FlowPolicy


@dataclasses.dataclass(frozen=True)
class _MixedNetwork:
    first: object
    second: object
    weight: float
    first_cond: int

    def apply(self, weights: dict, x: jax.Array, times: jax.Array, obs: jax.Array) -> jax.Array:
        cond_first, cond_second = obs[..., :self.first_cond], obs[..., self.first_cond:]
        out_first = self.first.apply(weights["first"], x, times, cond_first)
        out_second = self.second.apply(weights["second"], x, times, cond_second)
        return self.weight * out_first + (1.0 - self.weight) * out_second


@dataclasses.dataclass(frozen=True)
class MixedDenoiser:
    """Stands in for a `DenoiserConfig`: builds the weighted mix of two denoisers."""

    first: DenoiserConfig
    second: DenoiserConfig
    weight: float
    first_cond: int
    """Size of the first network's conditioning at the front of the composed one."""

    def build(self) -> _MixedNetwork:
        return _MixedNetwork(self.first.build(), self.second.build(), self.weight,
                             self.first_cond)


def compose(first, first_params: ChunkParams, second, second_params: ChunkParams,
            weight: float, first_cond: int):
    """The policy (first's sampler settings) and params of `weight * first + (1 - weight) *
    second`; its observations are `concat(cond_first, cond_second)` with `first_cond` values
    of the first."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the composition weight must lie in [0, 1], got {weight}.")
    if type(first) is not type(second) or not isinstance(first, FlowPolicy | DiffusionPolicy):
        raise ValueError(f"composition mixes two diffusion or two flow policies; got "
                         f"{type(first).__name__} and {type(second).__name__}.")
    same = ("prediction",) + (("num_train_steps",) if isinstance(first, DiffusionPolicy) else
                              ("shortcut", "max_steps"))
    differ = [f for f in same if getattr(first, f) != getattr(second, f)]
    if differ:
        raise ValueError(f"the two policies' outputs mean different things: they differ in "
                         f"{', '.join(differ)}; compose policies trained with the same "
                         f"{', '.join(same)}.")
    if first_params.chunk != second_params.chunk:
        raise ValueError(f"the two policies draw chunks of different shapes "
                         f"{first_params.chunk} and {second_params.chunk}.")
    mixed = MixedDenoiser(first.denoiser, second.denoiser, float(weight), first_cond)
    params = ChunkParams({"net": {"first": first_params.weights["net"],
                                  "second": second_params.weights["net"]}}, first_params.chunk)
    return dataclasses.replace(first, denoiser=mixed), params
