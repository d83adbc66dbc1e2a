"""Imitation learning through differentiable physics (ILD) from ONE demonstration.

Each iteration resets `num_envs` envs from fresh random initial states, rolls the policy out
`rollout_length` steps through the differentiable simulator, and minimises ILD's dynamic
per-state objective: a chamfer distance between the agent's and the expert's observation
trajectories (each agent state to its nearest expert state within a time `window`, and each
expert state to its nearest agent state), on observations normalised by the demo's statistics.
The gradient flows through the physics into the policy; truncation windows, per-step gradient
clipping and remat (`robojax.algos.diffsim`) keep it finite and memory flat. No reward is used.
"""

import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from robojax import data as demo_data
from robojax.algos import diffsim
from robojax.algos.apg import make_eval_env  # noqa: F401 - same evaluation as APG
from robojax.core.env import Env
from robojax.core.types import ArraySpec
from robojax.core.wrappers import VmapWrapper
from robojax.policies.diffusion import DenoiserConfig
from robojax.policies.flow import FlowPolicy
from robojax.policies.gaussian import GaussianPolicy
from robojax.rollout import Controller, evaluate_episodes, stateless

PROGRESS_UNIT = "env_steps"
PLOT_KEY = "eval/episode_reward"


@dataclasses.dataclass(frozen=True)
class ILDConfig:
    """ILD hyperparameters."""

    demo: Path | None = None
    """HDF5 demonstrations (robomimic layout); one episode of it is imitated."""
    demo_episode: int = 0
    """Which episode of the file to imitate."""
    num_envs: int = 64
    """Rollouts per gradient step, each from its own random initial state."""
    num_timesteps: int = 1_000_000
    """Total env steps to train for."""
    rollout_length: int = 128
    """Steps of each imitation rollout (at most the demonstration's length)."""
    learning_rate: float = 1e-3
    """Adam step size."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clipping."""
    window: int | None = None
    """Chamfer time window: a state is matched to the other trajectory's states at most this
    many steps away; None matches against the whole trajectory (as ILD)."""
    action_weight: float = 0.0
    """Weight of the same chamfer objective on actions (0: states only)."""
    policy: str = "gaussian"
    """Policy family: gaussian (tanh-squashed) or flow (one-step shortcut flow)."""
    policy_hidden_sizes: tuple[int, ...] = (64, 64)
    """Gaussian actor MLP widths."""
    activation: str = "elu"
    """Gaussian actor nonlinearity."""
    init_log_std: float = -1.5
    """Initial log std of the Gaussian actor's noise (before the tanh squash)."""
    flow: FlowPolicy = FlowPolicy(denoiser=DenoiserConfig(network="mlp", mlp_hidden=(128, 128)))
    """Settings of the flow actor (sampled with one Euler step, differentiable)."""
    gradients: diffsim.GradientConfig = diffsim.GradientConfig(step_grad_clip=1.0)
    """Truncation, contact scaling, per-step clipping and remat of the gradient."""
    episode_length: int | None = None
    """Evaluation episode length; None uses the env config's."""
    num_evals: int = 10
    """Evaluations over the run, plus one before training."""
    num_eval_envs: int = 128
    """Parallel evaluation episodes (deterministic policy)."""

    def steps_per_iteration(self) -> int:
        return self.num_envs * self.rollout_length

    def num_iterations(self) -> int:
        return max(1, -(-self.num_timesteps // self.steps_per_iteration()))

    def validate(self) -> None:
        self.gradients.validate()
        if self.demo is None:
            raise ValueError("ILD imitates one demonstration: pass --demo FILE.hdf5 (record one "
                             "with `robojax collect --env NAME --episodes 1 --out FILE.hdf5`).")
        if self.policy not in ("gaussian", "flow"):
            raise ValueError(f"ILD policy must be 'gaussian' or 'flow', got {self.policy!r}.")
        if self.window is not None and self.window < 0:
            raise ValueError(f"window must be >= 0 or None, got {self.window}.")


class Expert(struct.PyTreeNode):
    """The demonstration as ILD uses it: the first `rollout_length` steps and their stats."""

    obs: jax.Array  # (T, obs_dim)
    actions: jax.Array  # (T, act_dim)
    obs_mean: jax.Array
    obs_scale: jax.Array
    episode_return: jax.Array  # of the whole demonstrated episode


@struct.dataclass
class TrainState:
    params: dict
    opt_state: optax.OptState
    obs_mean: jax.Array  # the demo's statistics normalize the policy's input
    obs_scale: jax.Array
    expert_return: jax.Array
    key: jax.Array
    iteration: jax.Array


def load_expert(cfg: ILDConfig, env: Env) -> Expert:
    """The demonstrated episode, checked against `env` (clear errors on a mismatch)."""
    demos = demo_data.load(cfg.demo)
    demo_data.check_fits(demos, env)
    if not 0 <= cfg.demo_episode < demos.num_episodes:
        raise demo_data.DemoFileError(f"{cfg.demo} holds {demos.num_episodes} episode(s); "
                                      f"demo_episode {cfg.demo_episode} does not exist.")
    episode = demos.episode(cfg.demo_episode)
    length = len(episode["actions"])
    if length < cfg.rollout_length:
        raise demo_data.DemoFileError(
            f"the demonstration has {length} steps, fewer than rollout_length "
            f"{cfg.rollout_length}; pass --ild.rollout-length {length} or record a longer one.")
    obs = np.asarray(episode["obs"][: cfg.rollout_length], np.float32)
    std = obs.std(0)
    scale = np.maximum(std, 0.1 * std.mean() + 1e-6)  # dims the demo barely moves stay sane
    return Expert(obs=jnp.asarray(obs), actions=jnp.asarray(
        episode["actions"][: cfg.rollout_length], jnp.float32), obs_mean=jnp.asarray(obs.mean(0)),
        obs_scale=jnp.asarray(scale), episode_return=jnp.asarray(episode["rewards"].sum()))


def chamfer(agent: jax.Array, expert: jax.Array, window: int | None) -> jax.Array:
    """Symmetric chamfer distance between trajectories `agent` (T, N, d) and `expert` (T', d):
    mean over time of each state's distance (RMS over d) to its nearest state of the other
    trajectory at most `window` steps away; (N,). Zero when the trajectories coincide."""
    eps = 1e-8
    sq = jnp.mean((agent[:, :, None, :] - expert[None, None]) ** 2, axis=-1)  # (T, N, T')
    dist = jnp.sqrt(sq + eps) - jnp.sqrt(eps)  # smooth at 0, exactly 0 on a match
    if window is not None:
        t, s = jnp.arange(agent.shape[0]), jnp.arange(expert.shape[0])
        dist = jnp.where(jnp.abs(t[:, None] - s[None, :])[:, None, :] <= window, dist, jnp.inf)
    return dist.min(2).mean(0) + dist.min(0).mean(-1)


def ild_loss(agent_obs: jax.Array, agent_actions: jax.Array, expert: Expert,
             cfg: ILDConfig) -> jax.Array:
    """ILD's objective on normalized observations (+ optional action chamfer), mean over envs."""
    norm = lambda x: (x - expert.obs_mean) / expert.obs_scale  # noqa: E731
    loss = chamfer(norm(agent_obs), norm(expert.obs), cfg.window)
    if cfg.action_weight:
        loss += cfg.action_weight * chamfer(agent_actions, expert.actions, cfg.window)
    return loss.mean()


def make_policy(cfg: ILDConfig):
    if cfg.policy == "flow":
        return cfg.flow
    return GaussianPolicy(cfg.policy_hidden_sizes, cfg.activation, cfg.init_log_std)


def policy_action(cfg: ILDConfig, params: dict, state: TrainState, obs: jax.Array,
                  key: jax.Array | None) -> jax.Array:
    """The actor on demo-normalized observations; `key=None` acts deterministically."""
    policy, x = make_policy(cfg), (obs - state.obs_mean) / state.obs_scale
    if cfg.policy == "flow":
        key = jax.random.PRNGKey(0) if key is None else key  # noise is the flow's input
        return policy.sample(params, x, key, steps=1)[..., 0, :]
    return diffsim.squashed_action(policy, params, x, key)


def make_train_input(cfg: ILDConfig, env: Env) -> tuple[Env, Expert]:
    """The batched, differentiable env (reset every iteration) and the expert trajectory."""
    return VmapWrapper(diffsim.differentiable(env), cfg.num_envs), load_expert(cfg, env)


def init(cfg: ILDConfig, env: Env, key: jax.Array) -> TrainState:
    cfg.validate()
    key_policy, key_train = jax.random.split(key)
    act_spec = env.action_spec if cfg.policy == "gaussian" else ArraySpec(
        (1, env.action_spec.size))
    params = make_policy(cfg).init(key_policy, env.observation_spec, act_spec)
    expert = load_expert(cfg, env)
    return TrainState(params=params, opt_state=make_optimizer(cfg).init(params),
                      obs_mean=expert.obs_mean, obs_scale=expert.obs_scale,
                      expert_return=expert.episode_return, key=key_train,
                      iteration=jnp.zeros((), jnp.int32))


def make_optimizer(cfg: ILDConfig) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.learning_rate))


def loss_fn(params: dict, cfg: ILDConfig, env: Env, expert: Expert, state: TrainState,
            key: jax.Array) -> tuple[jax.Array, diffsim.Step]:
    key_reset, key_rollout = jax.random.split(key)
    first = env.reset(key_reset)
    act = functools.partial(policy_action, cfg, params, state)
    _, steps = diffsim.rollout(cfg.gradients, env, act, first, key_rollout, cfg.rollout_length)
    return ild_loss(steps.obs, steps.action, expert, cfg), steps


def train_iteration(cfg: ILDConfig, train_input: tuple[Env, Expert], state: TrainState
                    ) -> tuple[TrainState, dict]:
    env, expert = train_input
    key, key_loss = jax.random.split(state.key)
    (loss, steps), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, cfg, env, expert, state, key_loss)
    params, opt_state, skipped = diffsim.guarded_update(make_optimizer(cfg), grads,
                                                        state.opt_state, state.params)
    metrics = {"train/loss": loss, "train/reward": steps.reward.mean(),
               "train/grad_norm": optax.global_norm(grads), "train/skipped_updates": skipped}
    return state.replace(params=params, opt_state=opt_state, key=key,
                         iteration=state.iteration + 1), metrics


def act(cfg: ILDConfig, state: TrainState, obs: jax.Array) -> jax.Array:
    """Deterministic action: what eval and export run."""
    return policy_action(cfg, state.params, state, obs, None)


def controller(cfg: ILDConfig, state: TrainState) -> Controller:
    return stateless(functools.partial(act, cfg, state))


def evaluate(cfg: ILDConfig, eval_env: Env, state: TrainState, key: jax.Array) -> dict:
    """Return of `num_eval_envs` episodes, and its ratio to the demonstration's return."""
    metrics = evaluate_episodes(eval_env, controller(cfg, state), key, key)
    metrics["eval/expert_return"] = state.expert_return
    metrics["eval/return_ratio"] = metrics["eval/episode_reward"] / state.expert_return
    return metrics


Config = ILDConfig
