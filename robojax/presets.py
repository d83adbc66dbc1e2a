"""Training presets: per task and algorithm, the budget and hyperparameters `robojax train --env
NAME` uses for every field no flag sets (`--preset none`: the algorithm's plain defaults).
`ALGORITHMS` names the few tasks whose best-measured preset is not PPO's: there `robojax train
--env NAME` runs that algorithm unless the command line picks one.

Each preset names where its expected result was measured; `robojax envs` lists them. A preset
whose field its algorithm's config does not have fails at import, naming the field.
"""

import dataclasses
from collections.abc import Sequence
from typing import Any

from robojax import algos, envs


@dataclasses.dataclass(frozen=True)
class Preset:
    """Algorithm-config fields (`--<algo>.<field>`) and the result they were measured to
    reach, or None where it has not been measured yet; optionally env-config overrides for
    training (`--env-config`, e.g. a shaping term) and for evaluation (`--eval-env-config`,
    e.g. the task's own reward), used where the command line gives none."""

    config: dict[str, Any]
    expected: str | None = None
    env_config: tuple[str, ...] = ()
    eval_env_config: tuple[str, ...] = ()


# The pendulum's swing-up explores with entropy 1e-2: at 1e-3 seeds ended between 703 and 844,
# and with observation noise and action delay in training one seed in three never swung up.
_PPO_SWING = {"num_envs": 512, "num_timesteps": 10_000_000, "discount": 0.99, "num_evals": 20,
              "entropy_cost": 1e-2}
# Cartpole's swing-up needs a longer horizon and more exploration than the pendulum's (at
# discount 0.99 and entropy 1e-3 seeds ended anywhere from 222 to 578), a step size that falls
# to 0 (at a constant one the policy reached ~800 by 10M steps, then fell back to ~600), and
# trains on the reward with the energy factor, which pays less for a spinning pole.
_PPO_CARTPOLE_SWING = {**_PPO_SWING, "num_timesteps": 16_000_000, "discount": 0.995,
                       "entropy_cost": 1e-2, "anneal_learning_rate": True}

# SAC sized for a few CPU cores: 16 envs, 8 updates of 64-wide networks per env step (the
# defaults are Playground's GPU settings: 128 envs, 256-wide networks).
_SAC_SMALL = {"num_envs": 16, "batch_size": 128, "learning_starts": 2000,
              "policy_hidden_sizes": (64, 64), "critic_hidden_sizes": (64, 64)}

PRESETS: dict[tuple[str, str], Preset] = {
    ("cartpole-balance", "ppo"): Preset(
        {"num_timesteps": 1_500_000},
        expected="eval reward 979 [968, 996], 0.98 of the expert; 3 seeds, 49 s each "
                 "(RESULTS.md 10)"),
    ("cartpole-swingup", "ppo"): Preset(
        _PPO_CARTPOLE_SWING, env_config=("reward_scales={'energy': 1.0}",),
        eval_env_config=("reward_scales={'energy': 0.0}",),
        expected="eval reward 697 [486, 815], 0.81 of the expert (486 / 815 / 791); 3 seeds, "
                 "248 s each (RESULTS.md 10.1)"),
    ("detour", "ppo"): Preset(
        {"num_timesteps": 1_500_000},
        expected="success 1.00, return 5.76 (expert 5.72); 3 seeds, 46 s each (RESULTS.md 10.1)"),
    ("hopper", "ppo"): Preset(
        {"num_envs": 1024, "num_timesteps": 8_000_000, "discount": 0.99,
         "policy_hidden_sizes": (128, 128)},
        expected="eval reward 1392 [1239, 1559]; 3 seeds, 895 s each (RESULTS.md 10.1)"),
    ("pendulum-swingup", "ppo"): Preset(
        _PPO_SWING, expected="eval reward 842 [836, 852], 1.01 of the expert; 3 seeds, 96 s "
                             "each (RESULTS.md 10.2)"),
    ("point-mass", "ppo"): Preset(
        {"num_timesteps": 1_500_000},
        expected="eval reward 954 [950, 958], 0.97 of the expert; 3 seeds, 37 s each "
                 "(RESULTS.md 10)"),
    # push-t by PPO (RESULTS.md 10.6-10.9): the pusher moves by offsets of up to 5 cm a step,
    # not to absolute targets, and training pays costs every step (the T's keypoints' mean
    # distance to their places, the pusher's to the block, the coverage's shortfall, and 10 at
    # success, where the episode ends), so finishing soon is what pays; evaluation scores the
    # task's own reward. 128 envs x 128 steps step 1.5x faster on 2 cores than 512 x 32. Half
    # the training episodes start part of the way to the target: without them one seed in
    # three never found the push (10.8). The policy is evaluated as it trains, with sampled
    # actions: with its mean action it often stops just short of the target (10.9).
    ("push-t", "ppo"): Preset(
        {"num_envs": 128, "rollout_length": 128, "num_timesteps": 13_000_000, "discount": 0.99,
         "policy_hidden_sizes": (256, 256), "entropy_cost": 1e-2, "anneal_learning_rate": True,
         "num_evals": 20, "deterministic_eval": False},
        env_config=("action_mode='delta'",
                    "reward_scales={'progress': 0.0, 'reach': 0.0, 'coverage': 0.0, "
                    "'overlap': 0.0, 'success': 10.0, 'distance': 10.0, 'approach': 3.0, "
                    "'uncovered': 3.0}", "start_near_target=0.5"),
        eval_env_config=("reward_scales={'progress': 10.0, 'reach': 0.0, 'coverage': 0.0, "
                         "'overlap': 0.0, 'success': 1.0, 'distance': 0.0, 'approach': 0.0}",
                         "start_near_target=0.0"),
        expected="return 2.26 [2.23, 2.30] against the expert's 2.27 (1.00; seeds 2.30 / "
                 "2.25 / 2.23), success 1.00 [0.99, 1.00]; 3 seeds, 1,516 s each "
                 "(RESULTS.md 10.9)"),
    # At 8M steps 3 seeds reached 202 [193, 208] (0.74 of the expert); at 24M with a 64x64
    # policy 228 [220, 239] (0.84, success 0.42), with this one 238 [229, 253] (0.88, 0.56).
    ("pusher", "ppo"): Preset(
        {"num_timesteps": 48_000_000, "discount": 0.99, "policy_hidden_sizes": (128, 128)},
        expected="eval reward 260 [258, 264], 0.96 of the expert, success 0.84; 3 seeds, "
                 "1,284 s each on an idle machine (RESULTS.md 10.5)"),
    ("reacher", "ppo"): Preset(
        {"num_timesteps": 3_000_000},
        expected="eval reward 903 [865, 926], 0.92 of the expert; 3 seeds, 64 s each "
                 "(RESULTS.md 10.1)"),
    ("cartpole-swingup", "sac"): Preset(
        {**_SAC_SMALL, "num_timesteps": 500_000},
        expected="eval reward 811 [800, 821], 0.95 of the expert; 3 seeds, 108 s each "
                 "(RESULTS.md 7.7)"),
    ("point-mass", "sac"): Preset(
        {**_SAC_SMALL, "num_timesteps": 60_000},
        expected="eval reward 982 [981, 983], 1.00 of the expert; 3 seeds, 25 s each "
                 "(RESULTS.md 7.7)"),
}

ALGORITHMS: dict[str, str] = {"cartpole-swingup": "sac"}
"""Task -> the algorithm `robojax train --env NAME` runs when the command line names none
(PPO elsewhere)."""


def _check(presets: dict[tuple[str, str], Preset], algorithms: dict[str, str]) -> None:
    for (env, algo), preset in presets.items():
        fields = {f.name for f in dataclasses.fields(algos.get(algo).Config)}
        for name in preset.config:
            if name not in fields:
                raise TypeError(f"preset ({env!r}, {algo!r}): {algo} has no config field "
                                f"{name!r}; its fields are {sorted(fields)}.")
        for overrides in (preset.env_config, preset.eval_env_config):
            envs.get_config(env, **envs.parse_overrides(overrides, env))
    for env, algo in algorithms.items():
        if (env, algo) not in presets:
            raise TypeError(f"ALGORITHMS picks {algo} for {env!r}, which has no {algo} preset.")


_check(PRESETS, ALGORITHMS)


def get(env: str, algo: str) -> Preset | None:
    return PRESETS.get((env, algo))


def default_algorithm(env: str) -> str:
    return ALGORITHMS.get(env, "ppo")


def given_fields(argv: Sequence[str]) -> set[str]:
    """The fields the command line sets, as `num_envs` or `ppo.learning_rate`."""
    flags = (arg.partition("=")[0] for arg in argv if arg.startswith("--"))
    return {flag[2:].replace("-", "_") for flag in flags}


def apply(args: Any, given: set[str]) -> Any:
    """`args` (a `TrainArgs`) with its task's algorithm (`ALGORITHMS`; in place of the default
    PPO where `given` names no --algo and no --ppo field) and that algorithm's preset applied to
    every config field that `given` (e.g. `given_fields(argv)`) does not set; unchanged with
    `args.preset == 'none'`, for a resumed run (it keeps its own config) or where there is no
    preset."""
    if args.preset == "none" or args.resume is not None:
        return args
    if args.algo == "ppo" and "algo" not in given and not any(f.startswith("ppo.")
                                                              for f in given):
        args = dataclasses.replace(args, algo=default_algorithm(args.env))  # the task's
    preset = get(args.env, args.algo)
    if preset is None:
        return args
    values = {k: v for k, v in preset.config.items()
              if f"{args.algo}.{k}" not in given and k not in given}
    cfg = dataclasses.replace(getattr(args, args.algo), **values)
    env_fields = {name: getattr(preset, name) for name in ("env_config", "eval_env_config")
                  if getattr(preset, name) and name not in given and not getattr(args, name)}
    return dataclasses.replace(args, **{args.algo: cfg}, **env_fields)
