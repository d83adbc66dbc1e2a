"""Analytic policy gradient: maximise the return by differentiating it through the simulator.

Each iteration rolls the policy out for `unroll_length` steps in `num_envs` autoresetting envs,
differentiates the mean reward through MJX into the policy, and takes one guarded Adam step
(skipped and counted when the gradient is not finite). The env state carries over between
iterations, so episodes run on across windows while gradients stay window-short.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax
from flax import struct

from robojax.algos import diffsim
from robojax.core import normalize
from robojax.core.env import Env
from robojax.core.types import State
from robojax.core.wrappers import EpisodeWrapper, VmapWrapper, wrap_for_training
from robojax.policies.gaussian import GaussianPolicy
from robojax.rollout import Controller, evaluate_episodes, stateless

PROGRESS_UNIT = "env_steps"
PLOT_KEY = "eval/episode_reward"


@dataclasses.dataclass(frozen=True)
class APGConfig:
    """APG hyperparameters."""

    num_envs: int = 64
    """Envs rolled out (and differentiated through) in parallel."""
    num_timesteps: int = 500_000
    """Total env steps to train for."""
    unroll_length: int = 64
    """Steps per differentiable window (one gradient step per window)."""
    learning_rate: float = 1e-3
    """Adam step size."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clipping."""
    reward_scaling: float = 1.0
    """Rewards are multiplied by this in the loss."""
    normalize_observations: bool = True
    """Normalize the policy's input with running statistics."""
    policy_hidden_sizes: tuple[int, ...] = (64, 64)
    """Actor MLP widths."""
    activation: str = "elu"
    """Hidden nonlinearity."""
    init_log_std: float = -1.0
    """Initial log std of the exploration noise (before the tanh squash)."""
    saturation_cost: float = 0.1
    """Weight of the penalty on the policy mean's pre-tanh magnitude beyond `saturation_bound`
    (where tanh passes almost no gradient); 0 turns it off."""
    saturation_bound: float = 3.0
    """Pre-tanh magnitude the penalty starts at (tanh(3) = 0.995 of the action range)."""
    gradients: diffsim.GradientConfig = diffsim.GradientConfig()
    """Truncation, contact scaling, clipping and remat of the gradient through the physics."""
    episode_length: int | None = None
    """Time limit in steps; None uses the env config's."""
    num_evals: int = 10
    """Evaluations over the run, plus one before training."""
    num_eval_envs: int = 128
    """Parallel episodes per evaluation (deterministic policy)."""

    def steps_per_iteration(self) -> int:
        return self.num_envs * self.unroll_length

    def num_iterations(self) -> int:
        return max(1, -(-self.num_timesteps // self.steps_per_iteration()))

    def validate(self) -> None:
        self.gradients.validate()
        diffsim.validate_saturation(self.saturation_cost, self.saturation_bound)
        if self.unroll_length < 1:
            raise ValueError(f"unroll_length must be >= 1, got {self.unroll_length}.")


@struct.dataclass
class TrainState:
    params: dict
    opt_state: optax.OptState
    obs_stats: normalize.RunningStats
    env_state: State
    key: jax.Array
    iteration: jax.Array


def make_policy(cfg) -> GaussianPolicy:
    return GaussianPolicy(cfg.policy_hidden_sizes, cfg.activation, cfg.init_log_std)


def make_optimizer(cfg: APGConfig) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.learning_rate))


def make_train_input(cfg, env: Env) -> Env:
    """The batched, autoresetting training env, with a differentiable constraint solver."""
    return wrap_for_training(diffsim.differentiable(env), cfg.num_envs,
                             episode_length=cfg.episode_length)


def eval_episode_length(cfg, env: Env) -> int:
    return cfg.episode_length or getattr(getattr(env, "config", None), "episode_length", 1000)


def make_eval_env(cfg, env: Env) -> Env:
    return VmapWrapper(EpisodeWrapper(env, eval_episode_length(cfg, env)), cfg.num_eval_envs)


def init(cfg: APGConfig, env: Env, key: jax.Array) -> TrainState:
    cfg.validate()
    key_policy, key_env, key_train = jax.random.split(key, 3)
    params = {"policy": make_policy(cfg).init(key_policy, env.observation_spec, env.action_spec)}
    env_state = jax.jit(make_train_input(cfg, env).reset)(key_env)
    return TrainState(params=params, opt_state=make_optimizer(cfg).init(params),
                      obs_stats=normalize.init(env.observation_spec.shape), env_state=env_state,
                      key=key_train, iteration=jnp.zeros((), jnp.int32))


def normalized(cfg, stats: normalize.RunningStats, obs: jax.Array) -> jax.Array:
    return normalize.normalize(stats, obs) if cfg.normalize_observations else obs


def loss_fn(params: dict, cfg: APGConfig, env: Env, obs_stats, env_state: State,
            key: jax.Array) -> tuple[jax.Array, tuple[State, diffsim.Step, jax.Array]]:
    """Minus the mean scaled reward of a differentiable window from `env_state`, plus the
    saturation penalty; aux: the final env state, the steps, the fraction saturated."""
    policy = make_policy(cfg)

    def act(obs, key_step):
        return diffsim.squashed_action(policy, params["policy"], normalized(cfg, obs_stats, obs),
                                       key_step)

    final, steps = diffsim.rollout(cfg.gradients, env, act, env_state, key, cfg.unroll_length)
    penalty, saturated = diffsim.saturation_penalty(
        policy, params["policy"], normalized(cfg, obs_stats, steps.obs), cfg.saturation_bound)
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


def act(cfg, state, obs: jax.Array) -> jax.Array:
    """Deterministic action (tanh of the mean): what eval and export run."""
    return diffsim.squashed_action(make_policy(cfg), state.params["policy"],
                                   normalized(cfg, state.obs_stats, obs), None)


def controller(cfg, state) -> Controller:
    return stateless(functools.partial(act, cfg, state))


def evaluate(cfg, eval_env: Env, state, key: jax.Array) -> dict:
    """Mean return (and reward terms) of `num_eval_envs` full episodes, deterministic policy."""
    return evaluate_episodes(eval_env, controller(cfg, state), key, key)


Config = APGConfig
