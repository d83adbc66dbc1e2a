"""Behaviour cloning of any policy family from demonstrations, and HG-DAgger on top of it.

A compiled iteration is a `lax.scan` of gradient steps on windows sampled on device from the
demonstrations (observation history -> action chunk); the policy's own `loss` says what is
regressed (noise, velocity, energy, mean). EMA weights act in evaluation, which runs the chunked
policy with a receding horizon in `num_eval_envs` parallel envs inside one compiled rollout.

HG-DAgger (Kelly et al. 2019; `HGDaggerConfig`, registered as `dagger`) first rolls the policy
out in `num_envs` envs while the simulated human (`robojax.hil.human`) watches and takes over;
the stretches they held join the demonstrations (`robojax.data.aggregate`), sampled in
proportion to their size, and the gradient steps follow.
"""

import dataclasses
from pathlib import Path
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from robojax import data as demo_data
from robojax.algos.base import GRAD_STEPS, AlgoConfig
from robojax.core.controller import Controller
from robojax.core.env import Env
from robojax.core.program import PolicyProgram
from robojax.core.reflection import Reflection, env_reflection
from robojax.core.types import ArraySpec
from robojax.core.wrappers import first_states, wrap_for_training
from robojax.data import aggregate as takeovers
from robojax.data.augment import reflect_half, reflect_obs
from robojax.hil import human as simulated_human
from robojax.hil import intervene
from robojax.policies import DiffusionPolicy, EnergyPolicy, FlowPolicy, GaussianPolicy
from robojax.policies.chunking import ChunkConfig, chunk_controller, encode_history
from robojax.rollout import evaluate_episodes

PROGRESS_UNIT, TRAIN_KEY, PLOT_KEY = GRAD_STEPS, "train/loss", "eval/success_rate"


@dataclasses.dataclass(frozen=True)
class BCConfig(AlgoConfig):
    """Behaviour-cloning hyperparameters."""

    RENAMED: ClassVar[dict[str, str]] = {"num_envs": "num_eval_envs"}

    policy: str = "diffusion"
    """Policy family: gaussian, diffusion, flow or energy."""
    dataset: Path | None = None
    """HDF5 demonstrations (robomimic layout), e.g. from `robojax collect`."""
    chunks: ChunkConfig = ChunkConfig()
    """Observation history, predicted horizon and executed actions per policy call."""
    num_grad_steps: int = 20_000
    """Gradient steps in the whole run."""
    grad_steps_per_iteration: int = 100
    """Gradient steps per compiled call."""
    batch_size: int = 256
    """Demonstration windows per gradient step."""
    learning_rate: float = 3e-4
    """Peak AdamW learning rate (linear warmup, cosine decay)."""
    warmup_steps: int = 500
    """Learning-rate warmup in gradient steps."""
    weight_decay: float = 1e-6
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip."""
    mirror: bool = False
    """Reflect half of each batch by the env's mirror symmetry (`env.reflection()`, e.g.
    push-t's): the demonstrations' mirror images are valid demonstrations too, so the policy
    learns from twice the states."""
    ema_power: float = 0.75
    """EMA decay after k steps is 1 - (1 + k) ** -ema_power (capped at ema_max)."""
    ema_max: float = 0.9999
    """Largest EMA decay."""
    inference_steps: int | None = None
    """Sampling steps at evaluation (denoising, Euler, descent); None: the family's default."""
    num_eval_envs: int = 256
    """Parallel evaluation episodes."""
    gaussian: GaussianPolicy = GaussianPolicy(hidden_sizes=(256, 256, 256), activation="relu")
    """Settings of the gaussian family (trained by MSE on the mean)."""
    diffusion: DiffusionPolicy = DiffusionPolicy()
    """Settings of the diffusion family."""
    flow: FlowPolicy = FlowPolicy()
    """Settings of the flow family."""
    energy: EnergyPolicy = EnergyPolicy()
    """Settings of the energy family."""

    def validate(self) -> None:
        super().validate()
        self.chunks.validate()
        if self.dataset is None:
            raise ValueError("behaviour cloning needs demonstrations: pass --dataset FILE.hdf5 "
                             "(record one with `robojax collect --env NAME --out FILE.hdf5`).")
        if self.policy not in ("gaussian", "diffusion", "flow", "energy"):
            from robojax import policies

            policies.make(self.policy)  # raises with close matches

    def make_policy(self):
        return getattr(self, self.policy)

    def num_iterations(self) -> int:
        return -(-self.num_grad_steps // self.grad_steps_per_iteration)

    def steps_per_iteration(self) -> int:
        return self.grad_steps_per_iteration


@dataclasses.dataclass(frozen=True)
class HGDaggerConfig(BCConfig):
    """HG-DAgger: behaviour cloning on the demonstrations and on what a simulated human did
    when they took over from the policy (gated by `human`'s rule), gathered as training goes."""

    RENAMED: ClassVar[dict[str, str]] = {}

    num_envs: int = 64
    """Envs the policy is rolled out in per iteration."""
    rollout_length: int = 50
    """Steps of each env per iteration (before its gradient steps)."""
    human: simulated_human.HumanConfig = simulated_human.HumanConfig()
    """The simulated human: rule (deviation or stall), reaction delay, takeover length,
    noise, attention, budget."""
    aggregate_capacity: int = 200_000
    """Rollout rows kept (held or not), rounded up to whole rollouts; the oldest go first."""

    def validate(self) -> None:
        super().validate()
        if min(self.num_envs, self.rollout_length) < 1:
            raise ValueError(f"num_envs and rollout_length must be >= 1, got {self.num_envs} "
                             f"and {self.rollout_length}.")
        if self.human.rule == "value":
            raise ValueError("HG-DAgger learns no value: pick --dagger.human.rule deviation or "
                             "stall.")

    def rollout_rows(self) -> int:
        return self.num_envs * self.rollout_length


@struct.dataclass
class TrainState:
    params: dict
    ema_params: dict
    opt_state: optax.OptState
    obs_mean: jax.Array
    obs_std: jax.Array
    key: jax.Array
    step: jax.Array
    action_size: int = struct.field(pytree_node=False, default=0)
    env_state: object = None  # HG-DAgger: the rollout envs, the policy's memory, the human
    memory: object = None
    human: simulated_human.HumanState | None = None
    aggregate: takeovers.Aggregate | None = None  # HG-DAgger: the human's takeovers


def load_demos(cfg: BCConfig, env: Env) -> demo_data.Demos:
    demos = demo_data.load(Path(cfg.dataset))
    demo_data.check_fits(demos, env)
    return demos


def _optimizer(cfg: BCConfig) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, cfg.learning_rate, min(cfg.warmup_steps, cfg.num_grad_steps - 1),
        max(cfg.num_grad_steps, 1))
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm),
                       optax.adamw(schedule, weight_decay=cfg.weight_decay))


def specs(cfg: BCConfig, env: Env) -> tuple[ArraySpec, ArraySpec]:
    """The policy's view: a flat observation history and a (horizon, action) chunk."""
    obs_size = env.observation_spec.size * cfg.chunks.n_obs_steps
    return ArraySpec((obs_size,)), ArraySpec((cfg.chunks.horizon, env.action_spec.size),
                                             minimum=-1.0, maximum=1.0)


class TrainInput(NamedTuple):
    """What `train_iteration` consumes: the demos on device and, with `mirror`, the env's
    reflection; for HG-DAgger the rollout envs and the human's expert."""

    demos: demo_data.DemoArrays
    reflection: Reflection | None
    env: Env | None = None
    expert: object = None


def reflection(cfg: BCConfig, env: Env) -> Reflection | None:
    """The env's mirror symmetry when `cfg.mirror` asks for it (checked), else None."""
    if not cfg.mirror:
        return None
    return env_reflection(env, "--bc.mirror")


def make_train_input(cfg: BCConfig, env: Env) -> TrainInput:
    """The demonstrations, read once and put on device, and the env's reflection."""
    mirror = reflection(cfg, env)  # a flag that cannot apply fails before the demos load
    return _train_input(cfg, env, mirror, demo_data.to_device(load_demos(cfg, env)))


def restore_input(cfg: BCConfig, env: Env) -> TrainInput:
    """What `init` needs to give a checkpoint's shapes, without reading the dataset: the
    state's shapes do not depend on it, so a cloned run evaluates, exports and deploys from its
    run directory alone (the demos may be gone, or the directory copied to a robot)."""
    obs, act = env.observation_spec.size, env.action_spec.size
    one = jnp.zeros((1,), jnp.int32)
    stand_in = demo_data.DemoArrays(obs=jnp.zeros((1, obs)), actions=jnp.zeros((1, act)),
                                    current=one, start=one, end=one + 1)
    return _train_input(cfg, env, reflection(cfg, env), stand_in)


def _train_input(cfg: BCConfig, env: Env, mirror: Reflection | None,
                 demos: demo_data.DemoArrays) -> TrainInput:
    if not isinstance(cfg, HGDaggerConfig):
        return TrainInput(demos, mirror)
    cfg.validate()
    rollouts = wrap_for_training(env, cfg.num_envs, episode_length=cfg.episode_length)
    return TrainInput(demos, mirror, rollouts, intervene.expert_policy(env))


def init(cfg: BCConfig, env: Env, data: TrainInput, key: jax.Array) -> TrainState:
    """Policy parameters (and their EMA), optimizer, and the demos' observation statistics."""
    cfg.validate()
    key_policy, key_train = jax.random.split(key)
    params = cfg.make_policy().init(key_policy, *specs(cfg, env))
    obs = data.demos.obs
    if data.reflection is not None:  # statistics of the data the policy trains on, images too
        obs = jnp.concatenate([obs, reflect_obs(data.reflection, obs)])
    state = TrainState(params=params, ema_params=jax.tree.map(jnp.copy, params),
                       opt_state=_optimizer(cfg).init(params),
                       obs_mean=obs.mean(0), obs_std=obs.std(0) + 1e-6, key=key_train,
                       step=jnp.zeros((), jnp.int32), action_size=env.action_spec.size)
    if not isinstance(cfg, HGDaggerConfig):
        return state
    env_state = first_states(data.env, jax.random.fold_in(key, 1))
    rows = cfg.rollout_rows()
    return state.replace(
        env_state=env_state, memory=controller(cfg, state).init(env_state),
        human=simulated_human.init(cfg.num_envs, env.action_spec.size),
        aggregate=takeovers.init(-(-cfg.aggregate_capacity // rows) * rows,
                                 env.observation_spec.size, env.action_spec.size, rows))


def _policy_input(state: TrainState, history: jax.Array) -> jax.Array:
    """Normalize an observation history (..., To, obs_dim) and flatten it."""
    return encode_history(history, state.obs_mean, state.obs_std)


def ema_decay(cfg: BCConfig, step: jax.Array) -> jax.Array:
    return jnp.minimum(1.0 - (1.0 + step) ** -cfg.ema_power, cfg.ema_max)


def grad_step(cfg: BCConfig, data: TrainInput, state: TrainState) -> tuple[TrainState, dict]:
    """One gradient step of the policy's loss on a fresh batch of windows."""
    key, key_batch, key_loss = jax.random.split(state.key, 3)
    chunks = cfg.chunks
    batch = demo_data.sample_batch(data.demos, key_batch, cfg.batch_size, chunks.n_obs_steps,
                                   chunks.horizon)
    if state.aggregate is not None:
        batch = _with_takeovers(cfg, data, state.aggregate, batch, key_batch)
    if data.reflection is not None:
        batch = reflect_half(data.reflection, batch, jax.random.fold_in(key_batch, 1))
    batch = {"obs": _policy_input(state, batch["obs"]), "actions": batch["actions"]}
    (loss, info), grads = jax.value_and_grad(cfg.make_policy().loss, has_aux=True)(
        state.params, batch, key_loss)
    updates, opt_state = _optimizer(cfg).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    decay = ema_decay(cfg, state.step)
    ema = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, state.ema_params, params)
    info = {"train/loss": loss, "train/grad_norm": optax.global_norm(grads), **info}
    return state.replace(params=params, ema_params=ema, opt_state=opt_state, key=key,
                         step=state.step + 1), info


def _with_takeovers(cfg: BCConfig, data: TrainInput, agg: takeovers.Aggregate, batch: dict,
                    key: jax.Array) -> dict:
    """The batch with each window drawn from the human's takeovers instead, with their share
    of all the rows (demonstrations and takeovers)."""
    key_rows, key_pick = jax.random.split(jax.random.fold_in(key, 2))
    chunks = cfg.chunks
    taken = takeovers.sample_batch(agg, key_rows, cfg.batch_size, chunks.n_obs_steps,
                                   chunks.horizon)
    share = agg.size / (agg.size + data.demos.current.shape[0])
    pick = jax.random.uniform(key_pick, (cfg.batch_size,)) < share
    return jax.tree.map(lambda a, b: jnp.where(pick.reshape(-1, *[1] * (a.ndim - 1)), a, b),
                        taken, batch)


def collect(cfg: HGDaggerConfig, data: TrainInput, state: TrainState, key: jax.Array
            ) -> tuple[TrainState, dict]:
    """Roll the EMA policy out for `rollout_length` steps of every env while the simulated
    human takes over by their rule; the stretches they held join the aggregate."""
    policy, dt = controller(cfg, state), data.env.unwrapped.dt
    env_steps = state.step // cfg.grad_steps_per_iteration * cfg.rollout_rows()  # before this

    def one_step(carry, key_step):
        env_state, memory, human = carry
        key_act, key_human = jax.random.split(key_step)
        action, memory = policy.step(memory, env_state, key_act)
        human, held, executed, info = intervene.takeover(cfg.human, data.expert, human,
                                                         env_state, action, key_human, dt,
                                                         env_steps=env_steps)
        row = {"obs": env_state.obs, "action": executed, "held": held,
               "start": env_state.step == 0}
        return (data.env.step(env_state, executed), memory, human), (row, info)

    carry = (state.env_state, state.memory, state.human)
    (env_state, memory, human), (rows, info) = jax.lax.scan(
        one_step, carry, jax.random.split(key, cfg.rollout_length))
    agg = takeovers.add_rollout(state.aggregate, rows["obs"], rows["action"], rows["held"],
                                rows["start"])
    info = simulated_human.summarize(cfg.human, info, human, cfg.rollout_rows(), dt,
                                     env_steps) | {
        "dagger/takeover_rows": agg.size, "env_steps": env_steps + cfg.rollout_rows()}
    return state.replace(env_state=env_state, memory=memory, human=human, aggregate=agg), info


def train_iteration(cfg: BCConfig, data: TrainInput, state: TrainState
                    ) -> tuple[TrainState, dict]:
    """`grad_steps_per_iteration` gradient steps as one scan, metrics averaged; HG-DAgger
    collects a rollout first."""
    rollout = {}
    if isinstance(cfg, HGDaggerConfig):
        state, rollout = collect(cfg, data, state, jax.random.fold_in(state.key, 3))
    state, infos = jax.lax.scan(lambda s, _: grad_step(cfg, data, s), state, None,
                                length=cfg.grad_steps_per_iteration)
    return state, {**jax.tree.map(jnp.mean, infos), **rollout}


def plan_fn(cfg: BCConfig, state: TrainState, *, steps: int | None = None):
    """`plan(history, key) -> chunk` with the EMA weights (the Gaussian plays its mean)."""
    policy = cfg.make_policy()
    steps = steps or cfg.inference_steps

    def plan(history, key):
        cond = _policy_input(state, history)
        if isinstance(policy, GaussianPolicy):
            return jnp.clip(policy.mode(state.ema_params, cond), -1.0, 1.0)
        return policy.sample(state.ema_params, cond, key, steps=steps)

    return plan


def program(cfg: BCConfig, state: TrainState, *, steps: int | None = None) -> PolicyProgram:
    """The EMA policy as an exportable program: the history in, the `n_action_steps` actions
    the controller would execute out, with the sampler's noise as inputs."""
    policy = cfg.make_policy()
    to, ta = cfg.chunks.n_obs_steps, cfg.chunks.n_action_steps
    if isinstance(policy, GaussianPolicy):
        noise, sampler = {}, {"family": "gaussian", "output": "mean"}
        chunk = lambda cond, noise: jnp.clip(policy.mode(state.ema_params, cond), -1.0, 1.0)
    else:
        steps = steps or cfg.inference_steps or policy.inference_steps
        noise = policy.noise_spec(state.ema_params, steps=steps)
        sampler = {"family": cfg.policy, "steps": steps}
        if isinstance(policy, DiffusionPolicy):
            sampler["sampler"] = policy.sampler
        if isinstance(policy, EnergyPolicy):
            sampler["sampler"] = policy.inference
        chunk = lambda cond, noise: policy.sample_from_noise(state.ema_params, cond, noise,
                                                             steps=steps)

    def fn(history, noise):
        return cfg.chunks.executed(chunk(_policy_input(state, history), noise))

    return PolicyProgram(fn, to, ta, noise, sampler)


def controller(cfg: BCConfig, state: TrainState, *, steps: int | None = None) -> Controller:
    return chunk_controller(cfg.chunks, state.action_size, plan_fn(cfg, state, steps=steps))


def evaluate(cfg: BCConfig, eval_env: Env, state: TrainState, key: jax.Array) -> dict:
    """Success rate, return and reward terms over `num_eval_envs` full episodes."""
    key_reset, key_act = jax.random.split(key)
    return evaluate_episodes(eval_env, controller(cfg, state), key_reset, key_act,
                             track_success=True)


Config = BCConfig
