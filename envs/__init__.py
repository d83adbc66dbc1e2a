"""The built-in task suite and the registry: `robojax.envs.make(name, **overrides)`."""

import ast
import dataclasses
import difflib
import importlib
from collections.abc import Callable, Sequence
from typing import Any

from robojax.core.env import Env


@dataclasses.dataclass(frozen=True)
class _Entry:
    env_class: Callable[[Any], Env]
    default_config: Callable[[], Any]
    solver: Callable | None = None


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, env_class: Callable[[Any], Env], default_config: Callable[[], Any],
             solver: Callable | None = None) -> None:
    """Add a task: `env_class(config)` builds it, `default_config()` returns a fresh config,
    `solver(env, state) -> action` is an optional scripted expert for one env."""
    if name in _REGISTRY:
        raise ValueError(f"an env named {name!r} is already registered; pick another name.")
    if not (isinstance(env_class, type) and issubclass(env_class, Env)):
        raise TypeError(f"register({name!r}, ...): env_class must be a subclass of "
                        f"robojax.core.env.Env (e.g. of MjxEnv), got {env_class!r}.")
    if not callable(default_config):
        raise TypeError(f"register({name!r}, ...): default_config must be a function returning "
                        f"a fresh config, got {default_config!r}.")
    if solver is not None and not callable(solver):
        raise TypeError(f"register({name!r}, ...): solver must be None or a function "
                        f"solver(env, state) -> action, got {solver!r}.")
    _REGISTRY[name] = _Entry(env_class, default_config, solver)


def names() -> list[str]:
    """Names of every registered env, sorted."""
    return sorted(_REGISTRY)


def with_reflection() -> list[str]:
    """Names of the envs whose task declares a mirror symmetry (`reflection()`), from their
    classes: nothing is built."""
    return [n for n in names() if hasattr(_REGISTRY[n].env_class, "reflection")]


def list() -> list[str]:  # noqa: A001 - the registry's documented spelling
    """Alias of `names()`."""
    return names()


_FOREIGN = ("playground:", "brax:")


def _registered(name: str) -> str:
    """The registry name of `name`; for `MODULE:TASK`, the module is imported first (it
    registers TASK, as `gymnasium.make("module:Env-v0")` does), so a task of the user's own
    reaches the CLI, and runs, demonstrations and resumes name it the same way."""
    module, sep, task = name.rpartition(":")
    if not sep or name.startswith(_FOREIGN) or name in _REGISTRY:
        return name
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"env {name!r}: cannot import {module!r} ({err}). MODULE:TASK needs "
                          f"MODULE importable (installed, or its folder on PYTHONPATH) and "
                          f"calling robojax.envs.register({task!r}, ...).") from err
    if task not in _REGISTRY:
        raise KeyError(f"env {name!r}: importing {module!r} registered no env {task!r} "
                       f"(registered envs: {', '.join(names())}). Call "
                       f"robojax.envs.register({task!r}, EnvClass, default_config) in it.")
    return task


def _entry(name: str) -> _Entry:
    name = _registered(name)
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"unknown env {name!r}.{hint} Registered envs: {', '.join(names())}.")
    return _REGISTRY[name]


def get_config(name: str, **overrides) -> Any:
    """The default config of `name` with `overrides` applied (a fresh frozen dataclass)."""
    config = _entry(name).default_config()
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"{name} has no config field(s) {unknown}; its fields are "
                        f"{sorted(fields)}.")
    if "reward_scales" in overrides:  # merge, so one scale can change without restating all
        overrides["reward_scales"] = _merged_scales(name, config.reward_scales,
                                                    overrides["reward_scales"])
    return dataclasses.replace(config, **overrides)


def _merged_scales(name: str, defaults: dict, given: Any) -> dict:
    """The default reward scales with `given` replacing some; a term the task does not have
    is a KeyError naming it and the closest ones."""
    if not isinstance(given, dict):
        raise TypeError(f"{name}: reward_scales takes a dict of term -> scale, got {given!r}; "
                        f"e.g. --env-config \"reward_scales={{'{next(iter(defaults), 'term')}'"
                        ": 1.0}\".")
    for term in given:
        if term not in defaults:
            close = difflib.get_close_matches(str(term), sorted(defaults), n=2)
            hint = f"Did you mean {' or '.join(map(repr, close))}? " if close else ""
            raise KeyError(f"{name} has no reward term {term!r}. {hint}Its terms are "
                           f"{sorted(defaults)}.")
    return {**defaults, **given}


def make(name: str, **config_overrides) -> Env:
    """Build the env `name` with fields of its default config overridden: a registered env,
    `MODULE:TASK` (a task that importing MODULE registers), `playground:<Name>` (a MuJoCo
    Playground env) or `brax:<name>` (a Brax env), the foreign ones through
    `robojax.core.adapters`."""
    if name.startswith(_FOREIGN):
        return _make_foreign(name, **config_overrides)
    env_class = _entry(name).env_class
    config = get_config(name, **config_overrides)
    env = env_class(config)
    env.registry_name = name  # what demonstrations and checkpoints record as the env
    if hasattr(env, "share_programs"):  # built from its config alone: same config, same task
        env.share_programs(_FIRST_BUILT.setdefault((env_class, repr(config)), env))
    return env


_FIRST_BUILT: dict[tuple, Env] = {}
"""The first env `make` built of each class and config, whose traced and compiled reset and
step later builds of it reuse."""


def _make_foreign(name: str, **overrides) -> Env:
    from robojax.core.adapters import BraxEnvAdapter, PlaygroundEnvAdapter

    prefix, foreign_name = name.split(":", 1)
    episode_length = overrides.pop("episode_length", 1000)
    if prefix == "playground":
        try:
            from mujoco_playground import registry
        except ImportError as err:
            raise ImportError("playground envs need MuJoCo Playground: "
                              "pip install 'robojax[playground]'") from err
        # The JAX implementation; Playground's default (Warp) needs a GPU to be fast.
        overrides.setdefault("impl", "jax")
        env = registry.load(foreign_name, config_overrides=overrides)
        return PlaygroundEnvAdapter(env, episode_length)
    import brax.envs

    overrides.setdefault("backend", "mjx")
    return BraxEnvAdapter(brax.envs.get_environment(foreign_name, **overrides), episode_length)


def _text_fields(env: str | None) -> set[str]:
    """The config fields of registered env `env` that take text (`str`), whose CLI values
    are kept as written."""
    if env is None or env.startswith(_FOREIGN):
        return set()
    entry = _REGISTRY.get(_registered(env))
    if entry is None:
        return set()
    import typing

    config = entry.default_config()
    hints = typing.get_type_hints(type(config))
    return {f.name for f in dataclasses.fields(config)
            if hints[f.name] is str or str in typing.get_args(hints[f.name])}


def parse_overrides(items: Sequence[str], env: str | None = None) -> dict:
    """`("observation=keypoints", "episode_length=200")` -> a dict of env-config overrides;
    values are read as Python literals (numbers, booleans, tuples, dicts), else kept as text.
    With `env` (a registered name), a field that takes text keeps the text as written (e.g.
    `name=123` stays '123'); `get_config` then checks each value against its field's type."""
    text_fields = _text_fields(env)
    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"env config override {item!r} is not KEY=VALUE, e.g. "
                             "--env-config observation=keypoints episode_length=200.")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        overrides[key] = text if key in text_fields and not isinstance(value, str) else value
    return overrides


def solver(name: str) -> Callable:
    """The scripted expert `solver(env, state) -> action` of `name` (one env; vmap for batches)."""
    entry = _entry(name)
    if entry.solver is None:
        with_solver = [n for n in names() if _REGISTRY[n].solver is not None]
        raise ValueError(f"{name} has no scripted solver; envs with one: {with_solver}.")
    return entry.solver


def _register_builtins() -> None:
    from robojax.envs import cartpole, detour, hopper, pendulum, point_mass, push_t, pusher, reacher

    register("cartpole-balance", cartpole.Cartpole, cartpole.default_config, cartpole.solve)
    register("cartpole-swingup", cartpole.Cartpole, cartpole.default_swingup_config,
             cartpole.solve)
    register("pendulum-swingup", pendulum.Pendulum, pendulum.default_config, pendulum.solve)
    register("point-mass", point_mass.PointMass, point_mass.default_config, point_mass.solve)
    register("reacher", reacher.Reacher, reacher.default_config, reacher.solve)
    register("detour", detour.Detour, detour.default_config, detour.solve)
    register("hopper", hopper.Hopper, hopper.default_config)
    register("pusher", pusher.Pusher, pusher.default_config, pusher.solve)
    register("push-t", push_t.PushT, push_t.default_config, push_t.solve)


_register_builtins()

__all__ = ["get_config", "list", "make", "names", "parse_overrides", "register", "solver"]
