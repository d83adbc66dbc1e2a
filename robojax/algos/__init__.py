"""Training algorithms: each module exposes a frozen config and pure init/iteration/eval steps."""

import difflib
from types import ModuleType

_ALGOS = ("ppo", "bc", "apg", "shac", "ild")


def names() -> list[str]:
    return list(_ALGOS)


def get(name: str) -> ModuleType:
    """The algorithm module `name` (e.g. `robojax.algos.ppo`)."""
    if name not in _ALGOS:
        close = difflib.get_close_matches(name, _ALGOS, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"unknown algorithm {name!r}.{hint} Available: {', '.join(_ALGOS)}.")
    import importlib

    return importlib.import_module(f"robojax.algos.{name}")
