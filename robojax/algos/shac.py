"""Short-horizon actor-critic (SHAC): analytic policy gradients over short windows, with a
learned value closing each window, which keeps gradients stable on long tasks.

Per iteration, one compiled call:
1. actor: roll the stochastic policy out `rollout_length` steps through the differentiable
   simulator; the objective is the discounted reward of each episode segment in the window
   plus the target critic's discounted value where the window (or a truncated episode) ends;
   one guarded Adam step on its gradient;
2. critic: TD(lambda) targets from the same window (no gradient), `critic_epochs` passes of
   `critic_minibatches` regression steps, then a soft update of the target critic.
"""

import dataclasses
import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import struct

from robojax import diffsim
from robojax.algos import squashed_actor
from robojax.algos.base import ENV_STEPS
from robojax.algos.returns import compute_gae
from robojax.core import normalize
from robojax.core.env import Env
from robojax.core.types import State
from robojax.core.wrappers import first_states
from robojax.policies.networks import MLP, compiled_init

PROGRESS_UNIT, TRAIN_KEY, PLOT_KEY = ENV_STEPS, "train/reward", "eval/episode_reward"
make_train_input, controller, evaluate, program = (
    squashed_actor.make_train_input, squashed_actor.controller, squashed_actor.evaluate,
    squashed_actor.program)
make_policy = squashed_actor.make_policy


@dataclasses.dataclass(frozen=True)
class SHACConfig(squashed_actor.SquashedActorConfig):
    """SHAC hyperparameters (defaults after Xu et al. 2022's cartpole settings)."""

    RENAMED: ClassVar[dict[str, str]] = {"horizon": "rollout_length"}

    rollout_length: int = 32
    """Steps per differentiable window, closed by the target critic's value."""
    actor_learning_rate: float = 2e-3
    """Actor Adam step size (decays linearly to zero)."""
    critic_learning_rate: float = 2e-3
    """Critic Adam step size (decays linearly to zero)."""
    discount: float = 0.99
    """Reward discount factor."""
    td_lambda: float = 0.95
    """Lambda of the critic's TD(lambda) targets."""
    critic_epochs: int = 16
    """Passes over each window's data for the critic."""
    critic_minibatches: int = 4
    """Critic minibatches per pass."""
    target_tau: float = 0.2
    """Target critic update: target <- tau * target + (1 - tau) * critic."""
    value_hidden_sizes: tuple[int, ...] = (64, 64)
    """Critic MLP widths."""

    def validate(self) -> None:
        super().validate()
        if self.steps_per_iteration() % self.critic_minibatches:
            raise ValueError(f"num_envs * rollout_length = {self.steps_per_iteration()} is not "
                             f"divisible by critic_minibatches = {self.critic_minibatches}.")


@struct.dataclass
class TrainState:
    params: dict  # {"policy", "value"}
    target_value: dict
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    obs_stats: normalize.RunningStats
    env_state: State
    key: jax.Array
    iteration: jax.Array


def value_network(cfg: SHACConfig) -> MLP:
    return MLP(cfg.value_hidden_sizes, 1, cfg.activation)


def _optimizer(cfg: SHACConfig, lr: float, steps_per_iteration: int):
    schedule = optax.linear_schedule(lr, 0.0, cfg.num_iterations() * steps_per_iteration)
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm),
                       optax.adam(schedule, b1=0.7, b2=0.95))


def actor_optimizer(cfg: SHACConfig):
    return _optimizer(cfg, cfg.actor_learning_rate, 1)


def critic_optimizer(cfg: SHACConfig):
    return _optimizer(cfg, cfg.critic_learning_rate, cfg.critic_epochs * cfg.critic_minibatches)


def init(cfg: SHACConfig, env: Env, train_env: Env, key: jax.Array) -> TrainState:
    cfg.validate()
    key_policy, key_value, key_env, key_train = jax.random.split(key, 4)
    obs_spec = env.observation_spec
    value = compiled_init(value_network(cfg).init)(key_value, jnp.zeros(obs_spec.shape))
    params = {"policy": make_policy(cfg).init(key_policy, obs_spec, env.action_spec),
              "value": value}
    env_state = first_states(train_env, key_env)
    return TrainState(
        params=params, target_value=jax.tree.map(jnp.copy, value),
        actor_opt_state=actor_optimizer(cfg).init(params["policy"]),
        critic_opt_state=critic_optimizer(cfg).init(value), obs_stats=normalize.init(
            obs_spec.shape), env_state=env_state, key=key_train,
        iteration=jnp.zeros((), jnp.int32))


def window_objective(rewards: jax.Array, next_values: jax.Array, done: jax.Array,
                     truncated: jax.Array, discount: float) -> jax.Array:
    """Per env: the sum over the window of each episode segment's discounted rewards, plus the
    discounted value where a segment is cut by the window's end or a time limit (zero where it
    terminated). Inputs are (T, N); `next_values[t]` is the value of the state step t reached.
    """
    horizon = rewards.shape[0]

    def forward(weight, inputs):
        t, reward, next_value, done_t, truncated_t = inputs
        bootstrap = jnp.where(done_t & ~truncated_t, 0.0, next_value)  # where: no NaN leaks
        window_end = (t == horizon - 1) | done_t
        term = weight * reward + jnp.where(window_end, weight * discount * bootstrap, 0.0)
        return jnp.where(done_t, 1.0, weight * discount), term

    _, terms = jax.lax.scan(forward, jnp.ones_like(rewards[0]),
                            (jnp.arange(horizon), rewards, next_values, done, truncated))
    return terms.sum(0)


def actor_loss(policy_params: dict, cfg: SHACConfig, env: Env, state: TrainState,
               key: jax.Array) -> tuple[jax.Array, tuple[State, diffsim.Step, jax.Array]]:
    """Minus the mean per-step window objective, plus the saturation penalty; aux: the final
    env state, the window's steps and the fraction of saturated action entries."""
    policy, value_apply = make_policy(cfg), value_network(cfg).apply
    norm = functools.partial(normalize.observations, cfg, state.obs_stats)

    def sample(obs, key_step):
        return diffsim.squashed_action(policy, policy_params, norm(obs), key_step)

    env_state = jax.lax.stop_gradient(state.env_state)
    final, steps = diffsim.rollout(cfg.gradients, env, sample, env_state, key,
                                   cfg.rollout_length)
    next_values = value_apply(state.target_value, norm(steps.final_obs))
    objective = window_objective(steps.reward * cfg.reward_scaling, next_values[..., 0],
                                 steps.done, steps.truncated, cfg.discount)
    penalty, saturated = diffsim.saturation_penalty(policy, policy_params, norm(steps.obs),
                                                    cfg.saturation_bound)
    loss = -objective.mean() / cfg.rollout_length + cfg.saturation_cost * penalty
    return loss, (final, steps, saturated)


def critic_update(cfg: SHACConfig, value: dict, opt_state, obs: jax.Array, targets: jax.Array,
                  key: jax.Array) -> tuple[dict, optax.OptState, jax.Array]:
    """`critic_epochs` shuffled passes of minibatch regression onto `targets`."""
    optimizer, apply = critic_optimizer(cfg), value_network(cfg).apply

    def loss(value, batch):
        return jnp.mean((apply(value, batch[0])[..., 0] - batch[1]) ** 2)

    def minibatch(carry, batch):
        value, opt_state = carry
        loss_value, grads = jax.value_and_grad(loss)(value, batch)
        value, opt_state, _ = diffsim.guarded_update(optimizer, grads, opt_state, value)
        return (value, opt_state), loss_value

    def epoch(carry, key_epoch):
        order = jax.random.permutation(key_epoch, obs.shape[0])
        split = lambda x: x[order].reshape((cfg.critic_minibatches, -1, *x.shape[1:]))  # noqa
        return jax.lax.scan(minibatch, carry, (split(obs), split(targets)))

    (value, opt_state), losses = jax.lax.scan(epoch, (value, opt_state),
                                              jax.random.split(key, cfg.critic_epochs))
    return value, opt_state, losses.mean()


def train_iteration(cfg: SHACConfig, env: Env, state: TrainState) -> tuple[TrainState, dict]:
    key, key_rollout, key_critic = jax.random.split(state.key, 3)
    (loss, (final, steps, saturated)), grads = jax.value_and_grad(actor_loss, has_aux=True)(
        state.params["policy"], cfg, env, state, key_rollout)
    policy, actor_opt_state, skipped = diffsim.guarded_update(
        actor_optimizer(cfg), grads, state.actor_opt_state, state.params["policy"])

    steps = jax.lax.stop_gradient(steps)
    obs_stats = normalize.update(state.obs_stats, steps.obs) if cfg.normalize_observations \
        else state.obs_stats
    norm = functools.partial(normalize.observations, cfg, obs_stats)
    obs = norm(steps.obs)
    value_apply = value_network(cfg).apply
    values = value_apply(state.target_value, obs)[..., 0]
    next_values = value_apply(state.target_value, norm(steps.final_obs))[..., 0]
    _, targets = compute_gae(steps.reward * cfg.reward_scaling, values, next_values, steps.done,
                             steps.truncated, cfg.discount, cfg.td_lambda)
    flat = lambda x: x.reshape((-1, *x.shape[2:]))  # noqa: E731
    value, critic_opt_state, critic_loss = critic_update(
        cfg, state.params["value"], state.critic_opt_state, flat(obs), flat(targets), key_critic)
    target = jax.tree.map(lambda t, v: cfg.target_tau * t + (1 - cfg.target_tau) * v,
                          state.target_value, value)
    metrics = {"train/loss": loss, "train/critic_loss": critic_loss,
               "train/reward": steps.reward.mean(), "train/grad_norm": optax.global_norm(grads),
               "train/skipped_updates": skipped, "train/saturated": saturated,
               "train/episodes": steps.done.sum().astype(jnp.float32)}
    return state.replace(params={"policy": policy, "value": value}, target_value=target,
                         actor_opt_state=actor_opt_state, critic_opt_state=critic_opt_state,
                         obs_stats=obs_stats, env_state=final, key=key,
                         iteration=state.iteration + 1), metrics


Config = SHACConfig
