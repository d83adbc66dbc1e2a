"""Residual RL on a frozen behaviour-cloned policy (ResiP, Ankile et al. 2024), trained by PPO
in the batched simulator.

The cloned run's policy (any family) keeps acting exactly as it was cloned: its chunks, history
and receding horizon. A Gaussian MLP sees the normalized observation and the base policy's
action and adds a correction, `action = clip(base + residual_scale * residual, -1, 1)`. Its
output layer starts at zero, so training starts exactly at the base policy. PPO trains the
residual on every env step; the critic sees the normalized observation. `robojax export` writes
the base's program and the mean correction as a second program (see `PolicyProgram.correction`).

On a task with a mirror symmetry (`reflection()`, e.g. `detour`, `push-t`), `mirror=True` makes
the correction equivariant under it (`MirroredGaussian`): the correction of a mirrored state and
base action is the mirrored correction, so it can sharpen the base's choice between mirror-image
ways of solving the task but cannot learn to prefer one of them everywhere.

One simplification: all envs of the batch plan their chunks on the same steps (as evaluation
does), so an env that restarts mid-chunk finishes the old chunk in its new episode, with the
residual correcting it; its history restarts at once.
"""

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from robojax import algos
from robojax.algos import pretrained, surrogate
from robojax.algos.base import ENV_STEPS, RolloutConfig
from robojax.algos.returns import compute_gae
from robojax.core import normalize
from robojax.core.controller import Controller
from robojax.core.env import Env, display_name
from robojax.core.program import PolicyProgram
from robojax.core.reflection import Reflection, env_reflection
from robojax.core.sharding import place_on_mesh, shard_env_batch
from robojax.core.types import ArraySpec, State
from robojax.core.wrappers import first_states, wrap_for_training
from robojax.policies.gaussian import GaussianPolicy, MirroredGaussian
from robojax.policies.networks import MLP, compiled_init
from robojax.rollout import evaluate_episodes

PROGRESS_UNIT, TRAIN_KEY, PLOT_KEY = ENV_STEPS, "train/reward", "eval/success_rate"
FAMILIES = ("gaussian", "diffusion", "flow", "energy")


@dataclasses.dataclass(frozen=True)
class ResidualConfig(RolloutConfig):
    """PPO on a residual correction of a frozen behaviour-cloned policy."""

    init_from: Path | None = None
    """The `robojax train --algo bc` run whose policy is the frozen base."""
    num_envs: int = 256
    """Envs stepped in parallel."""
    num_timesteps: int = 2_000_000
    """Total env steps to train for."""
    rollout_length: int = 32
    """Steps per env per iteration."""
    residual_scale: float = 0.3
    """The residual's actions are multiplied by this before they are added to the base's
    (ResiP's 0.1 suits fine corrections; on detour 0.3 lets the residual steer round the
    wall)."""
    num_minibatches: int = 8
    """Minibatches per epoch."""
    num_epochs: int = 5
    """Passes over each batch."""
    learning_rate: float = 3e-4
    """Adam step size of the residual and the critic."""
    discount: float = 0.99
    """Reward discount factor gamma."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_epsilon: float = 0.2
    """PPO ratio clipping."""
    entropy_cost: float = 0.0
    """Weight of the entropy bonus."""
    value_cost: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clipping."""
    reward_scaling: float = 1.0
    """Rewards are multiplied by this before learning."""
    normalize_observations: bool = True
    """Keep running observation statistics and normalize the residual's and critic's inputs."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Residual and critic MLP widths."""
    init_log_std: float = -0.5
    """Initial log std of the residual (before `residual_scale`)."""
    mirror: bool = False
    """Make the correction equivariant under the task's mirror symmetry (the env's
    `reflection()`): it keeps the base policy's split between mirror-image ways round, where
    an unconstrained correction may collapse onto one."""

    def validate(self) -> None:
        super().validate()
        if self.residual_scale <= 0:
            raise ValueError(f"residual_scale must be > 0, got {self.residual_scale}.")
        batch = self.steps_per_iteration()
        if batch % self.num_minibatches:
            raise ValueError(f"num_envs * rollout_length = {batch} is not divisible by "
                             f"num_minibatches = {self.num_minibatches}; change one of them.")


class TrainInput(NamedTuple):
    """The batched training env, the cloned run (its config and train state) and, with
    `mirror=True`, the task's reflection (`task_mirror`)."""

    env: Env
    base_cfg: Any
    base_state: Any
    mirror: Reflection | None = None


@struct.dataclass
class TrainState:
    params: dict  # {"policy": the residual Gaussian, "value": the critic}
    opt_state: optax.OptState
    obs_stats: normalize.RunningStats
    base: Any  # the cloned run's train state, frozen (its optimizer dropped)
    base_memory: Any  # the base controller's carry: history, chunk in progress
    env_state: State
    key: jax.Array
    iteration: jax.Array
    base_cfg: Any = struct.field(pytree_node=False, default=None)
    mirror: Reflection | None = struct.field(pytree_node=False, default=None)  # as tuples


class Transition(NamedTuple):
    obs: jax.Array
    base_action: jax.Array
    residual: jax.Array
    log_prob: jax.Array
    reward: jax.Array
    done: jax.Array
    truncated: jax.Array
    next_obs: jax.Array  # before any autoreset


def make_policy(cfg: ResidualConfig, mirror: Reflection | None = None) -> GaussianPolicy:
    """The residual's Gaussian; mirror-equivariant when given the task's `mirror`."""
    kwargs = dict(hidden_sizes=cfg.hidden_sizes, activation="tanh",
                  init_log_std=cfg.init_log_std)
    if mirror is None:
        return GaussianPolicy(**kwargs)
    return MirroredGaussian(**kwargs, action_map=mirror.action_map)


def task_mirror(cfg: ResidualConfig, env: Env) -> Reflection | None:
    """The env's reflection as nested tuples (a static field) when `cfg.mirror`, checked."""
    if not cfg.mirror:
        return None
    found = env_reflection(env, "--residual.mirror")
    action_map = np.asarray(found.action_map)
    if not (np.all(np.isin(action_map, (-1.0, 0.0, 1.0)))
            and np.all(np.abs(action_map).sum(axis=1) == 1)):
        raise ValueError(f"--residual.mirror needs a reflection of actions that only permutes "
                         f"them and flips signs; {display_name(env)}'s is "
                         f"{action_map.tolist()}. Drop --residual.mirror for this env.")
    as_tuples = lambda m: tuple(map(tuple, np.asarray(m, np.float32).tolist()))
    return Reflection(as_tuples(found.obs_map), as_tuples(found.action_map))


def value_network(cfg: ResidualConfig) -> MLP:
    return MLP(cfg.hidden_sizes, 1, "tanh")


def make_optimizer(cfg: ResidualConfig) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.learning_rate))


def base_controller(state: TrainState) -> Controller:
    """The cloned policy, acting as its own algorithm would."""
    return algos.get("bc").controller(state.base_cfg, state.base)


def base_step(base: Controller, memory, env_state: State, key: jax.Array):
    """The base policy's action in [-1, 1] (as an exported plan delivers it) and its carry."""
    action, memory = base.step(memory, env_state, key)
    return jnp.clip(action, -1.0, 1.0), memory


def make_train_input(cfg: ResidualConfig, env: Env) -> TrainInput:
    """The cloned run, checked, and the batched, autoresetting training env."""
    mirror = task_mirror(cfg, env)  # a mirror the env lacks is refused before the clone loads
    cloned = pretrained.load_cloned(cfg.init_from, env, FAMILIES, "residual")
    train_env = wrap_for_training(env, cfg.num_envs, episode_length=cfg.episode_length)
    return TrainInput(train_env, cloned.cfg, cloned.state.replace(params=None, opt_state=None),
                      mirror)


def init(cfg: ResidualConfig, env: Env, data: TrainInput, key: jax.Array) -> TrainState:
    """A residual whose output layer is zero (the base policy exactly), a critic, the base's
    state and a reset batch of envs."""
    cfg.validate()
    key_policy, key_value, key_env, key_train = jax.random.split(key, 4)
    obs_size, act_size = env.observation_spec.size, env.action_spec.size
    mirror = data.mirror
    policy = make_policy(cfg, mirror).init(key_policy, ArraySpec((obs_size + act_size,)),
                                           env.action_spec)
    last = f"Dense_{len(cfg.hidden_sizes)}"
    policy["net"]["params"][last] = jax.tree.map(jnp.zeros_like, policy["net"]["params"][last])
    params = {"policy": policy,
              "value": compiled_init(value_network(cfg).init)(key_value, jnp.zeros((obs_size,)))}
    env_state = shard_env_batch(first_states(data.env, key_env))
    state = TrainState(params=params, opt_state=make_optimizer(cfg).init(params),
                       obs_stats=normalize.init((obs_size,)), base=data.base_state,
                       base_memory=None, env_state=env_state, key=key_train,
                       iteration=jnp.zeros((), jnp.int32), base_cfg=data.base_cfg,
                       mirror=mirror)
    return place_on_mesh(state.replace(base_memory=base_controller(state).init(env_state)))


def residual_input(cfg: ResidualConfig, obs_stats, obs: jax.Array, base_action: jax.Array,
                   mirror: Reflection | None = None) -> jax.Array:
    """The residual's input: the normalized observation and the base's action; with a
    `mirror`, stacked on axis -2 with the input of their mirror images."""
    inputs = jnp.concatenate([normalize.observations(cfg, obs_stats, obs), base_action], axis=-1)
    if mirror is None:
        return inputs
    image = residual_input(cfg, obs_stats, obs @ jnp.asarray(mirror.obs_map).T,
                           base_action @ jnp.asarray(mirror.action_map).T)
    return jnp.stack([inputs, image], axis=-2)


def combine(cfg: ResidualConfig, base_action: jax.Array, residual: jax.Array) -> jax.Array:
    return jnp.clip(base_action + cfg.residual_scale * residual, -1.0, 1.0)


def rollout(cfg: ResidualConfig, env: Env, state: TrainState, key: jax.Array):
    """Step the batched `env` for `cfg.rollout_length` steps: base action, sampled residual."""
    policy, base = make_policy(cfg, state.mirror), base_controller(state)

    def one_step(carry, key_step):
        env_state, memory = carry
        key_base, key_residual = jax.random.split(key_step)
        base_action, memory = base_step(base, memory, env_state, key_base)
        inputs = residual_input(cfg, state.obs_stats, env_state.obs, base_action, state.mirror)
        residual = policy.sample(state.params["policy"], inputs, key_residual)
        log_prob = policy.log_prob(state.params["policy"], inputs, residual)
        nxt = env.step(env_state, combine(cfg, base_action, residual))
        transition = Transition(env_state.obs, base_action, residual, log_prob, nxt.reward,
                                nxt.done, nxt.truncated, nxt.extras["final_obs"])
        return (nxt, memory), transition

    return jax.lax.scan(one_step, (state.env_state, state.base_memory),
                        jax.random.split(key, cfg.rollout_length))


def train_iteration(cfg: ResidualConfig, data: TrainInput, state: TrainState
                    ) -> tuple[TrainState, dict]:
    """One PPO iteration of the residual: collect, estimate, update."""
    key, key_rollout, key_update = jax.random.split(state.key, 3)
    (env_state, memory), traj = rollout(cfg, data.env, state, key_rollout)
    obs_stats = state.obs_stats
    if cfg.normalize_observations:
        obs_stats = normalize.update(obs_stats, traj.obs)
    obs = normalize.observations(cfg, obs_stats, traj.obs)
    value_apply = lambda x: value_network(cfg).apply(state.params["value"], x)[..., 0]
    advantages, targets = compute_gae(
        traj.reward * cfg.reward_scaling, value_apply(obs),
        value_apply(normalize.observations(cfg, obs_stats, traj.next_obs)), traj.done,
        traj.truncated, cfg.discount, cfg.gae_lambda)
    flat = lambda x: x.reshape((-1, *x.shape[2:]))
    batch = {"obs": flat(residual_input(cfg, obs_stats, traj.obs, traj.base_action,
                                        state.mirror)),
             "value_obs": flat(obs), "action": flat(traj.residual),
             "log_prob": flat(traj.log_prob), "advantage": flat(advantages),
             "target": flat(targets)}
    loss = lambda p, b: surrogate.actor_critic_loss(
        make_policy(cfg, state.mirror), value_network(cfg), p, b, cfg.clip_epsilon, cfg.value_cost,
        cfg.entropy_cost)
    params, opt_state, info = surrogate.minibatch_epochs(
        jax.grad(loss, has_aux=True), make_optimizer(cfg), state.params, state.opt_state, batch,
        key_update, cfg.num_epochs, cfg.num_minibatches)
    metrics = {**info, "train/reward": traj.reward.mean(),
               "train/episodes": traj.done.sum().astype(jnp.float32),
               "train/residual_norm": jnp.linalg.norm(cfg.residual_scale * traj.residual,
                                                      axis=-1).mean()}
    return state.replace(params=params, opt_state=opt_state, obs_stats=obs_stats,
                         env_state=env_state, base_memory=memory, key=key,
                         iteration=state.iteration + 1), metrics


def controller(cfg: ResidualConfig, state: TrainState) -> Controller:
    """The base policy plus the residual's mean correction on every step."""
    policy, base = make_policy(cfg, state.mirror), base_controller(state)

    def step(memory, env_state, key):
        base_action, memory = base_step(base, memory, env_state, key)
        inputs = residual_input(cfg, state.obs_stats, env_state.obs, base_action, state.mirror)
        return combine(cfg, base_action, policy.mode(state.params["policy"], inputs)), memory

    return Controller(init=base.init, step=step)


def evaluate(cfg: ResidualConfig, eval_env: Env, state: TrainState, key: jax.Array) -> dict:
    """Return, reward terms and (where the env reports it) success over full episodes."""
    key_reset, key_act = jax.random.split(key)
    return evaluate_episodes(eval_env, controller(cfg, state), key_reset, key_act,
                             track_success=None)


def program(cfg: ResidualConfig, state: TrainState) -> PolicyProgram:
    """The base run's program, plus the residual's mean correction as its per-step
    `correction`: the runtime plans with the base and corrects each action as it executes."""
    policy = make_policy(cfg, state.mirror)
    base = algos.get("bc").program(state.base_cfg, state.base)

    def correction(obs, planned):
        inputs = residual_input(cfg, state.obs_stats, obs, planned, state.mirror)
        return combine(cfg, planned, policy.mode(state.params["policy"], inputs))

    sampler = {**base.sampler, "correction": {"algo": "residual",
                                              "residual_scale": cfg.residual_scale}}
    return dataclasses.replace(base, sampler=sampler, correction=correction)

Config = ResidualConfig
