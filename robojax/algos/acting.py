"""Evaluation pieces several algorithms share: the batched evaluation env and the controller,
evaluation and exportable program of a policy that acts with its mean action or, where its
config says `deterministic_eval=False`, with actions sampled from it."""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from robojax.core.controller import Controller, stateless
from robojax.core.env import Env
from robojax.core.program import NoiseSpec, PolicyProgram, step_program
from robojax.core.types import State
from robojax.core.wrappers import EpisodeWrapper, VmapWrapper
from robojax.rollout import evaluate_episodes


def episode_length(cfg, env: Env) -> int:
    """`cfg.episode_length`, else the env config's, else 1000."""
    return cfg.episode_length or getattr(getattr(env, "config", None), "episode_length", 1000)


def make_eval_env(cfg, env: Env) -> Env:
    """`cfg.num_eval_envs` copies of `env`, each ending its episode at `episode_length`."""
    return VmapWrapper(EpisodeWrapper(env, episode_length(cfg, env)), cfg.num_eval_envs)


class PolicyActing(NamedTuple):
    """How an algorithm's trained policy acts outside training: `controller(cfg, state)`,
    `evaluate(cfg, eval_env, state, key)` and `program(cfg, state)`."""

    controller: Callable[[Any, Any], Controller]
    evaluate: Callable[[Any, Env, Any, jax.Array], dict]
    program: Callable[[Any, Any], PolicyProgram]


def deterministic_policy(act: Callable[[Any, Any, jax.Array], jax.Array]) -> PolicyActing:
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

    return PolicyActing(controller, evaluate, program)


def mean_or_sampled_policy(act: Callable[..., jax.Array],
                           action_shape: Callable[[Any], tuple[int, ...]]) -> PolicyActing:
    """`controller`, `evaluate` and `program` of a Gaussian policy, acting with its mean or, with
    `cfg.deterministic_eval=False`, with samples, from `act(cfg, state, obs, noise=None)`: the
    mean action for `noise=None`, else the action that standard normal `noise` (shaped like
    the action, `action_shape(state)` per env) draws. The exported sampled program takes
    that noise as an input."""
    mean = deterministic_policy(act)

    def controller(cfg, state) -> Controller:
        """The policy as a rollout controller (eval, videos, demo collection)."""
        if cfg.deterministic_eval:
            return mean.controller(cfg, state)

        def step(carry, env_state: State, key: jax.Array):
            noise = jax.random.normal(key, env_state.obs.shape[:-1] + action_shape(state))
            return act(cfg, state, env_state.obs, noise), carry

        return Controller(init=lambda env_state: (), step=step)

    def evaluate(cfg, eval_env: Env, state, key: jax.Array) -> dict:
        """Mean return (and reward terms) of one full episode in each evaluation env, and the
        success rate where the env reports success, acting as `controller` does."""
        if cfg.deterministic_eval:
            return mean.evaluate(cfg, eval_env, state, key)
        reset_key, act_key = jax.random.split(key)
        return evaluate_episodes(eval_env, controller(cfg, state), reset_key, act_key,
                                 track_success=None)

    def program(cfg, state) -> PolicyProgram:
        """The policy as an exportable program, one observation in and one action out; sampled,
        with its standard normal noise as an input."""
        if cfg.deterministic_eval:
            return mean.program(cfg, state)

        def fn(history: jax.Array, noise: dict) -> jax.Array:
            return jnp.clip(act(cfg, state, history[:, -1], noise["action"]), -1.0, 1.0)[:, None]

        return PolicyProgram(fn, noise={"action": NoiseSpec(action_shape(state))},
                             sampler={"family": "gaussian", "output": "sample"})

    return PolicyActing(controller, evaluate, program)
