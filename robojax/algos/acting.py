"""Evaluation pieces several algorithms share: the batched evaluation env and the controller
and evaluation of a deterministic policy."""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from robojax.core.controller import Controller, stateless
from robojax.core.env import Env
from robojax.core.program import PolicyProgram, step_program
from robojax.core.wrappers import EpisodeWrapper, VmapWrapper
from robojax.rollout import evaluate_episodes


def episode_length(cfg, env: Env) -> int:
    """`cfg.episode_length`, else the env config's, else 1000."""
    return cfg.episode_length or getattr(getattr(env, "config", None), "episode_length", 1000)


def make_eval_env(cfg, env: Env) -> Env:
    """`cfg.num_eval_envs` copies of `env`, each ending its episode at `episode_length`."""
    return VmapWrapper(EpisodeWrapper(env, episode_length(cfg, env)), cfg.num_eval_envs)


class DeterministicPolicy(NamedTuple):
    controller: Callable[[Any, Any], Controller]
    evaluate: Callable[[Any, Env, Any, jax.Array], dict]
    program: Callable[[Any, Any], PolicyProgram]


def deterministic_policy(act: Callable[[Any, Any, jax.Array], jax.Array]) -> DeterministicPolicy:
    """An algorithm's `controller(cfg, state)`, `evaluate(cfg, eval_env, state, key)` and
    `program(cfg, state)` from its deterministic `act(cfg, state, obs) -> action`."""

    def controller(cfg, state) -> Controller:
        """The deterministic policy as a rollout controller (videos, demo collection)."""
        return stateless(functools.partial(act, cfg, state))

    def evaluate(cfg, eval_env: Env, state, key: jax.Array) -> dict:
        """Mean return (and reward terms) of one full episode in each evaluation env, and the
        success rate where the env reports success (`reward/success`)."""
        # The policy is deterministic, so the per-step keys are unused.
        return evaluate_episodes(eval_env, controller(cfg, state), key, key,
                                 track_success=None)

    def program(cfg, state) -> PolicyProgram:
        """The policy as an exportable program: one observation in, one action out."""
        return step_program(functools.partial(act, cfg, state))

    return DeterministicPolicy(controller, evaluate, program)
