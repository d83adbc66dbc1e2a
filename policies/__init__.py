"""Policy families behind one interface: `init(key, obs_spec, act_spec) -> params`,
`sample(params, obs, key, *, steps=None) -> action`, `loss(params, batch, key)`, `log_prob`.
The generative families' params are a `ChunkParams`: their weights and the static chunk shape."""

import difflib

from robojax.policies.diffusion import ChunkParams, DiffusionPolicy
from robojax.policies.energy import EnergyPolicy
from robojax.policies.flow import FlowPolicy
from robojax.policies.gaussian import GaussianPolicy

_FAMILIES = {"gaussian": GaussianPolicy, "diffusion": DiffusionPolicy, "flow": FlowPolicy,
             "energy": EnergyPolicy}


def names() -> list[str]:
    return sorted(_FAMILIES)


def make(name: str, **config):
    """Build the policy family `name` with its config fields overridden by `config`."""
    if name not in _FAMILIES:
        close = difflib.get_close_matches(name, _FAMILIES, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"unknown policy {name!r}.{hint} Available: {', '.join(names())}.")
    return _FAMILIES[name](**config)


__all__ = ["ChunkParams", "DiffusionPolicy", "EnergyPolicy", "FlowPolicy", "GaussianPolicy", "make",
           "names"]
