"""Analytic policy gradient: maximise the return by differentiating it through the simulator.

Each iteration rolls the policy out for `rollout_length` steps in `num_envs` autoresetting
envs, differentiates the mean reward through MJX into the policy, and takes one guarded Adam
step (skipped and counted when the gradient is not finite). The env state carries over between
iterations, so episodes run on across windows while gradients stay window-short.
"""

import dataclasses
import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import optax

from robojax import diffsim
from robojax.algos import squashed_actor
from robojax.algos.base import ENV_STEPS, RolloutState
from robojax.core import normalize
from robojax.core.env import Env
from robojax.core.types import State
from robojax.core.wrappers import first_states

PROGRESS_UNIT, TRAIN_KEY, PLOT_KEY = ENV_STEPS, "train/reward", "eval/episode_reward"
make_train_input, controller, evaluate, program = (
    squashed_actor.make_train_input, squashed_actor.controller, squashed_actor.evaluate,
    squashed_actor.program)
TrainState = RolloutState


@dataclasses.dataclass(frozen=True)
class APGConfig(squashed_actor.SquashedActorConfig):
    """APG hyperparameters."""

    RENAMED: ClassVar[dict[str, str]] = {"unroll_length": "rollout_length"}

    rollout_length: int = 64
    """Steps per differentiable window (one gradient step per window)."""
    num_timesteps: int = 500_000
    """Total env steps to train for."""
    learning_rate: float = 1e-3
    """Adam step size."""


def make_optimizer(cfg: APGConfig) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.learning_rate))


def init(cfg: APGConfig, env: Env, train_env: Env, key: jax.Array) -> TrainState:
    cfg.validate()
    key_policy, key_env, key_train = jax.random.split(key, 3)
    policy = squashed_actor.make_policy(cfg)
    params = {"policy": policy.init(key_policy, env.observation_spec, env.action_spec)}
    return TrainState(params=params, opt_state=make_optimizer(cfg).init(params),
                      obs_stats=normalize.init(env.observation_spec.shape),
                      env_state=first_states(train_env, key_env), key=key_train,
                      iteration=jnp.zeros((), jnp.int32))


def loss_fn(params: dict, cfg: APGConfig, env: Env, obs_stats, env_state: State,
            key: jax.Array) -> tuple[jax.Array, tuple[State, diffsim.Step, jax.Array]]:
    """Minus the mean scaled reward of a differentiable window from `env_state`, plus the
    saturation penalty; aux: the final env state, the steps, the fraction saturated."""
    policy = squashed_actor.make_policy(cfg)
    norm = functools.partial(normalize.observations, cfg, obs_stats)

    def act(obs, key_step):
        return diffsim.squashed_action(policy, params["policy"], norm(obs), key_step)

    final, steps = diffsim.rollout(cfg.gradients, env, act, env_state, key, cfg.rollout_length)
    penalty, saturated = diffsim.saturation_penalty(policy, params["policy"], norm(steps.obs),
                                                    cfg.saturation_bound)
    loss = -jnp.mean(steps.reward) * cfg.reward_scaling + cfg.saturation_cost * penalty
    return loss, (final, steps, saturated)


def train_iteration(cfg: APGConfig, env: Env, state: TrainState) -> tuple[TrainState, dict]:
    key, key_rollout = jax.random.split(state.key)
    env_state = jax.lax.stop_gradient(state.env_state)
    (loss, (final, steps, saturated)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, cfg, env, state.obs_stats, env_state, key_rollout)
    params, opt_state, skipped = diffsim.guarded_update(make_optimizer(cfg), grads,
                                                        state.opt_state, state.params)
    obs_stats = normalize.update(state.obs_stats, steps.obs) if cfg.normalize_observations \
        else state.obs_stats
    metrics = {"train/loss": loss, "train/reward": steps.reward.mean(),
               "train/grad_norm": optax.global_norm(grads), "train/skipped_updates": skipped,
               "train/saturated": saturated, "train/episodes": steps.done.sum().astype(jnp.float32)}
    return state.replace(params=params, opt_state=opt_state, obs_stats=obs_stats,
                         env_state=final, key=key, iteration=state.iteration + 1), metrics


Config = APGConfig
