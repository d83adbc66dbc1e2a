"""Training algorithms, registered by name. Each is one module meeting the contract in
`robojax.algos.base`; adding one is a new module plus one line in `_ALGOS`, and `robojax
train --algo NAME` with its `--NAME.<field>` flags picks it up. An entry `module:ConfigClass`
registers a preset: the module's algorithm with another config class (its defaults)."""

import difflib
import importlib
from types import ModuleType

_ALGOS = {
    "ppo": "robojax.algos.ppo",
    "bc": "robojax.algos.bc",
    "dagger": "robojax.algos.bc:HGDaggerConfig",
    "apg": "robojax.algos.apg",
    "shac": "robojax.algos.shac",
    "ild": "robojax.algos.ild",
    "sac": "robojax.algos.sac",
    "rlpd": "robojax.algos.sac:RLPDConfig",
    "hil": "robojax.algos.sac:HILConfig",
    "reinflow": "robojax.algos.finetune:ReinFlowConfig",
    "dppo": "robojax.algos.finetune:DPPOConfig",
    "residual": "robojax.algos.residual",
}


def names() -> list[str]:
    """Registered algorithm names, in registration order."""
    return list(_ALGOS)


def module_path(name: str) -> str:
    """The import path of the module implementing algorithm `name`."""
    return _ALGOS[name].partition(":")[0]


def get(name: str) -> ModuleType:
    """The algorithm module `name` (e.g. `robojax.algos.ppo`)."""
    if name not in _ALGOS:
        close = difflib.get_close_matches(name, _ALGOS, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"unknown algorithm {name!r}.{hint} Available: {', '.join(_ALGOS)}.")
    path, _, config = _ALGOS[name].partition(":")
    module = importlib.import_module(path)
    if not config:
        return module
    preset = ModuleType(f"{path}:{config}", module.__doc__)
    preset.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    preset.Config = getattr(module, config)
    return preset


def register(name: str, module: str) -> None:
    """Add an algorithm from outside the package: `module` is its import path."""
    if name in _ALGOS:
        raise ValueError(f"an algorithm named {name!r} is already registered; pick another.")
    _ALGOS[name] = module
