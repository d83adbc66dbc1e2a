"""Training presets: per task and algorithm, the budget and hyperparameters `robojax train --env
NAME` uses for every field no flag sets (`--preset none`: the algorithm's plain defaults).

Each preset names where its expected result was measured; `robojax envs` lists them. A preset
whose field its algorithm's config does not have fails at import, naming the field.
"""

import dataclasses
from collections.abc import Sequence
from typing import Any

from robojax import algos


@dataclasses.dataclass(frozen=True)
class Preset:
    """Algorithm-config fields (`--<algo>.<field>`) and the result they were measured to
    reach, or None where it has not been measured yet."""

    config: dict[str, Any]
    expected: str | None = None


_PPO_SWING = {"num_envs": 512, "num_timesteps": 10_000_000, "discount": 0.99, "num_evals": 20}

PRESETS: dict[tuple[str, str], Preset] = {
    ("cartpole-balance", "ppo"): Preset({"num_timesteps": 1_500_000}),
    ("cartpole-swingup", "ppo"): Preset(_PPO_SWING),
    ("detour", "ppo"): Preset({"num_timesteps": 1_500_000}),
    ("hopper", "ppo"): Preset(
        {"num_envs": 1024, "num_timesteps": 8_000_000, "discount": 0.99,
         "policy_hidden_sizes": (128, 128)},
        expected="eval reward 936 after 8.4M steps (1 seed, 909 s on 2 cores; RESULTS.md 5)"),
    ("pendulum-swingup", "ppo"): Preset(
        _PPO_SWING, expected="eval reward 814 after 10.5M steps (1 seed, 69 s; RESULTS.md 5)"),
    ("point-mass", "ppo"): Preset({"num_timesteps": 1_500_000}),
    ("push-t", "ppo"): Preset({"num_timesteps": 1_500_000}),
    ("pusher", "ppo"): Preset({"num_timesteps": 1_500_000}),
    ("reacher", "ppo"): Preset({"num_timesteps": 1_500_000}),
}


def _check(presets: dict[tuple[str, str], Preset]) -> None:
    for (env, algo), preset in presets.items():
        fields = {f.name for f in dataclasses.fields(algos.get(algo).Config)}
        for name in preset.config:
            if name not in fields:
                raise TypeError(f"preset ({env!r}, {algo!r}): {algo} has no config field "
                                f"{name!r}; its fields are {sorted(fields)}.")


_check(PRESETS)


def get(env: str, algo: str) -> Preset | None:
    return PRESETS.get((env, algo))


def given_fields(argv: Sequence[str]) -> set[str]:
    """The fields the command line sets, as `num_envs` or `ppo.learning_rate`."""
    flags = (arg.partition("=")[0] for arg in argv if arg.startswith("--"))
    return {flag[2:].replace("-", "_") for flag in flags}


def apply(args: Any, given: set[str]) -> Any:
    """`args` (a `TrainArgs`) with its task's preset applied to every algorithm-config field
    that `given` (e.g. `given_fields(argv)`) does not set; unchanged with `args.preset ==
    'none'`, for a resumed run (it keeps its own config) or where there is no preset."""
    preset = get(args.env, args.algo)
    if preset is None or args.preset == "none" or args.resume is not None:
        return args
    values = {k: v for k, v in preset.config.items()
              if f"{args.algo}.{k}" not in given and k not in given}
    cfg = dataclasses.replace(getattr(args, args.algo), **values)
    return dataclasses.replace(args, **{args.algo: cfg})
