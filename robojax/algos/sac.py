"""Soft actor-critic over many parallel envs, as one compiled program; RLPD is its
configuration with demonstrations (`RLPDConfig`, registered as `rlpd`), and HIL-SERL is RLPD
with a simulated human who takes over during collection (`HILConfig`, registered as `hil`).

One `train_iteration` steps every env `rollout_length` times with the actor, adds the
transitions to the device-resident replay buffer (`robojax.data.replay`), and runs
`grad_updates_per_step * rollout_length` critic updates as a `lax.scan`, the actor and the
temperature updated after every `critic_updates_per_actor` of them. Each batch draws from the
online buffer and, when a dataset is given, from the demonstrations (`demo_fraction` of it:
RLPD's symmetric sampling). The critic is an ensemble (`robojax.algos.critics`): its TD target
is the minimum over `target_min_over` randomly chosen target critics (RLPD: 2 of 10), and it may
be trained by squared error or as an HL-Gauss histogram.

On several devices (of one process or of a `--distributed` run) the iteration runs once per
device under `jax.shard_map`: each device steps its share of the envs and keeps their
transitions in its own block of the replay buffer, samples its share of every batch from that
block, and the gradients are averaged over the devices, so the parameters stay the same
everywhere and no transition crosses between devices (only the new observations, for the
normalizer, and with HIL what the human watches).
"""

import dataclasses
import functools
from pathlib import Path
from typing import ClassVar, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import PartitionSpec

from robojax.algos import acting, returns
from robojax.algos.base import ENV_STEPS, RolloutConfig
from robojax.algos.critics import Ensemble
from robojax.core import normalize, sharding
from robojax.core.env import Env
from robojax.core.sharding import ONE_DEVICE, Devices
from robojax.core.types import State
from robojax.core.wrappers import first_states, wrap_for_training
from robojax.data import demos as demo_files
from robojax.data import replay
from robojax.hil import human as simulated_human
from robojax.hil import intervene
from robojax.policies.tanh_gaussian import ActorParams, TanhGaussianPolicy

PROGRESS_UNIT, TRAIN_KEY, PLOT_KEY = ENV_STEPS, "train/reward", "eval/episode_reward"


@dataclasses.dataclass(frozen=True)
class SACConfig(RolloutConfig):
    """SAC hyperparameters; the defaults are Playground's Brax SAC settings (128 envs, batch
    512, 8 gradient updates per step, learning rate 1e-3, discount 0.99)."""

    RENAMED: ClassVar[dict[str, str]] = {}

    num_envs: int = 128
    """Envs stepped in parallel."""
    num_timesteps: int = 500_000
    """Total env steps to train for."""
    rollout_length: int = 1
    """Steps of every env per iteration, before the iteration's updates."""
    batch_size: int = 512
    """Transitions per gradient update."""
    grad_updates_per_step: int = 8
    """Critic updates per step of all envs: the update-to-data ratio is this over num_envs
    (RLPD: 20 with one env)."""
    critic_updates_per_actor: int = 1
    """Critic updates between two actor and temperature updates (RLPD: every step's worth)."""
    learning_starts: int = 8192
    """Online transitions collected with uniform random actions before learning starts."""
    buffer_capacity: int = 1_000_000
    """Online replay buffer size in transitions (a ring: the oldest are overwritten)."""
    learning_rate: float = 1e-3
    """Adam step size of the actor, the critics and the temperature."""
    discount: float = 0.99
    """Reward discount factor gamma."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    n_step: int = 1
    """TD targets over up to this many steps (n-step returns, as DrQ-v2 and Acme): each stored
    transition sums the discounted rewards of the next steps of its own rollout and episode
    and bootstraps from where they end, so a sparse reward reaches the critic's early states
    in fewer updates. The sums stay inside one iteration: needs rollout_length >= n_step (a
    rollout's last steps get shorter sums). Demonstrations get the same sums."""
    reward_scaling: float = 1.0
    """Rewards are multiplied by this before learning."""
    init_temperature: float = 1.0
    """Initial entropy temperature alpha."""
    target_entropy_per_dim: float = -1.0
    """Target entropy per action dimension (SAC: -1; RLPD: -0.5)."""
    backup_entropy: bool = True
    """Subtract alpha * log pi at the next state in the TD target (soft Q-learning)."""
    normalize_observations: bool = True
    """Normalize the networks' inputs with running statistics of the online observations."""
    reset_refresh: int = 0
    """Env steps between redraws of the initial states finished envs restart from (PPO's
    32); 0: no redraw, each env restarts from its `reset_pool` starts drawn at reset, in
    turn, and the step program compiles without a reset in it (about 40% less compile time
    for a Playground cartpole, RESULTS.md 7.1b)."""
    reset_pool: int = 16
    """Initial states drawn per env at reset, used when `reset_refresh` is 0 (1: Brax's
    autoreset, one start per env for the whole run); 128 envs restart from 2,048 distinct
    states."""
    policy_hidden_sizes: tuple[int, ...] = (256, 256)
    """Actor MLP widths."""
    deterministic_eval: bool = True
    """Evaluate, record and export tanh of the actor's mean; False samples actions from the
    actor as training does."""
    critic: str = "mse"
    """Critic head and loss: "mse" (squared TD error) or "hl_gauss" (cross-entropy to a
    Gaussian-smoothed histogram over `hl_gauss_bins` bins)."""
    num_critics: int = 2
    """Critics in the ensemble (RLPD: 10)."""
    target_min_over: int = 2
    """The TD target takes the minimum over this many randomly drawn target critics."""
    actor_q: str = "min"
    """How the actor reduces the ensemble's values: "min" (SAC) or "mean" (RLPD)."""
    critic_hidden_sizes: tuple[int, ...] = (256, 256)
    """Critic MLP widths."""
    critic_layer_norm: bool = False
    """LayerNorm in the critics (RLPD: on)."""
    activation: str = "relu"
    """Hidden nonlinearity of actor and critics."""
    hl_gauss_bins: int = 101
    """HL-Gauss bins."""
    hl_gauss_range: tuple[float, float] | None = None
    """HL-Gauss value support; None: 0 to reward_scaling / (1 - discount), with a tenth of
    that as margin on both sides (robojax rewards lie in [0, 1] per step)."""
    hl_gauss_sigma: float = 0.75
    """HL-Gauss smoothing std, in bin widths."""
    dataset: Path | None = None
    """HDF5 demonstrations (`robojax collect`) sampled beside the online buffer."""
    demo_fraction: float = 0.5
    """Share of every batch drawn from `dataset` when one is given."""

    def critic_ensemble(self) -> Ensemble:
        value_range = self.hl_gauss_range or (
            _default_range(self) if self.critic == "hl_gauss" else (0.0, 1.0))
        return Ensemble(self.critic, self.num_critics, self.critic_hidden_sizes,
                        self.activation, self.critic_layer_norm, self.hl_gauss_bins,
                        tuple(value_range), self.hl_gauss_sigma)

    def updates_per_iteration(self) -> int:
        return self.grad_updates_per_step * self.rollout_length

    def validate(self) -> None:
        super().validate()
        for name in ("batch_size", "buffer_capacity"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not 1 <= self.n_step <= self.rollout_length:
            raise ValueError(f"n_step must be in [1, rollout_length = {self.rollout_length}] "
                             f"(returns are summed within one iteration's rollout), got "
                             f"{self.n_step}; set rollout_length to at least {self.n_step}.")
        if self.grad_updates_per_step < 1:
            raise ValueError(f"grad_updates_per_step (the update-to-data ratio) must be >= 1, "
                             f"got {self.grad_updates_per_step}; an off-policy learner that "
                             "never updates learns nothing.")
        if self.updates_per_iteration() % self.critic_updates_per_actor:
            raise ValueError(f"grad_updates_per_step * rollout_length = "
                             f"{self.updates_per_iteration()} is not a multiple of "
                             f"critic_updates_per_actor = {self.critic_updates_per_actor}.")
        if self.buffer_capacity < max(self.batch_size, self.steps_per_iteration()):
            raise ValueError(f"buffer_capacity {self.buffer_capacity} is smaller than one batch "
                             f"({self.batch_size}) or one iteration's transitions "
                             f"({self.steps_per_iteration()}); raise it.")
        if self.reset_pool < 1:
            raise ValueError(f"reset_pool must be >= 1 (starts per env; 1: Brax's restarts), "
                             f"got {self.reset_pool}.")
        if not 1 <= self.target_min_over <= self.num_critics:
            raise ValueError(f"target_min_over must be in [1, num_critics = "
                             f"{self.num_critics}], got {self.target_min_over}.")
        if self.actor_q not in ("min", "mean"):
            raise ValueError(f"actor_q must be 'min' or 'mean', got {self.actor_q!r}.")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"discount must be in [0, 1], got {self.discount}.")
        if not 0.0 <= self.demo_fraction < 1.0:
            raise ValueError(f"demo_fraction must be in [0, 1), got {self.demo_fraction}.")
        self.critic_ensemble().validate()


@dataclasses.dataclass(frozen=True)
class RLPDConfig(SACConfig):
    """RLPD (Ball et al. 2023): SAC with demonstrations sampled 50/50 beside online data, a
    LayerNorm ensemble of 10 critics whose target is the minimum of a random pair, 20 critic
    updates per step and the actor's value as the ensemble mean. The TD target leaves out the
    entropy term (as SERL's sparse-reward tasks): on a reward of 1 at success, entropy bonuses
    summed over the horizon would outweigh the task. The temperature starts at SERL's and
    HIL-SERL's 0.01 rather than SAC's 1: with one actor update per 20 critic updates it moves
    slowly, and at 1 the entropy term outweighs values of at most 1 for most of a short run
    (RESULTS.md 7.5)."""

    num_envs: int = 16
    grad_updates_per_step: int = 20
    critic_updates_per_actor: int = 20
    batch_size: int = 256
    learning_starts: int = 1024
    learning_rate: float = 3e-4
    num_critics: int = 10
    target_min_over: int = 2
    actor_q: str = "mean"
    critic_layer_norm: bool = True
    init_temperature: float = 0.01
    target_entropy_per_dim: float = -0.5
    backup_entropy: bool = False
    # 16 envs through runs of thousands of episodes: fresh starts every 32 steps rather
    # than 256 in turn.
    reset_refresh: int = 32


@dataclasses.dataclass(frozen=True)
class HILConfig(RLPDConfig):
    """HIL-SERL (Luo et al. 2024) against a batched simulator: RLPD while a simulated human
    (`robojax.hil.human`, acting with the task's scripted expert) watches the envs and takes
    over by a rule. The executed (human) actions go to the online buffer like any other, and
    the takeovers also to an intervention buffer that supplies `intervention_fraction` of
    every batch (out of the offline share, `demo_fraction`); the policy's own action and the
    takeover flag are stored beside them. Evaluation runs the policy alone.

    With `teleop`, a person at the teleop page joins: they watch one env (switchable) and
    take it over from the policy, while the simulated human (or, with `intervener="none"`,
    nobody) covers the others."""

    intervener: Literal["expert", "none"] = "expert"
    """Who watches the envs: "expert" (the simulated human, acting with the task's scripted
    expert) or "none" (nobody but a person at the teleop page)."""
    human: simulated_human.HumanConfig = simulated_human.HumanConfig()
    """The simulated human: rule, reaction delay, takeover length, noise, attention, budget."""
    rlif_reward: bool = False
    """Learn from the takeovers alone, as RLIF (Luo et al. 2024) for tasks without a reward:
    every transition's reward is 0 but where a takeover starts, which is stored with the
    policy's own action, reward -1 and no bootstrap (the policy was stopped there)."""
    teleop: bool = False
    """Serve the teleop page (127.0.0.1) so that a person joins the run; its URL is printed."""
    teleop_port: int = 8765
    """Port of the teleop page (0: any free one)."""
    intervention_fraction: float = 0.25
    """Share of every batch drawn from the human's takeovers (the online buffer's until the
    first one); the demonstrations keep `demo_fraction` minus this."""
    intervention_capacity: int = 200_000
    """Intervention buffer size in transitions."""

    def validate(self) -> None:
        super().validate()
        if self.intervener not in ("expert", "none"):
            raise ValueError(f"hil.intervener must be 'expert' or 'none', got "
                             f"{self.intervener!r}.")
        if self.intervener == "none" and not self.teleop:
            raise ValueError("hil.intervener none leaves nobody to take over: add --hil.teleop "
                             "(a person at the page) or use --hil.intervener expert.")
        if not 0.0 <= self.intervention_fraction <= self.demo_fraction:
            raise ValueError(f"intervention_fraction must be in [0, demo_fraction = "
                             f"{self.demo_fraction}], got {self.intervention_fraction}.")
        if self.intervention_capacity < self.steps_per_iteration():
            raise ValueError(f"intervention_capacity {self.intervention_capacity} is smaller "
                             f"than one iteration's transitions ({self.steps_per_iteration()})"
                             "; raise it.")


LEARNER_FIELDS = ("obs", "action", "reward", "discount", "next_obs")
"""What the updates read of a stored transition (a human's takeovers store more)."""


def _default_range(cfg: SACConfig) -> tuple[float, float]:
    if not cfg.discount < 1.0:
        raise ValueError(f"the default HL-Gauss range assumes discount < 1, got "
                         f"{cfg.discount}; set hl_gauss_range (low, high).")
    top = cfg.reward_scaling / (1.0 - cfg.discount)
    return -0.1 * top, 1.1 * top


@struct.dataclass
class Learner:
    """Everything the gradient updates change."""

    actor: ActorParams
    critic: dict
    target_critic: dict
    log_alpha: jax.Array
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    alpha_opt: optax.OptState


@struct.dataclass
class TrainState:
    learner: Learner
    obs_stats: normalize.RunningStats
    buffer: replay.Buffer  # online experience
    env_state: State
    key: jax.Array
    iteration: jax.Array
    human: simulated_human.HumanState | None = None  # HIL: the simulated human's state
    interventions: replay.Buffer | None = None  # HIL: the human's takeovers


class TrainInput(NamedTuple):
    env: Env  # batched, autoresetting
    demos: replay.Buffer | None  # fixed: not checkpointed, read from `dataset` again on resume
    expert: object = None  # HIL: the scripted expert the simulated human acts with
    person: object = None  # HIL with teleop: the person at the page (`robojax.hil.live`)
    devices: Devices = ONE_DEVICE  # the devices the env batch and the buffer are split over


def make_actor(cfg: SACConfig) -> TanhGaussianPolicy:
    return TanhGaussianPolicy(cfg.policy_hidden_sizes, cfg.activation)


def _optimizer(cfg: SACConfig) -> optax.GradientTransformation:
    return optax.adam(cfg.learning_rate)


def load_demos(cfg: SACConfig, env: Env) -> replay.Buffer | None:
    """The dataset's transitions as a full buffer; None without a dataset."""
    if cfg.dataset is None:
        return None
    found = demo_files.load(cfg.dataset)
    demo_files.check_fits(found, env)
    data = replay.transitions_from_episodes(found.obs, found.actions, found.rewards,
                                            found.terminal_flags(), found.starts, found.ends)
    if len(data["reward"]) == 0:
        raise demo_files.DemoFileError(f"{cfg.dataset} holds no complete transition (every "
                                       "episode is one step long); record longer episodes.")
    data = jax.tree.map(np.asarray, returns.n_step_transitions(data, cfg.n_step, cfg.discount))
    return replay.full(data)


def make_train_input(cfg: SACConfig, env: Env) -> TrainInput:
    """The batched, autoresetting training env and the demonstrations, loaded once; with
    HIL the simulated human's expert, and the teleop page when a person joins."""
    return _train_input(cfg, env, load_demos(cfg, env), serve=True)


def restore_input(cfg: SACConfig, env: Env) -> TrainInput:
    """What `init` needs to give a checkpoint's shapes: no dataset read (a run evaluates and
    exports without its demo file) and no teleop page served."""
    return _train_input(cfg, env, None, serve=False)


def _train_input(cfg: SACConfig, env: Env, demos: replay.Buffer | None, serve: bool
                 ) -> TrainInput:
    cfg.validate()
    hil = isinstance(cfg, HILConfig)
    devices = _devices(cfg, teleop=hil and cfg.teleop)
    # Stepped once per device: each device's share of the envs.
    train_env = wrap_for_training(env, cfg.num_envs // devices.count,
                                  episode_length=cfg.episode_length,
                                  reset_refresh=cfg.reset_refresh,
                                  reset_pool=1 if cfg.reset_refresh else cfg.reset_pool)
    expert = intervene.expert_policy(env) if hil and cfg.intervener == "expert" else None
    person = None
    if hil and cfg.teleop and serve:
        if jax.process_count() > 1:
            raise ValueError("--hil.teleop serves one page from one process; train a "
                             "--distributed run without it.")
        from robojax.hil.live import LivePerson

        person = LivePerson.serve(env, cfg.num_envs, port=cfg.teleop_port)
    return TrainInput(train_env, demos, expert, person, devices)


def _devices(cfg: SACConfig, teleop: bool) -> Devices:
    """Every device, when there are several (the teleop page's callback watches the whole
    batch from one device: a run with a person stays on one)."""
    count = jax.device_count()
    if count == 1 or teleop:
        return ONE_DEVICE
    uneven = {name: getattr(cfg, name) for name in ("num_envs", "batch_size", "buffer_capacity")
              if getattr(cfg, name) % count}
    if uneven:
        named = ", ".join(f"{k} = {v}" for k, v in uneven.items())
        raise ValueError(f"{named} does not split over the {count} devices (each steps its "
                         f"share of the envs and keeps and samples its share of the replay "
                         f"buffer); use multiples of {count}.")
    return Devices.all()


def _example_transition(cfg: SACConfig, env: Env) -> dict:
    obs, act = jnp.zeros(env.observation_spec.shape), jnp.zeros(env.action_spec.shape)
    example = {"obs": obs, "action": act, "reward": jnp.zeros(()), "discount": jnp.zeros(()),
               "next_obs": obs}
    if isinstance(cfg, HILConfig):
        example |= {"policy_action": act, "intervened": jnp.zeros((), bool),
                    "takeover_start": jnp.zeros((), bool)}
    return example


def init(cfg: SACConfig, env: Env, train_input: TrainInput, key: jax.Array) -> TrainState:
    """Actor, critic ensemble and its target, temperature, optimizers, an empty buffer and a
    reset batch of envs."""
    cfg.validate()
    key_actor, key_critic, key_env, key_train = jax.random.split(key, 4)
    obs_spec, act_spec = env.observation_spec, env.action_spec
    actor = make_actor(cfg).init(key_actor, obs_spec, act_spec)
    critic = cfg.critic_ensemble().init(key_critic, jnp.zeros(obs_spec.shape),
                                        jnp.zeros(act_spec.shape))
    log_alpha = jnp.log(jnp.float32(cfg.init_temperature))
    optimizer = _optimizer(cfg)
    learner = Learner(actor, critic, jax.tree.map(jnp.copy, critic), log_alpha,
                      optimizer.init(actor), optimizer.init(critic), optimizer.init(log_alpha))
    example = _example_transition(cfg, env)
    hil = isinstance(cfg, HILConfig)
    buffer = replay.init(example, cfg.buffer_capacity)
    env_state = first_states(train_input.env, jax.random.split(key_env, cfg.num_envs))
    if train_input.devices.axis is not None:  # each device's envs and its block of the buffer
        buffer = buffer.replace(data=sharding.shard_env_batch(buffer.data))
        env_state = sharding.shard_env_batch(env_state)
    state = TrainState(
        learner=learner, obs_stats=normalize.init(obs_spec.shape), buffer=buffer,
        env_state=env_state, key=key_train, iteration=jnp.zeros((), jnp.int32),
        human=simulated_human.init(cfg.num_envs, env.action_spec.size) if hil else None,
        interventions=replay.init(example, cfg.intervention_capacity) if hil else None)
    return sharding.place_on_mesh(state) if train_input.devices.axis is not None else state


def collect(cfg: SACConfig, train_input: TrainInput, state: TrainState, key: jax.Array
            ) -> tuple[TrainState, dict, dict]:
    """Step every env `rollout_length` times: uniform random actions until the buffer holds
    `learning_starts` transitions, the stochastic actor after (overridden where the simulated
    human takes over, with HIL). Returns the state with the envs (and the human) moved on,
    the transitions (rollout_length, envs of this device, ...), and the human's metrics
    summed over the steps (empty without one)."""
    env, actor, devices = train_input.env, make_actor(cfg), train_input.devices
    warming_up = state.buffer.size < cfg.learning_starts
    env_steps = state.iteration * cfg.steps_per_iteration()  # before this rollout

    def one_step(carry, key_step):
        env_state, human_state = carry
        obs = normalize.observations(cfg, state.obs_stats, env_state.obs)
        key_actor, key_random = jax.random.split(devices.key(key_step))
        key_human = jax.random.fold_in(key_step, 2)  # one human: the same draws on every device
        action = jnp.where(warming_up,
                           jax.random.uniform(key_random,
                                              (env.batch_size, *env.action_spec.shape),
                                              minval=-1.0, maxval=1.0),
                           actor.sample(state.learner.actor, obs, key_actor))
        executed, extra, info = action, {}, {}
        if human_state is not None:
            human_state, executed, extra, info = _intervene(
                cfg, train_input, state.learner, human_state, env_state, obs, action, key_human,
                env_steps)
        next_state = env.step(env_state, executed)
        transition = _transition(env_state, executed, next_state)
        if extra and cfg.rlif_reward:
            transition = rlif_relabel(transition, extra)
        # `last`: where n-step sums stop (consumed before the buffer)
        return (next_state, human_state), ({**transition, **extra,
                                             "last": next_state.done.astype(bool)}, info)

    (env_state, human_state), (steps, info) = jax.lax.scan(
        one_step, (state.env_state, state.human), jax.random.split(key, cfg.rollout_length))
    if info:
        info = simulated_human.summarize(cfg.human, info, human_state,
                                         cfg.steps_per_iteration(), env.unwrapped.dt, env_steps)
    return state.replace(env_state=env_state, human=human_state), steps, info


def _intervene(cfg: "HILConfig", train_input: TrainInput, learner: Learner,
               human_state: simulated_human.HumanState, env_state: State, obs: jax.Array,
               action: jax.Array, key: jax.Array, env_steps: jax.Array):
    """(human state, executed actions, what the buffer stores beside them, metrics) for one
    step: the simulated human's takeovers over the batch (`env_steps` of training so far),
    then a person's on the env they watch at the teleop page."""
    before = human_state
    mask, executed = jnp.zeros(action.shape[0], bool), action
    if cfg.intervener == "expert":
        value = lambda a: cfg.critic_ensemble().values(learner.critic, obs, a).mean(0)  # noqa: E731
        human_state, mask, executed, _ = intervene.takeover(
            cfg.human, train_input.expert, human_state, env_state, action, key,
            train_input.env.unwrapped.dt, value, train_input.devices, env_steps)
    if train_input.person is not None:  # (on one device)
        from robojax.hil.live import join

        mask, executed = join(train_input.person, env_state, action, mask, executed)
        # The counts and the budget cover every takeover, the person's too.
        human_state = human_state._replace(in_control=mask,
                                           used=before.used + mask.sum().astype(jnp.int32))
    extra = {"policy_action": action, "intervened": mask,
             "takeover_start": mask & ~train_input.devices.local(before.in_control)}
    return human_state, executed, extra, simulated_human.metrics(
        before, human_state, train_input.env.unwrapped.dt)


def rlif_relabel(transition: dict, extra: dict) -> dict:
    """RLIF's reward: 0 everywhere but where a takeover starts, which becomes the policy's own
    action with reward -1 and no bootstrap from the next state."""
    start = extra["takeover_start"]
    return {**transition, "reward": -start.astype(jnp.float32),
            "action": jnp.where(start[:, None], extra["policy_action"], transition["action"]),
            "discount": jnp.where(start, 0.0, transition["discount"])}


def _transition(state: State, action: jax.Array, next_state: State) -> dict:
    """The batch of transitions one step made. A step whose env diverged (its reward or final
    observation not finite; the NaN guard restarts that env) is stored as terminal with zero
    reward and its own observation as the next, so no NaN reaches the buffer."""
    next_obs, reward = next_state.extras["final_obs"], next_state.reward
    finite = jnp.all(jnp.isfinite(next_obs), axis=-1) & jnp.isfinite(reward)
    discount = jnp.where(finite, 1.0 - next_state.terminated.astype(jnp.float32), 0.0)
    return {"obs": state.obs, "action": action, "reward": jnp.where(finite, reward, 0.0),
            "discount": discount,
            "next_obs": jnp.where(finite[..., None], next_obs, state.obs)}


def td_target(cfg: SACConfig, learner: Learner, batch: dict, key: jax.Array) -> jax.Array:
    """r + gamma * discount * (min over a random subset of target critics at (s', a')
    - alpha * log pi(a' | s')), with a' drawn from the current actor."""
    key_action, key_subset = jax.random.split(key)
    next_action, next_log_prob = make_actor(cfg).sample_and_log_prob(
        learner.actor, batch["next_obs"], key_action)
    ensemble = cfg.critic_ensemble()
    next_q = ensemble.values(learner.target_critic, batch["next_obs"], next_action)  # (E, B)
    subset = jax.random.choice(key_subset, cfg.num_critics, (cfg.target_min_over,),
                               replace=False)
    next_v = jnp.min(next_q[subset], axis=0)
    if cfg.backup_entropy:
        next_v = next_v - jnp.exp(learner.log_alpha) * next_log_prob
    target = batch["reward"] * cfg.reward_scaling + cfg.discount * batch["discount"] * next_v
    return jax.lax.stop_gradient(target)


def critic_update(cfg: SACConfig, learner: Learner, batch: dict, key: jax.Array,
                  devices: Devices = ONE_DEVICE) -> tuple[Learner, dict]:
    """One gradient step of the ensemble towards the TD target (the gradient averaged over
    the `devices`, each with its part of the batch), then Polyak averaging."""
    ensemble = cfg.critic_ensemble()
    target = td_target(cfg, learner, batch, key)

    def loss_fn(critic):
        outputs = ensemble.outputs(critic, batch["obs"], batch["action"])
        return ensemble.loss(outputs, target), ensemble.values_of(outputs)

    (loss, q), grads = jax.value_and_grad(loss_fn, has_aux=True)(learner.critic)
    grads = devices.mean(grads)
    updates, critic_opt = _optimizer(cfg).update(grads, learner.critic_opt, learner.critic)
    critic = optax.apply_updates(learner.critic, updates)
    target_critic = optax.incremental_update(critic, learner.target_critic, cfg.tau)
    info = {"loss/critic": loss, "sac/q_mean": q.mean(),
            "sac/td_error": jnp.mean(jnp.abs(q - target)), "sac/target_mean": target.mean()}
    return learner.replace(critic=critic, target_critic=target_critic,
                           critic_opt=critic_opt), info


def actor_update(cfg: SACConfig, learner: Learner, obs: jax.Array, action_size: int,
                 key: jax.Array, devices: Devices = ONE_DEVICE) -> tuple[Learner, dict]:
    """One step of the actor (maximize Q - alpha log pi) and of the temperature (towards the
    target entropy), both averaged over the `devices`."""
    actor, ensemble = make_actor(cfg), cfg.critic_ensemble()
    alpha = jnp.exp(learner.log_alpha)

    def loss_fn(params):
        action, log_prob = actor.sample_and_log_prob(params, obs, key)
        q = ensemble.values(learner.critic, obs, action)
        q = jnp.min(q, axis=0) if cfg.actor_q == "min" else jnp.mean(q, axis=0)
        return jnp.mean(alpha * log_prob - q), log_prob

    (loss, log_prob), grads = jax.value_and_grad(loss_fn, has_aux=True)(learner.actor)
    optimizer = _optimizer(cfg)
    # One exchange between devices for both: each is a latency on a slow interconnect.
    grads, entropy = devices.mean((grads, -jax.lax.stop_gradient(log_prob).mean()))
    updates, actor_opt = optimizer.update(grads, learner.actor_opt, learner.actor)
    target_entropy = cfg.target_entropy_per_dim * action_size
    alpha_grad = jax.grad(lambda la: la * (entropy - target_entropy))(learner.log_alpha)
    alpha_updates, alpha_opt = optimizer.update(alpha_grad, learner.alpha_opt)
    info = {"loss/actor": loss, "sac/entropy": entropy, "sac/temperature": alpha}
    return learner.replace(actor=optax.apply_updates(learner.actor, updates), actor_opt=actor_opt,
                           log_alpha=optax.apply_updates(learner.log_alpha, alpha_updates),
                           alpha_opt=alpha_opt), info


def sample_batch(cfg: SACConfig, train_input: TrainInput, state: TrainState,
                 key: jax.Array) -> dict:
    """A batch from the online buffer (and the demonstrations, and the human's takeovers),
    observations normalized: this device's share of it, from its own block of the online
    buffer."""
    offline = [("demos", train_input.demos), ("interventions", state.interventions)]
    offline = dict((name, buffer) for name, buffer in offline if buffer is not None)
    online = _own_block(state.buffer, train_input.devices)
    batch_size = cfg.batch_size // train_input.devices.count
    if not offline:
        batch = replay.sample(online, key, batch_size)  # holds LEARNER_FIELDS only
    else:
        fractions = {"online": 1.0 - cfg.demo_fraction}
        if len(offline) == 2:
            fractions |= {"demos": cfg.demo_fraction - cfg.intervention_fraction,
                          "interventions": cfg.intervention_fraction}
        else:
            fractions |= {name: cfg.demo_fraction for name in offline}
        batch = replay.sample_mixed(
            {"online": online, **offline}, fractions, key, batch_size,
            fields=LEARNER_FIELDS,
            fallback="online" if state.interventions is not None else None)
    norm = lambda x: normalize.observations(cfg, state.obs_stats, x)
    return {**batch, "obs": norm(batch["obs"]), "next_obs": norm(batch["next_obs"])}


def update(cfg: SACConfig, train_input: TrainInput, state: TrainState, action_size: int,
           key: jax.Array) -> tuple[Learner, dict]:
    """The iteration's critic updates, in groups of `critic_updates_per_actor` each followed
    by one actor and temperature update; metrics averaged (over the devices too)."""
    devices = train_input.devices

    def critic_step(learner, key_step):
        key_batch, key_target = jax.random.split(key_step)
        batch = sample_batch(cfg, train_input, state, key_batch)
        learner, info = critic_update(cfg, learner, batch, key_target, devices)
        return learner, (info, batch["obs"])

    def group(learner, key_group):
        key_critics, key_actor = jax.random.split(key_group)
        learner, (info, obs) = jax.lax.scan(
            critic_step, learner, jax.random.split(key_critics, cfg.critic_updates_per_actor))
        learner, actor_info = actor_update(cfg, learner, obs[-1], action_size, key_actor,
                                           devices)
        return learner, {**jax.tree.map(jnp.mean, info), **actor_info}

    groups = cfg.updates_per_iteration() // cfg.critic_updates_per_actor
    learner, info = jax.lax.scan(group, state.learner, jax.random.split(devices.key(key), groups))
    return learner, devices.mean(jax.tree.map(jnp.mean, info))


def _skipped_update(cfg: SACConfig, learner: Learner) -> dict:
    zero = jnp.zeros(())
    return {"loss/critic": zero, "sac/q_mean": zero, "sac/td_error": zero,
            "sac/target_mean": zero, "loss/actor": zero, "sac/entropy": zero,
            "sac/temperature": jnp.exp(learner.log_alpha)}


def train_iteration(cfg: SACConfig, train_input: TrainInput, state: TrainState
                    ) -> tuple[TrainState, dict]:
    """Collect `rollout_length` steps of every env into the buffer, then update (once the
    buffer holds `learning_starts` transitions); on several devices, once per device."""
    devices = train_input.devices
    if devices.axis is None:
        return _iteration(cfg, train_input, state)
    specs = _partition_specs(state)
    per_device = jax.shard_map(functools.partial(_iteration, cfg, train_input),
                               mesh=sharding.batch_mesh(), in_specs=(specs,),
                               out_specs=(specs, PartitionSpec()),
                               check_vma=False)  # MJX's solver loop carries unmarked values
    return per_device(state)


def _partition_specs(state: TrainState) -> TrainState:
    """Split over the devices: the envs and the online buffer's transitions (each device
    writes and samples its own block); the rest, the human and the interventions
    included, is the same on every device."""
    same = lambda tree: jax.tree.map(lambda _: PartitionSpec(), tree)  # noqa: E731
    return TrainState(
        learner=same(state.learner), obs_stats=same(state.obs_stats),
        buffer=replay.Buffer(jax.tree.map(sharding.split_spec, state.buffer.data),
                             PartitionSpec(), PartitionSpec()),
        env_state=jax.tree.map(sharding.split_spec, state.env_state), key=PartitionSpec(),
        iteration=PartitionSpec(), human=same(state.human),
        interventions=same(state.interventions))


def _own_block(buffer: replay.Buffer, devices: Devices) -> replay.Buffer:
    """One device's block of a buffer split into equal blocks that fill in step, as a ring of
    its own: the state keeps the whole buffer's position and size."""
    return buffer.replace(position=buffer.position // devices.count,
                          size=buffer.size // devices.count)


def _add(buffer: replay.Buffer, transitions: dict, devices: Devices) -> replay.Buffer:
    """`buffer` with this device's transitions written into its block."""
    block = replay.add(_own_block(buffer, devices), transitions)
    return block.replace(position=block.position * devices.count,
                         size=block.size * devices.count)


def _iteration(cfg: SACConfig, train_input: TrainInput, state: TrainState
               ) -> tuple[TrainState, dict]:
    devices = train_input.devices
    key, key_collect, key_update = jax.random.split(state.key, 3)
    state, steps, human_info = collect(cfg, train_input, state, key_collect)
    reward = devices.mean(steps["reward"].mean())
    steps = returns.n_step_transitions(steps, cfg.n_step, cfg.discount)
    flat = lambda tree: jax.tree.map(lambda x: x.reshape((-1, *x.shape[2:])), tree)  # noqa: E731
    transitions = flat(steps)
    obs_stats = state.obs_stats
    if cfg.normalize_observations:  # the same statistics of every env on every device
        obs_stats = normalize.update(obs_stats, flat(devices.gather(steps["obs"], axis=1)))
    state = state.replace(obs_stats=obs_stats, buffer=_add(state.buffer, transitions, devices))
    if state.interventions is not None:  # every device keeps every takeover
        every = flat(devices.gather(steps, axis=1))
        state = state.replace(interventions=replay.add_where(
            state.interventions, every, every["intervened"]))
    action_size = transitions["action"].shape[-1]
    learner, info = jax.lax.cond(
        state.buffer.size >= cfg.learning_starts,
        lambda: update(cfg, train_input, state, action_size, key_update),
        lambda: (state.learner, _skipped_update(cfg, state.learner)))
    metrics = {
        **info,
        **human_info,
        "train/reward": reward,
        "buffer/fill": state.buffer.size / cfg.buffer_capacity,
        "train/updates_per_transition": jnp.float32(
            cfg.grad_updates_per_step / cfg.num_envs),
    }
    return state.replace(learner=learner, key=key, iteration=state.iteration + 1), metrics


def act(cfg: SACConfig, state: TrainState, obs: jax.Array,
        noise: jax.Array | None = None) -> jax.Array:
    """tanh of the actor's mean, or with standard normal `noise` shaped like the action, the
    sample tanh(mean + std * noise)."""
    obs = normalize.observations(cfg, state.obs_stats, obs)
    mean, log_std = make_actor(cfg).mean_and_log_std(state.learner.actor, obs)
    return jnp.tanh(mean if noise is None else mean + jnp.exp(log_std) * noise)


controller, evaluate, program = acting.mean_or_sampled_policy(
    act, lambda state: (state.learner.actor.action_size,))
Config = SACConfig
