"""Imitation learning through differentiable physics (ILD) from ONE demonstration.

The policy is first cloned from the demonstration's actions for `bc_steps` gradient steps (as
ILD does), then trained through the simulator. `num_envs` envs start from fresh random initial
states and imitate the demonstration over `demo_length` steps in consecutive differentiable segments
of `rollout_length` steps, one gradient step per segment (the envs carry over between segments
and restart when the demo span is covered, when they diverge, or, with `restart_distance`, when
they stray from the demo). Each segment minimises ILD's dynamic per-state
objective: a chamfer distance between the agent's and the expert's observation trajectories
(each agent state to its nearest expert state at most `window` steps away in time, and each
expert state of the segment to its nearest agent state), on observations normalised by the
demo's statistics. The gradient flows through the physics into the policy; truncation windows,
per-step gradient clipping and remat (`robojax.diffsim`) keep it finite and memory flat.
No reward is used. With `bc_weight`, the cloning loss stays in the objective as an anchor.
"""

import dataclasses
import functools
from pathlib import Path
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from robojax import data as demo_data
from robojax import diffsim
from robojax.algos import acting
from robojax.algos.base import ENV_STEPS, RolloutConfig
from robojax.core.differentiable import differentiable
from robojax.core.env import Env
from robojax.core.types import ArraySpec, State
from robojax.core.wrappers import VmapWrapper, first_states, select_envs
from robojax.policies.diffusion import DenoiserConfig
from robojax.policies.flow import FlowPolicy
from robojax.policies.gaussian import GaussianPolicy
from robojax.rollout import evaluate_episodes

PROGRESS_UNIT, TRAIN_KEY, PLOT_KEY = ENV_STEPS, "train/loss", "eval/episode_reward"


@dataclasses.dataclass(frozen=True)
class ILDConfig(RolloutConfig):
    """ILD hyperparameters."""

    RENAMED: ClassVar[dict[str, str]] = {"horizon": "demo_length"}

    demo: Path | None = None
    """HDF5 demonstrations (robomimic layout); one episode of it is imitated."""
    demo_episode: int = 0
    """Which episode of the file to imitate."""
    num_envs: int = 16
    """Rollouts per gradient step, each from its own random initial state."""
    rollout_length: int = 64
    """Steps of each differentiable segment: one gradient step each."""
    demo_length: int | None = None
    """Steps of the demonstration imitated, in segments of rollout_length (envs reset after
    it); None: the demonstration up to the evaluated episode length, rounded down to a
    multiple of rollout_length."""
    learning_rate: float = 1e-3
    """Adam step size, decayed linearly to zero over the run."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clipping."""
    bc_steps: int = 500
    """Behaviour-cloning steps on the demonstration's actions before ILD (0: none)."""
    bc_weight: float = 0.0
    """Weight of the same behaviour-cloning loss added to ILD's objective during training
    (0: pure ILD): an anchor that holds the policy to the demonstrated actions at the demo's
    own states while the objective through the simulator shapes it everywhere else."""
    restart_distance: float | None = None
    """Restart an env mid-demo (from a fresh initial state, at the demo's start) when its
    states strayed from the demo by more than this on average (normalized RMS distance to the
    nearest demo state): a fallen agent far from an upright demo segment learns nothing from
    it. None: only restart at the end of the demo span."""
    window: int | None = None
    """Chamfer time window: a state is matched to the other trajectory's states at most this
    many steps away; None: rollout_length steps."""
    match_dims: tuple[int, ...] | None = None
    """Observation entries the chamfer compares (None: all). Goal-conditioned tasks keep the
    offset to the goal and drop absolute positions, so one demo serves every goal."""
    action_weight: float = 0.0
    """Weight of the same chamfer objective on actions (0: states only)."""
    policy: str = "gaussian"
    """Policy family: gaussian or flow (one-step shortcut flow), both tanh-squashed."""
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

    def validate(self) -> None:
        super().validate()
        self.gradients.validate()
        if self.demo is None:
            raise ValueError("ILD imitates one demonstration: pass --demo FILE.hdf5 (record one "
                             "with `robojax collect --env NAME --episodes 1 --out FILE.hdf5`).")
        if self.policy not in ("gaussian", "flow"):
            raise ValueError(f"ILD policy must be 'gaussian' or 'flow', got {self.policy!r}.")
        if self.bc_weight < 0:
            raise ValueError(f"bc_weight must be >= 0, got {self.bc_weight}.")
        if self.window is not None and self.window < 0:
            raise ValueError(f"window must be >= 0 or None, got {self.window}.")
        if self.demo_length is not None and (self.demo_length < self.rollout_length
                                             or self.demo_length % self.rollout_length):
            raise ValueError(f"demo_length {self.demo_length} must be a multiple of "
                             f"rollout_length {self.rollout_length}.")

    def match_window(self) -> int:
        return self.rollout_length if self.window is None else self.window


class Expert(struct.PyTreeNode):
    """The demonstration as ILD uses it: its first `demo_length` steps, edge-padded by the match
    window on both sides (so a segment's slice is static in size), and their statistics."""

    obs: jax.Array  # (demo_length + 2 * window, obs_dim)
    actions: jax.Array  # (demo_length + 2 * window, act_dim)
    obs_mean: jax.Array
    obs_scale: jax.Array
    episode_return: jax.Array  # over the demo's first `acting.episode_length` steps
    window: int = struct.field(pytree_node=False, default=0)

    @property
    def demo_length(self) -> int:
        return self.obs.shape[0] - 2 * self.window

    def unpadded(self) -> tuple[jax.Array, jax.Array]:
        end = self.window + self.demo_length
        return self.obs[self.window:end], self.actions[self.window:end]

    def segment(self, start: jax.Array, length: int) -> tuple[jax.Array, jax.Array]:
        """Demo steps start - window ... start + length + window - 1 (obs, actions)."""
        size = length + 2 * self.window
        take = lambda x: jax.lax.dynamic_slice_in_dim(x, start, size)  # noqa: E731
        return take(self.obs), take(self.actions)


@struct.dataclass
class TrainState:
    params: dict
    opt_state: optax.OptState
    obs_mean: jax.Array  # the demo's statistics normalize the policy's input
    obs_scale: jax.Array
    expert_return: jax.Array
    env_state: State  # where each env's next segment starts ...
    clock: jax.Array  # ... and the demo step it is compared with there, (num_envs,)
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
    if length < (cfg.demo_length or cfg.rollout_length):
        fix = (f"pass an --ild.demo-length of at most {length}" if cfg.demo_length else
               f"pass --ild.rollout-length {length}")
        raise demo_data.DemoFileError(
            f"the demonstration has {length} steps, fewer than "
            f"{'demo_length' if cfg.demo_length else 'rollout_length'} "
            f"{cfg.demo_length or cfg.rollout_length}; {fix} or record a longer one.")
    size = env.observation_spec.size
    if cfg.match_dims is not None and not all(0 <= d < size for d in cfg.match_dims):
        raise ValueError(f"match_dims {cfg.match_dims} must index the {size} observation "
                         f"entries of {demos.env_name!r} (0 to {size - 1}).")
    scored = acting.episode_length(cfg, env)  # steps an evaluation episode scores
    imitated = min(length, scored)
    demo_length = cfg.demo_length or max(cfg.rollout_length,
                                 imitated // cfg.rollout_length * cfg.rollout_length)
    obs = np.asarray(episode["obs"][:demo_length], np.float32)
    # What the env executed: sources such as a Gaussian PPO policy record unclipped samples.
    actions = np.clip(np.asarray(episode["actions"][:demo_length], np.float32), -1.0, 1.0)
    std = obs.std(0)
    scale = np.maximum(std, 0.1 * std.mean() + 1e-6)  # dims the demo barely moves stay sane
    pad = lambda x: jnp.asarray(np.pad(x, ((cfg.match_window(),) * 2, (0, 0)), "edge"))  # noqa
    return Expert(obs=pad(obs), actions=pad(actions), obs_mean=jnp.asarray(obs.mean(0)),
                  obs_scale=jnp.asarray(scale),
                  episode_return=jnp.asarray(
                      episode["rewards"][:scored].sum(), jnp.float32),
                  window=cfg.match_window())


def chamfer(agent: jax.Array, segment: jax.Array, window: int) -> tuple[jax.Array, jax.Array]:
    """ILD's chamfer terms for one env's trajectory `agent` (T, d) and the expert's steps around
    it, `segment` (T + 2 * window, d), whose step `window + t` is the expert's at the agent's
    step t: the mean over time of each agent state's distance (RMS over d) to its nearest expert
    state at most `window` steps away, and the same for the expert's T steps against the agent's.
    Both are zero when the trajectories coincide."""
    eps = 1e-8
    length = agent.shape[0]
    sq = jnp.mean((agent[:, None, :] - segment[None]) ** 2, axis=-1)  # (T, T + 2w)
    dist = jnp.sqrt(sq + eps) - jnp.sqrt(eps)  # smooth at 0, exactly 0 on a match
    lag = jnp.arange(segment.shape[0])[None, :] - jnp.arange(length)[:, None]
    dist = jnp.where((lag >= 0) & (lag <= 2 * window), dist, jnp.inf)
    return dist.min(1).mean(), dist[:, window:window + length].min(0).mean()


def ild_terms(agent_obs: jax.Array, agent_actions: jax.Array, expert: Expert, cfg: ILDConfig,
              start: jax.Array | int = 0) -> tuple[jax.Array, jax.Array]:
    """Per env (N,): ILD's objective on normalized observations (+ optional action chamfer) for
    agent segments (T, N, .) whose first steps are the demo's steps `start` (scalar or (N,)),
    and how far the agent's states strayed from the demo's (the agent-to-expert term)."""
    dims = slice(None) if cfg.match_dims is None else jnp.asarray(cfg.match_dims)
    norm = lambda x: ((x - expert.obs_mean) / expert.obs_scale)[..., dims]  # noqa: E731
    starts = jnp.broadcast_to(jnp.asarray(start), agent_obs.shape[1:2])
    obs, actions = jax.vmap(lambda t: expert.segment(t, agent_obs.shape[0]))(starts)
    per_env = jax.vmap(chamfer, in_axes=(1, 0, None))
    to_expert, to_agent = per_env(norm(agent_obs), norm(obs), expert.window)
    loss = to_expert + to_agent
    if cfg.action_weight:
        loss += cfg.action_weight * sum(per_env(agent_actions, actions, expert.window))
    return loss, to_expert


def ild_loss(agent_obs: jax.Array, agent_actions: jax.Array, expert: Expert, cfg: ILDConfig,
             start: jax.Array | int = 0) -> jax.Array:
    """ILD's objective (`ild_terms`), mean over envs."""
    return ild_terms(agent_obs, agent_actions, expert, cfg, start)[0].mean()


def make_policy(cfg: ILDConfig):
    if cfg.policy == "flow":
        return cfg.flow
    return GaussianPolicy(cfg.policy_hidden_sizes, cfg.activation, cfg.init_log_std)


def policy_action(cfg: ILDConfig, params: dict, obs_mean: jax.Array, obs_scale: jax.Array,
                  obs: jax.Array, key: jax.Array | None) -> jax.Array:
    """The actor on demo-normalized observations; `key=None` acts deterministically."""
    # tanh, not clipping, bounds the action: saturated actions keep a gradient.
    return jnp.tanh(unsquashed_action(cfg, params, obs_mean, obs_scale, obs, key))


def unsquashed_action(cfg: ILDConfig, params: dict, obs_mean: jax.Array,
                      obs_scale: jax.Array, obs: jax.Array, key: jax.Array | None) -> jax.Array:
    """`policy_action` before its tanh."""
    policy, x = make_policy(cfg), (obs - obs_mean) / obs_scale
    if cfg.policy == "flow":
        key = jax.random.PRNGKey(0) if key is None else key  # noise is the flow's input
        return policy.sample(params, x, key, steps=1, clip=False)[..., 0, :]
    return diffsim.unsquashed_action(policy, params, x, key)


def make_train_input(cfg: ILDConfig, env: Env) -> tuple[Env, Expert]:
    """The batched, differentiable env and the expert trajectory."""
    return VmapWrapper(differentiable(env), cfg.num_envs), load_expert(cfg, env)


# The clone is fitted before the tanh, to tanh^-1 of the demonstrated actions held within
# +-0.97 (tanh^-1 = 2.1): fitting +-1 after the tanh would push the policy into saturation,
# where tanh passes ILD's gradient no more.
CLONE_TARGET_BOUND = 0.97


def clone_loss(cfg: ILDConfig, params: dict, expert: Expert) -> jax.Array:
    """Mean-squared error to the demonstrated actions at the demo's states, before the
    policy's tanh."""
    obs, actions = expert.unpadded()
    targets = jnp.arctanh(jnp.clip(actions, -CLONE_TARGET_BOUND, CLONE_TARGET_BOUND))
    predicted = unsquashed_action(cfg, params, expert.obs_mean, expert.obs_scale, obs, None)
    return jnp.mean((predicted - targets) ** 2)


def clone_actions(cfg: ILDConfig, params: dict, expert: Expert) -> dict:
    """`cfg.bc_steps` Adam steps of `clone_loss`."""
    optimizer = optax.adam(cfg.learning_rate)
    loss = functools.partial(clone_loss, cfg, expert=expert)

    def step(carry, _):
        params, opt_state = carry
        updates, opt_state = optimizer.update(jax.grad(loss)(params), opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), length=cfg.bc_steps)
    return params


def restore_input(cfg: ILDConfig, env: Env) -> tuple[Env, Expert]:
    """What `init` needs to give a checkpoint's shapes, without reading the demonstration:
    zeros of a length the config allows in its place (the state's shapes do not depend on it)."""
    length = (cfg.demo_length or cfg.rollout_length) + 2 * cfg.match_window()
    obs, act = env.observation_spec.size, env.action_spec.size
    stand_in = Expert(obs=jnp.zeros((length, obs)), actions=jnp.zeros((length, act)),
                      obs_mean=jnp.zeros(obs), obs_scale=jnp.ones(obs),
                      episode_return=jnp.zeros(()), window=cfg.match_window())
    return VmapWrapper(differentiable(env), cfg.num_envs), stand_in


def init(cfg: ILDConfig, env: Env, train_input: tuple[Env, Expert], key: jax.Array
         ) -> TrainState:
    cfg.validate()
    key_policy, key_env, key_train = jax.random.split(key, 3)
    act_spec = env.action_spec if cfg.policy == "gaussian" else ArraySpec(
        (1, env.action_spec.size))
    params = make_policy(cfg).init(key_policy, env.observation_spec, act_spec)
    train_env, expert = train_input
    params = jax.jit(functools.partial(clone_actions, cfg))(params, expert)
    return TrainState(params=params, opt_state=make_optimizer(cfg).init(params),
                      obs_mean=expert.obs_mean, obs_scale=expert.obs_scale,
                      expert_return=expert.episode_return,
                      env_state=first_states(train_env, key_env),
                      clock=jnp.zeros(cfg.num_envs, jnp.int32), key=key_train,
                      iteration=jnp.zeros((), jnp.int32))


def make_optimizer(cfg: ILDConfig) -> optax.GradientTransformation:
    schedule = optax.linear_schedule(cfg.learning_rate, 0.0, cfg.num_iterations())
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(schedule))


def loss_fn(params: dict, cfg: ILDConfig, env: Env, expert: Expert, state: TrainState,
            key: jax.Array) -> tuple[jax.Array, tuple]:
    """ILD's objective for one segment of every env, from `state.env_state` at `state.clock`,
    plus `bc_weight` times the clone loss."""
    act = functools.partial(policy_action, cfg, params, state.obs_mean, state.obs_scale)
    first = jax.lax.stop_gradient(state.env_state)
    final, steps = diffsim.rollout(cfg.gradients, env, act, first, key, cfg.rollout_length)
    loss, strayed = ild_terms(steps.obs, steps.action, expert, cfg, state.clock)
    cloning = clone_loss(cfg, params, expert) if cfg.bc_weight else jnp.zeros(())
    return loss.mean() + cfg.bc_weight * cloning, (final, steps, strayed, cloning)


def train_iteration(cfg: ILDConfig, train_input: tuple[Env, Expert], state: TrainState
                    ) -> tuple[TrainState, dict]:
    env, expert = train_input
    key, key_reset, key_loss = jax.random.split(state.key, 3)
    (loss, (final, steps, strayed, cloning)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, cfg, env, expert, state, key_loss)
    params, opt_state, skipped = diffsim.guarded_update(make_optimizer(cfg), grads,
                                                        state.opt_state, state.params)
    clock = state.clock + cfg.rollout_length
    finite = jnp.all(jnp.isfinite(final.obs), axis=-1)  # a diverged env restarts, alone
    lost = jnp.zeros_like(finite) if cfg.restart_distance is None else (
        ~(strayed <= cfg.restart_distance))
    restart = (clock >= expert.demo_length) | ~finite | lost
    metrics = {"train/loss": loss, "train/clone_loss": cloning,
               "train/reward": steps.reward.mean(),
               "train/grad_norm": optax.global_norm(grads), "train/skipped_updates": skipped,
               "train/strayed": jnp.nanmean(strayed),
               "train/lost_envs": jnp.sum(lost & finite).astype(jnp.float32),
               "train/diverged_envs": jnp.sum(~finite).astype(jnp.float32)}
    return state.replace(params=params, opt_state=opt_state, key=key,
                         env_state=select_envs(restart, env.reset(key_reset), final),
                         clock=jnp.where(restart, 0, clock),
                         iteration=state.iteration + 1), metrics


def act(cfg: ILDConfig, state: TrainState, obs: jax.Array) -> jax.Array:
    """Deterministic action: what eval and export run."""
    return policy_action(cfg, state.params, state.obs_mean, state.obs_scale, obs, None)


_policy = acting.deterministic_policy(act)
controller, program = _policy.controller, _policy.program


def evaluate(cfg: ILDConfig, eval_env: Env, state: TrainState, key: jax.Array) -> dict:
    """Return of `num_eval_envs` episodes, and its ratio to the demonstration's return over
    as many steps."""
    metrics = evaluate_episodes(eval_env, controller(cfg, state), key, key)
    metrics["eval/expert_return"] = state.expert_return
    metrics["eval/return_ratio"] = metrics["eval/episode_reward"] / state.expert_return
    return metrics


Config = ILDConfig
