"""Proximal policy optimisation, fully jitted: rollout scan → GAE reverse scan → epoch and
minibatch scans, all one compiled call per iteration (or per chunk of iterations).

Each stage is a module-level pure function so tests can import and check it alone.
"""

import dataclasses
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from robojax.algos import acting, surrogate
from robojax.algos.base import ENV_STEPS, RolloutConfig, RolloutState
from robojax.algos.returns import compute_gae
from robojax.core import normalize
from robojax.core.env import Env
from robojax.core.sharding import place_on_mesh, shard_env_batch
from robojax.core.types import State
from robojax.core.wrappers import first_states, wrap_for_training
from robojax.policies.gaussian import GaussianPolicy
from robojax.policies.networks import MLP, compiled_init

PROGRESS_UNIT, TRAIN_KEY, PLOT_KEY = ENV_STEPS, "train/reward", "eval/episode_reward"


@dataclasses.dataclass(frozen=True)
class PPOConfig(RolloutConfig):
    """PPO hyperparameters; the defaults solve cartpole-balance in about a minute on 2 CPU cores."""

    RENAMED: ClassVar[dict[str, str]] = {"unroll_length": "rollout_length"}

    num_envs: int = 512
    """Envs stepped in parallel (sharded across devices when there are several)."""
    num_timesteps: int = 1_500_000
    """Total env steps to train for."""
    rollout_length: int = 32
    """Steps per env per iteration; the batch is num_envs * rollout_length transitions."""
    num_minibatches: int = 8
    """Minibatches per epoch."""
    num_epochs: int = 4
    """Passes over each batch."""
    learning_rate: float = 1e-3
    """Adam step size."""
    anneal_learning_rate: bool = False
    """Decay the step size linearly from `learning_rate` to 0 over the run's updates, which
    keeps a policy from falling off late in a long run. The schedule spans `num_timesteps`: a
    run resumed with a larger `--num-timesteps` carries on along the longer schedule."""
    discount: float = 0.98
    """Reward discount factor gamma."""
    gae_lambda: float = 0.95
    """GAE lambda: bias/variance trade-off of the advantage estimate."""
    clip_epsilon: float = 0.2
    """PPO ratio clipping."""
    entropy_cost: float = 1e-3
    """Weight of the entropy bonus."""
    value_cost: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clipping."""
    reward_scaling: float = 1.0
    """Rewards are multiplied by this before learning."""
    normalize_observations: bool = True
    """Keep running observation statistics and normalize the policy's and critic's inputs."""
    policy_hidden_sizes: tuple[int, ...] = (64, 64)
    """Actor MLP widths."""
    value_hidden_sizes: tuple[int, ...] = (128, 128)
    """Critic MLP widths."""
    activation: str = "tanh"
    """Hidden nonlinearity of both networks."""
    max_log_std: float | None = None
    """Upper bound on the policy's log std (None: unbounded); 0.0 keeps an entropy bonus from
    growing the std past the [-1, 1] action range, where it changes nothing but the bonus."""
    reset_refresh: int = 32
    """Steps between redraws of the fresh initial states that finished envs restart from; 0
    restarts each env from one initial state drawn at reset (as Brax's autoreset), which takes
    the reset out of the compiled step (less compile time, less start-state variety)."""
    deterministic_eval: bool = True
    """Evaluate, record and export the policy's mean action; False samples actions from the
    policy as training does (Brax PPO's default). A policy trained with noise can rely on it:
    push-t's stops just short of the target with its mean action and finishes with sampled
    ones (RESULTS.md 10.9)."""

    def validate(self) -> None:
        super().validate()
        batch = self.steps_per_iteration()
        if batch % self.num_minibatches:
            raise ValueError(f"num_envs * rollout_length = {batch} is not divisible by "
                             f"num_minibatches = {self.num_minibatches}; change one of them.")


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    reward: jax.Array
    done: jax.Array
    truncated: jax.Array
    next_obs: jax.Array  # the observation the step reached, before any autoreset
    nan_reset: jax.Array  # 1 where the NaN guard reset a diverged env on this step


TrainState = RolloutState


def make_policy(cfg: PPOConfig) -> GaussianPolicy:
    return GaussianPolicy(hidden_sizes=cfg.policy_hidden_sizes, activation=cfg.activation,
                          max_log_std=cfg.max_log_std)


def value_network(cfg: PPOConfig) -> MLP:
    return MLP(cfg.value_hidden_sizes, 1, cfg.activation)


def make_optimizer(cfg: PPOConfig) -> optax.GradientTransformation:
    rate = cfg.learning_rate
    if cfg.anneal_learning_rate:
        updates = cfg.num_iterations() * cfg.num_epochs * cfg.num_minibatches
        rate = optax.linear_schedule(cfg.learning_rate, 0.0, updates)
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(rate))


def make_train_input(cfg: PPOConfig, env: Env) -> Env:
    """What `train_iteration` consumes: the batched, autoresetting training env."""
    return wrap_for_training(env, cfg.num_envs, episode_length=cfg.episode_length,
                             reset_refresh=cfg.reset_refresh)


def init(cfg: PPOConfig, env: Env, train_env: Env, key: jax.Array) -> TrainState:
    """Networks, optimizer, normalizer and a reset batch of `cfg.num_envs` envs."""
    cfg.validate()
    key_policy, key_value, key_env, key_train = jax.random.split(key, 4)
    obs_spec, act_spec = env.observation_spec, env.action_spec
    params = {
        "policy": make_policy(cfg).init(key_policy, obs_spec, act_spec),
        "value": compiled_init(value_network(cfg).init)(key_value, jnp.zeros(obs_spec.shape)),
    }
    env_state = shard_env_batch(first_states(train_env, key_env))
    return place_on_mesh(TrainState(
        params=params, opt_state=make_optimizer(cfg).init(params),
        obs_stats=normalize.init(obs_spec.shape), env_state=env_state, key=key_train,
        iteration=jnp.zeros((), jnp.int32),
    ))


def rollout(cfg: PPOConfig, env: Env, params: dict, obs_stats, env_state: State,
            key: jax.Array) -> tuple[State, Transition]:
    """Step the batched `env` for `cfg.rollout_length` steps with the stochastic policy."""
    policy = make_policy(cfg)

    def one_step(env_state, key_step):
        obs = env_state.obs
        policy_input = normalize.observations(cfg, obs_stats, obs)
        action = policy.sample(params["policy"], policy_input, key_step)
        log_prob = policy.log_prob(params["policy"], policy_input, action)
        next_state = env.step(env_state, action)
        nan_reset = next_state.metrics.get("nan_resets", jnp.zeros_like(next_state.reward))
        transition = Transition(obs, action, log_prob, next_state.reward, next_state.done,
                                next_state.truncated, next_state.extras["final_obs"], nan_reset)
        return next_state, transition

    return jax.lax.scan(one_step, env_state, jax.random.split(key, cfg.rollout_length))


def loss_fn(params: dict, cfg: PPOConfig, batch: dict) -> tuple[jax.Array, dict]:
    """Clipped surrogate + value MSE - entropy bonus on a minibatch of normalized obs."""
    return surrogate.actor_critic_loss(make_policy(cfg), value_network(cfg), params, batch,
                                       cfg.clip_epsilon, cfg.value_cost, cfg.entropy_cost)


def update(cfg: PPOConfig, params: dict, opt_state, batch: dict,
           key: jax.Array) -> tuple[dict, optax.OptState, dict]:
    """`cfg.num_epochs` shuffled passes of `cfg.num_minibatches` gradient steps over `batch`."""
    grad_fn = jax.grad(lambda p, minibatch: loss_fn(p, cfg, minibatch), has_aux=True)
    return surrogate.minibatch_epochs(grad_fn, make_optimizer(cfg), params, opt_state, batch,
                                      key, cfg.num_epochs, cfg.num_minibatches)


def train_iteration(cfg: PPOConfig, env: Env, state: TrainState) -> tuple[TrainState, dict]:
    """One PPO iteration on the batched training `env`: collect, estimate, update."""
    key, key_rollout, key_update = jax.random.split(state.key, 3)
    env_state, traj = rollout(cfg, env, state.params, state.obs_stats, state.env_state,
                              key_rollout)
    obs_stats = state.obs_stats
    if cfg.normalize_observations:
        obs_stats = normalize.update(obs_stats, traj.obs)
    obs = normalize.observations(cfg, obs_stats, traj.obs)
    next_obs = normalize.observations(cfg, obs_stats, traj.next_obs)
    value_apply = value_network(cfg).apply
    values = value_apply(state.params["value"], obs)[..., 0]
    next_values = value_apply(state.params["value"], next_obs)[..., 0]
    advantages, targets = compute_gae(
        traj.reward * cfg.reward_scaling, values, next_values, traj.done, traj.truncated,
        cfg.discount, cfg.gae_lambda)
    flat = lambda x: x.reshape((-1, *x.shape[2:]))  # (T, N, ...) -> (T*N, ...)
    batch = {"obs": flat(obs), "action": flat(traj.action), "log_prob": flat(traj.log_prob),
             "advantage": flat(advantages), "target": flat(targets)}
    params, opt_state, info = update(cfg, state.params, state.opt_state, batch, key_update)
    metrics = {
        **info,
        "train/reward": traj.reward.mean(),
        "train/episodes": traj.done.sum().astype(jnp.float32),
        "train/nan_resets": traj.nan_reset.sum(),
    }
    new_state = state.replace(params=params, opt_state=opt_state, obs_stats=obs_stats,
                              env_state=env_state, key=key, iteration=state.iteration + 1)
    return new_state, metrics


def act(cfg: PPOConfig, state: TrainState, obs: jax.Array,
        noise: jax.Array | None = None) -> jax.Array:
    """The trained policy's action: its mean, or with standard normal `noise` shaped like the
    action, the sample mean + std * noise."""
    obs = normalize.observations(cfg, state.obs_stats, obs)
    mean, log_std = make_policy(cfg).mean_and_log_std(state.params["policy"], obs)
    return mean if noise is None else mean + jnp.exp(log_std) * noise


controller, evaluate, program = acting.mean_or_sampled_policy(
    act, lambda state: state.params["policy"]["log_std"].shape)

Config = PPOConfig
