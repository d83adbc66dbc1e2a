"""RL fine-tuning of a behaviour-cloned generative policy in the batched simulator: ReinFlow
(flow policies) and DPPO (diffusion policies), started from a `--algo bc` run (`--init-from`).

Drawing a chunk is a chain of Gaussian transitions x_{k+1} ~ N(mean_k(x_k), std_k^2) from
x_0 ~ N(0, I): the policy's own sampler step gives the mean, and the std makes each step a
proper Gaussian, so the chain has an exact log-likelihood.

- ReinFlow (Zhang et al. 2025): the mean is an Euler step of the flow; a small learned noise
  network gives the std (bounded to [min_std, max_std]); the ratio is the chain's joint one.
- DPPO (Ren et al. 2024): the mean is the diffusion policy's DDIM (or DDPM posterior) step; the
  std is fixed at `min_std` (at least the posterior's); only the last `ft_denoising_steps`
  steps are trained, the ones before keep the cloned weights; one clipped ratio per step.

A decision plans a chunk from the observation history and executes its `n_action_steps`
actions; its reward is their discounted sum. PPO runs over decisions: GAE with the discount
raised to the chunk's length, a critic on the observation history (trained alone for the first
`critic_warmup_iterations`), small actor learning rates. Evaluation, video and export play the
chain's mean: the cloned policy's own deterministic sampler with the fine-tuned weights.
"""

import dataclasses
from pathlib import Path
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from robojax.algos import pretrained, surrogate
from robojax.algos.base import ENV_STEPS, RolloutConfig
from robojax.algos.returns import compute_gae
from robojax.core.controller import Controller
from robojax.core.env import Env
from robojax.core.program import NoiseSpec, PolicyProgram
from robojax.core.sharding import place_on_mesh, shard_env_batch
from robojax.core.types import State
from robojax.core.wrappers import first_states, wrap_for_training
from robojax.policies import ChunkParams, DiffusionPolicy, FlowPolicy
from robojax.policies.chunking import ChunkConfig, chunk_controller, encode_history
from robojax.policies.networks import MLP, compiled_init
from robojax.rollout import evaluate_episodes

PROGRESS_UNIT, TRAIN_KEY, PLOT_KEY = ENV_STEPS, "train/reward", "eval/success_rate"


@dataclasses.dataclass(frozen=True)
class FinetuneConfig(RolloutConfig):
    """PPO over the sampling chain of a cloned generative policy."""

    FAMILY: ClassVar[str] = "flow"

    init_from: Path | None = None
    """The `robojax train --algo bc` run whose policy is fine-tuned."""
    num_envs: int = 256
    """Envs stepped in parallel."""
    num_timesteps: int = 2_000_000
    """Total env steps to train for."""
    rollout_length: int = 64
    """Env steps per env per iteration: a multiple of the cloned run's n_action_steps."""
    inference_steps: int | None = None
    """Steps of the sampling chain (Euler or denoising); None: the algorithm's default."""
    num_minibatches: int = 8
    """Minibatches per epoch."""
    num_epochs: int = 10
    """Passes over each batch of decisions."""
    actor_learning_rate: float = 1e-4
    """Adam step size of the policy's weights."""
    critic_learning_rate: float = 1e-3
    """Adam step size of the critic."""
    critic_warmup_iterations: int = 3
    """Iterations at the start that train the critic alone."""
    discount: float = 0.99
    """Per env step; a decision discounts by discount ** n_action_steps."""
    gae_lambda: float = 0.95
    """GAE lambda over decisions."""
    clip_epsilon: float = 0.01
    """PPO ratio clipping."""
    value_cost: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clipping per parameter group."""
    reward_scaling: float = 1.0
    """Rewards are multiplied by this before learning."""
    value_hidden_sizes: tuple[int, ...] = (256, 256)
    """Critic MLP widths."""
    min_std: float = 0.05
    """Smallest std of a chain transition."""

    def validate(self) -> None:
        super().validate()
        if self.min_std <= 0:
            raise ValueError(f"min_std must be > 0 (the chain's log-likelihood needs noise), "
                             f"got {self.min_std}.")

    def chain_steps(self, policy) -> int:
        return self.inference_steps or policy.inference_steps

    def trained_steps(self, steps: int) -> int:
        """How many of the chain's last steps are fine-tuned."""
        return steps


@dataclasses.dataclass(frozen=True)
class ReinFlowConfig(FinetuneConfig):
    """ReinFlow: PPO over a flow policy's Euler chain with a learned noise network."""

    FAMILY: ClassVar[str] = "flow"

    inference_steps: int | None = 4
    """Euler steps of the chain (ReinFlow works with few, even 1)."""
    max_std: float = 0.15
    """Largest std the noise network may give."""
    noise_learning_rate: float = 3e-4
    """Adam step size of the noise network."""
    noise_hidden_sizes: tuple[int, ...] = (128, 128)
    """Noise network MLP widths."""

    def validate(self) -> None:
        super().validate()
        if self.max_std < self.min_std:
            raise ValueError(f"max_std ({self.max_std}) must be >= min_std ({self.min_std}).")


@dataclasses.dataclass(frozen=True)
class DPPOConfig(FinetuneConfig):
    """DPPO: PPO over the last denoising steps of a diffusion policy."""

    FAMILY: ClassVar[str] = "diffusion"

    ft_denoising_steps: int = 5
    """Fine-tuned steps at the end of the chain; the earlier ones keep the cloned weights."""
    sampler: str | None = None
    """"ddim" or "ddpm" step means; None: the cloned policy's sampler."""
    min_std: float = 0.1
    """Smallest std of a fine-tuned step (DDIM's steps have exactly this std)."""

    def validate(self) -> None:
        super().validate()
        if self.ft_denoising_steps < 1:
            raise ValueError(f"ft_denoising_steps must be >= 1, got {self.ft_denoising_steps}.")
        if self.sampler not in (None, "ddim", "ddpm"):
            raise ValueError(f"sampler must be 'ddim' or 'ddpm', got {self.sampler!r}.")

    def trained_steps(self, steps: int) -> int:
        return min(self.ft_denoising_steps, steps)


@dataclasses.dataclass(frozen=True)
class Cloned:
    """What the cloned run fixes: its policy family's settings, its chunking, the action size."""

    policy: FlowPolicy | DiffusionPolicy
    chunks: ChunkConfig
    action_size: int


class TrainInput(NamedTuple):
    """The batched training env, the cloned run's settings and its train state (read by
    `init` only)."""

    env: Env
    spec: Cloned
    cloned_state: object


@struct.dataclass
class TrainState:
    params: dict  # {"policy": ChunkParams, "noise": noise network (ReinFlow), "value": critic}
    frozen: ChunkParams  # the cloned weights (DPPO's untrained steps)
    opt_state: optax.OptState
    obs_mean: jax.Array
    obs_std: jax.Array
    env_state: State
    history: jax.Array  # (num_envs, To, obs_dim), oldest first
    key: jax.Array
    iteration: jax.Array
    spec: Cloned = struct.field(pytree_node=False, default=None)


class Decision(NamedTuple):
    cond: jax.Array  # normalized, flattened observation history
    chain: jax.Array  # (K' + 1, H, A): the start of the trained steps and their draws
    log_prob: jax.Array  # (K', H, A) element log densities
    reward: jax.Array  # discounted sum over the executed actions
    done: jax.Array
    truncated: jax.Array
    next_cond: jax.Array  # the history the decision reached, before any autoreset


def value_network(cfg: FinetuneConfig) -> MLP:
    return MLP(cfg.value_hidden_sizes, 1, "tanh")


def noise_network(cfg: ReinFlowConfig, chunk_size: int) -> MLP:
    return MLP(cfg.noise_hidden_sizes, chunk_size, "tanh", out_scale=0.01)


def _optimizer(cfg: FinetuneConfig) -> optax.GradientTransformation:
    def adam(lr):
        return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(lr))

    rates = {"policy": cfg.actor_learning_rate, "value": cfg.critic_learning_rate,
             "noise": getattr(cfg, "noise_learning_rate", cfg.actor_learning_rate)}
    return optax.multi_transform({name: adam(lr) for name, lr in rates.items()}, _groups)


def _groups(params: dict) -> dict:
    """Each leaf labelled by its top-level group: policy, noise or value."""
    return {name: jax.tree.map(lambda _, name=name: name, tree) for name, tree in params.items()}


def make_train_input(cfg: FinetuneConfig, env: Env) -> TrainInput:
    """The cloned run, checked, and the batched, autoresetting training env."""
    algo = "reinflow" if cfg.FAMILY == "flow" else "dppo"
    cloned = pretrained.load_cloned(cfg.init_from, env, (cfg.FAMILY,), algo)
    chunks = cloned.cfg.chunks
    if cfg.rollout_length % chunks.n_action_steps:
        raise ValueError(f"rollout_length ({cfg.rollout_length}) must be a multiple of the cloned "
                         f"run's n_action_steps ({chunks.n_action_steps}): a decision executes "
                         "a whole chunk.")
    decisions = cfg.num_envs * cfg.rollout_length // chunks.n_action_steps
    if decisions % cfg.num_minibatches:
        raise ValueError(f"the {decisions} decisions per iteration (num_envs * rollout_length / "
                         f"n_action_steps) are not divisible by num_minibatches = "
                         f"{cfg.num_minibatches}; change one of them.")
    train_env = wrap_for_training(env, cfg.num_envs, episode_length=cfg.episode_length)
    spec = Cloned(cloned.cfg.make_policy(), chunks, env.action_spec.size)
    return TrainInput(train_env, spec, cloned.state)


def init(cfg: FinetuneConfig, env: Env, data: TrainInput, key: jax.Array) -> TrainState:
    """The cloned EMA weights (to train, and a frozen copy), a noise network (ReinFlow), a
    fresh critic and a reset batch of envs."""
    cfg.validate()
    key_value, key_noise, key_env, key_train = jax.random.split(key, 4)
    cloned, spec = data.cloned_state, data.spec
    cond_size = cloned.obs_mean.shape[-1] * spec.chunks.n_obs_steps
    weights = jax.tree.map(jnp.asarray, cloned.ema_params)
    params = {"policy": weights,
              "value": compiled_init(value_network(cfg).init)(key_value, jnp.zeros((cond_size,)))}
    if isinstance(cfg, ReinFlowConfig):
        chunk_size = spec.chunks.horizon * spec.action_size
        params["noise"] = compiled_init(noise_network(cfg, chunk_size).init)(
            key_noise, jnp.zeros((cond_size + 1 + chunk_size,)))
    env_state = shard_env_batch(first_states(data.env, key_env))
    history = jnp.repeat(env_state.obs[:, None], spec.chunks.n_obs_steps, axis=1)
    return place_on_mesh(TrainState(
        params=params, frozen=jax.tree.map(jnp.copy, weights),
        opt_state=_optimizer(cfg).init(params), obs_mean=cloned.obs_mean, obs_std=cloned.obs_std,
        env_state=env_state, history=history, key=key_train, iteration=jnp.zeros((), jnp.int32),
        spec=spec))


def policy_input(state: TrainState, history: jax.Array) -> jax.Array:
    """The observation history (..., To, obs_dim) normalized as the cloned run did, flat."""
    return encode_history(history, state.obs_mean, state.obs_std)


# The sampling chain ------------------------------------------------------------------------

def _steps(cfg: FinetuneConfig, spec: Cloned) -> tuple[int, int]:
    steps = cfg.chain_steps(spec.policy)
    return steps, cfg.trained_steps(steps)


def transition(cfg: FinetuneConfig, spec: Cloned, params: dict, x: jax.Array,
               k: jax.Array, cond: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and std of chain step `k` from chunks `x` (B, H, A) under `params`."""
    steps, _ = _steps(cfg, spec)
    policy = spec.policy
    if isinstance(policy, FlowPolicy):
        mean = policy.euler_step(params["policy"], x, k, steps, cond)
        flat = x.reshape(x.shape[0], -1)
        t = jnp.broadcast_to(k / steps, (x.shape[0], 1)).astype(x.dtype)
        out = noise_network(cfg, flat.shape[-1]).apply(
            params["noise"], jnp.concatenate([cond, t, flat], axis=-1))
        std = cfg.min_std + (cfg.max_std - cfg.min_std) * jax.nn.sigmoid(out)
        return mean, std.reshape(x.shape)
    mean, std = policy.denoise_step(params["policy"], x, k, steps, cond, cfg.sampler)
    return mean, jnp.broadcast_to(jnp.maximum(std, cfg.min_std), mean.shape)


def _untrained_prefix(cfg, spec: Cloned, frozen: ChunkParams, x0: jax.Array,
                      cond: jax.Array) -> jax.Array:
    """The chain's first steps, which keep the cloned weights, played by their means."""
    steps, trained = _steps(cfg, spec)
    if steps == trained:
        return x0
    params = {"policy": frozen}
    step = lambda x, k: (transition(cfg, spec, params, x, k, cond)[0], None)
    return jax.lax.scan(step, x0, jnp.arange(steps - trained))[0]


def sample_chain(cfg: FinetuneConfig, state: TrainState, cond: jax.Array,
                 key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A chain per observation: the draws (B, K'+1, H, A) of the trained steps (from the
    state the untrained prefix reached) and their element log densities (B, K', H, A)."""
    spec = state.spec
    steps, trained = _steps(cfg, spec)
    key_init, key_steps = jax.random.split(key)
    x0 = jax.random.normal(key_init, (cond.shape[0], spec.chunks.horizon, spec.action_size))
    x = _untrained_prefix(cfg, spec, state.frozen, x0, cond)

    def step(x, inputs):
        k, key_k = inputs
        mean, std = transition(cfg, spec, state.params, x, k, cond)
        nxt = mean + std * jax.random.normal(key_k, x.shape)
        return nxt, (nxt, _log_prob(mean, std, nxt))

    ks = jnp.arange(steps - trained, steps)
    _, (draws, log_probs) = jax.lax.scan(step, x, (ks, jax.random.split(key_steps, trained)))
    chain = jnp.concatenate([x[None], draws], axis=0)
    return jnp.moveaxis(chain, 0, 1), jnp.moveaxis(log_probs, 0, 1)


def chain_log_prob(cfg: FinetuneConfig, spec: Cloned, params: dict, cond: jax.Array,
                   chain: jax.Array) -> jax.Array:
    """Log densities (B, K', H, A) of each element of each trained transition of `chain`
    (B, K'+1, H, A); their sum is the chain's exact log-likelihood."""
    steps, trained = _steps(cfg, spec)

    def one(k, x, nxt):
        mean, std = transition(cfg, spec, params, x, k, cond)
        return _log_prob(mean, std, nxt)

    ks = jnp.arange(steps - trained, steps)
    return jax.vmap(one, in_axes=(0, 1, 1), out_axes=1)(ks, chain[:, :-1], chain[:, 1:])


def _log_prob(mean: jax.Array, std: jax.Array, x: jax.Array) -> jax.Array:
    """The Gaussian log density of each element of the chunks (not summed)."""
    z = (x - mean) / std
    return -0.5 * z**2 - jnp.log(std) - 0.5 * jnp.log(2 * jnp.pi)


def executed_log_prob(spec: Cloned, log_prob: jax.Array) -> jax.Array:
    """What the ratio is built from, per transition: the element log densities (..., H, A) of
    the executed actions only (the rest of the chunk never reaches the env), clamped to
    [-5, 2] and averaged, as DPPO does, so a ratio stays near 1 however large the chunk."""
    executed = spec.chunks.executed(log_prob)
    return jnp.clip(executed, -5.0, 2.0).mean(axis=(-1, -2))


def mean_chain(cfg: FinetuneConfig, state: TrainState, cond: jax.Array,
               x0: jax.Array) -> jax.Array:
    """The chunk (B, H, A) the noise-free chain reaches from `x0`, clipped to [-1, 1]: the
    cloned policy's deterministic sampler with the fine-tuned weights."""
    spec = state.spec
    steps, trained = _steps(cfg, spec)
    x = _untrained_prefix(cfg, spec, state.frozen, x0, cond)
    step = lambda x, k: (transition(cfg, spec, state.params, x, k, cond)[0], None)
    x, _ = jax.lax.scan(step, x, jnp.arange(steps - trained, steps))
    return jnp.clip(x, -1.0, 1.0)


# Rollout and update ------------------------------------------------------------------------

def _advance(history: jax.Array, obs: jax.Array, fresh: jax.Array) -> jax.Array:
    """The history after observing `obs`; restarted (obs repeated) where `fresh`."""
    shifted = jnp.concatenate([history[:, 1:], obs[:, None]], axis=1)
    restarted = jnp.repeat(obs[:, None], history.shape[1], axis=1)
    return jnp.where(fresh[:, None, None], restarted, shifted)


def execute(cfg: FinetuneConfig, data: TrainInput, env_state: State, history: jax.Array,
            actions: jax.Array):
    """Step the envs through a chunk's actions (B, Ta, A). An env whose episode ends inside
    the chunk keeps the reward up to its end and the history it ended in, and resumes in its
    next episode (the autoreset's) with the history restarted."""
    num_envs = env_state.obs.shape[0]

    def act(carry, action):
        env_state, history, ret, alive, weight, end_history, truncated = carry
        nxt = data.env.step(env_state, action)
        ret = ret + alive * weight * nxt.reward
        ends = (alive > 0) & nxt.done
        reached = _advance(history, nxt.extras["final_obs"], jnp.zeros_like(nxt.done))
        end_history = jnp.where(ends[:, None, None], reached, end_history)
        truncated = truncated | (ends & nxt.truncated)
        alive = alive * (1.0 - nxt.done)
        history = _advance(history, nxt.obs, nxt.done)
        return (nxt, history, ret, alive, weight * cfg.discount, end_history, truncated), None

    zeros = jnp.zeros(num_envs)
    carry = (env_state, history, zeros, jnp.ones(num_envs), 1.0, history,
             jnp.zeros(num_envs, bool))
    (env_state, history, ret, alive, _, end_history, truncated), _ = jax.lax.scan(
        act, carry, jnp.moveaxis(actions, 1, 0))
    done = alive == 0
    reached = jnp.where(done[:, None, None], end_history, history)
    return env_state, history, ret, done, truncated, reached


def rollout(cfg: FinetuneConfig, data: TrainInput, state: TrainState,
            key: jax.Array) -> tuple[tuple[State, jax.Array], Decision]:
    """`rollout_length / n_action_steps` decisions in every env."""
    ta = state.spec.chunks.n_action_steps

    def decide(carry, key_decision):
        env_state, history = carry
        cond = policy_input(state, history)
        chain, log_prob = sample_chain(cfg, state, cond, key_decision)
        actions = state.spec.chunks.executed(jnp.clip(chain[:, -1], -1.0, 1.0))
        env_state, history, ret, done, truncated, reached = execute(
            cfg, data, env_state, history, actions)
        decision = Decision(cond, chain, log_prob, ret, done, truncated,
                            policy_input(state, reached))
        return (env_state, history), decision

    keys = jax.random.split(key, cfg.rollout_length // ta)
    return jax.lax.scan(decide, (state.env_state, state.history), keys)


def loss_fn(params: dict, cfg: FinetuneConfig, spec: Cloned, batch: dict,
            actor_on: jax.Array) -> tuple[jax.Array, dict]:
    """Clipped surrogate over the chain (joint ratio for ReinFlow, one per step for DPPO) and
    the critic's squared error."""
    log_prob = executed_log_prob(
        spec, chain_log_prob(cfg, spec, params, batch["cond"], batch["chain"]))
    old, advantage = executed_log_prob(spec, batch["log_prob"]), batch["advantage"]
    if isinstance(cfg, ReinFlowConfig):
        log_prob, old = log_prob.sum(-1), old.sum(-1)
    else:
        advantage = advantage[:, None]
    policy_loss, info = surrogate.clipped_surrogate(log_prob, old, advantage, cfg.clip_epsilon)
    values = value_network(cfg).apply(params["value"], batch["cond"])[..., 0]
    value_loss = 0.5 * jnp.mean((values - batch["target"]) ** 2)
    total = actor_on * policy_loss + cfg.value_cost * value_loss
    return total, {**info, "loss/value": value_loss}


def train_iteration(cfg: FinetuneConfig, data: TrainInput, state: TrainState
                    ) -> tuple[TrainState, dict]:
    """One iteration: decisions in every env, GAE over them, PPO epochs."""
    key, key_rollout, key_update = jax.random.split(state.key, 3)
    (env_state, history), traj = rollout(cfg, data, state, key_rollout)
    value_apply = lambda cond: value_network(cfg).apply(state.params["value"], cond)[..., 0]
    ta = state.spec.chunks.n_action_steps
    discount = cfg.discount ** ta
    advantages, targets = compute_gae(
        traj.reward * cfg.reward_scaling, value_apply(traj.cond), value_apply(traj.next_cond),
        traj.done, traj.truncated, discount, cfg.gae_lambda)
    flat = lambda x: x.reshape((-1, *x.shape[2:]))  # (T, N, ...) -> (T*N, ...)
    batch = {"cond": flat(traj.cond), "chain": flat(traj.chain),
             "log_prob": flat(traj.log_prob),
             "advantage": surrogate.standardize(flat(advantages)), "target": flat(targets)}
    actor_on = (state.iteration >= cfg.critic_warmup_iterations).astype(jnp.float32)
    grad_fn = jax.grad(lambda p, b: loss_fn(p, cfg, state.spec, b, actor_on), has_aux=True)
    params, opt_state, info = surrogate.minibatch_epochs(
        grad_fn, _optimizer(cfg), state.params, state.opt_state, batch, key_update,
        cfg.num_epochs, cfg.num_minibatches)
    metrics = {**info, "train/reward": traj.reward.mean() / ta,
               "train/episodes": traj.done.sum().astype(jnp.float32)}
    return state.replace(params=params, opt_state=opt_state, env_state=env_state,
                         history=history, key=key, iteration=state.iteration + 1), metrics


# Acting ------------------------------------------------------------------------------------

def plan_fn(cfg: FinetuneConfig, state: TrainState):
    """`plan(history, key) -> chunk`: the noise-free chain from a random start."""
    spec = state.spec

    def plan(history, key):
        cond = policy_input(state, history)
        x0 = jax.random.normal(key, (*cond.shape[:-1], spec.chunks.horizon, spec.action_size))
        return mean_chain(cfg, state, cond, x0)

    return plan


def controller(cfg: FinetuneConfig, state: TrainState, *, steps: int | None = None
               ) -> Controller:
    """The noise-free chain executed with the cloned run's receding horizon; `steps` other
    than the run's changes the chain's length (the fine-tuned steps stay the last ones)."""
    if steps is not None:
        cfg = dataclasses.replace(cfg, inference_steps=steps)
    return chunk_controller(state.spec.chunks, state.spec.action_size, plan_fn(cfg, state))


def evaluate(cfg: FinetuneConfig, eval_env: Env, state: TrainState, key: jax.Array) -> dict:
    """Success rate, return and reward terms over `num_eval_envs` full episodes."""
    key_reset, key_act = jax.random.split(key)
    return evaluate_episodes(eval_env, controller(cfg, state), key_reset, key_act,
                             track_success=True)


def program(cfg: FinetuneConfig, state: TrainState) -> PolicyProgram:
    """The fine-tuned policy as an exportable program: the history and the chain's starting
    noise in, the executed actions out."""
    spec = state.spec
    to, ta = spec.chunks.n_obs_steps, spec.chunks.n_action_steps
    steps, _ = _steps(cfg, spec)
    sampler = {"family": spec.policy.__class__.__name__.removesuffix("Policy").lower(),
               "steps": steps, "finetuned": "reinflow" if cfg.FAMILY == "flow" else "dppo"}

    def fn(history, noise):
        chunk = mean_chain(cfg, state, policy_input(state, history), noise["init"])
        return spec.chunks.executed(chunk)

    return PolicyProgram(fn, to, ta, {"init": NoiseSpec((spec.chunks.horizon,
                                                         spec.action_size))}, sampler)


Config = ReinFlowConfig
