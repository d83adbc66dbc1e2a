"""A simulated human watching a batch of envs and taking over from the policy, as pure functions
inside the compiled training step.

    human = HumanConfig(rule="deviation", threshold=0.5, reaction_delay=3, attention=4)
    hstate = init(num_envs, action_size)
    hstate, takeover, action = act(human, hstate, policy_action, expert_action, key,
                                   episode_start=state_was_reset)

The human acts with a reference (the task's scripted expert, `envs.solver`) and decides when
to step in by a rule, like RLIF's simulated interveners:
- "deviation": the policy's action is more than `threshold` from the expert's (L1 or L2 over
  normalized actions), each step alone or, with `smoothing`, averaged over the last few steps
  (a person sees where the robot goes, not each step's exploration noise);
- "stall": the task's progress signal (passed by the caller: the env's reward, or one of its
  metrics named by `progress_metric`, e.g. a shaped closeness to the goal on a sparse-reward
  task) has not improved by `stall_progress` for `stall_steps` steps;
- "value": a learned reference value says the policy's action is worse than the expert's,
  Q(s, a_policy) < value_ratio * Q(s, a_expert) (the caller passes both values).
A person is slow and finite, so the model has each of these as a field: the takeover starts
`reaction_delay` steps after the rule first fires (whether or not it still does); once in
control they keep it for at least `min_takeover` steps and hand back when the policy's action
is within `release_threshold` of theirs (hysteresis); their actions carry Gaussian noise; they
watch at most `attention` envs at once (the most deviant first) and give `budget` intervention
steps in all. Takeovers end with the episode. A person may also relax as training goes on:
`trusted_threshold` raises the deviation threshold on a schedule of the run's env steps (`act`'s
`env_steps`), not on how well the policy does.
"""

import dataclasses
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class HumanConfig:
    rule: Literal["deviation", "stall", "value"] = "deviation"
    """When to step in (see the module docstring)."""
    threshold: float = 0.5
    """deviation: the distance between the policy's and the expert's actions that triggers."""
    trusted_threshold: float | None = None
    """deviation: the threshold of a person who comes to trust the robot as training goes on:
    `threshold` at the start, moving linearly to this one over the run's first `trust_steps`
    env steps, then kept (None: `threshold` throughout)."""
    trust_steps: int = 0
    """deviation with `trusted_threshold`: the env steps of training the move takes."""
    norm: Literal["l1", "l2"] = "l2"
    """deviation: the distance over the action's components."""
    smoothing: int = 1
    """deviation and release: compare the policy's and the expert's actions averaged over about
    this many recent steps of the episode (a running mean for the first ones, then an
    exponential average with weight 1/smoothing); 1: each step alone."""
    release_threshold: float = 0.25
    """Hand back once the policy's action is this close to the expert's (after
    `min_takeover` steps); above any possible distance (e.g. 100): hand back after
    `min_takeover` steps, whatever the policy would do."""
    stall_steps: int = 30
    """stall: steps without progress that trigger."""
    stall_progress: float = 1e-3
    """stall: the least improvement of the progress signal that counts as progress."""
    progress_metric: str | None = None
    """stall: the env metric read as progress, e.g. "reward/block_at_goal" (the shaped term a
    sparse-reward task still logs); None: the env's reward."""
    value_ratio: float = 0.9
    """value: trigger when Q(s, a_policy) < value_ratio * Q(s, a_expert)."""
    reaction_delay: int = 3
    """Steps from the rule firing to the takeover."""
    min_takeover: int = 10
    """Steps a takeover lasts at least."""
    action_noise: float = 0.1
    """Std of the Gaussian noise on the human's (normalized) actions."""
    attention: int | None = None
    """At most this many envs corrected at once (None: all)."""
    budget: int | None = None
    """Intervention steps over the whole run (None: unlimited)."""

    def __post_init__(self):
        for name in ("reaction_delay", "min_takeover", "stall_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"HumanConfig.{name} must be >= 0, got {getattr(self, name)}.")
        if self.trusted_threshold is not None and (self.rule != "deviation"
                                                   or self.trust_steps < 1):
            raise ValueError("HumanConfig.trusted_threshold moves the deviation rule's "
                             "threshold over training: it needs rule='deviation' and "
                             f"trust_steps >= 1, got rule={self.rule!r}, "
                             f"trust_steps={self.trust_steps}.")
        if self.smoothing < 1:
            raise ValueError(f"HumanConfig.smoothing must be >= 1 (1: each step alone), got "
                             f"{self.smoothing}.")
        if self.attention is not None and self.attention < 1:
            raise ValueError(f"HumanConfig.attention must be >= 1 (or None for every env), got "
                             f"{self.attention}.")


class HumanState(NamedTuple):
    countdown: jax.Array
    """(B,) steps until a noticed takeover starts; -1 when nothing is noticed."""
    in_control: jax.Array
    """(B,) whether the human holds the env."""
    held: jax.Array
    """(B,) steps of the current takeover."""
    best_progress: jax.Array
    """(B,) the best progress this episode (stall rule); the lowest float before any, finite
    so that the trainer's non-finite check passes."""
    since_progress: jax.Array
    """(B,) steps since the progress last improved (stall rule)."""
    used: jax.Array
    """() intervention steps given so far."""
    mean_difference: jax.Array
    """(B, A) the policy's minus the expert's action, averaged over this episode's recent steps
    (`smoothing`)."""
    watched: jax.Array
    """(B,) steps of this episode seen so far, counted up to `smoothing`."""


def init(num_envs: int, action_size: int) -> HumanState:
    # Every field its own array: a train step that donates the state may not see one twice.
    zeros = lambda: jnp.zeros(num_envs, jnp.int32)  # noqa: E731
    lowest = jnp.finfo(jnp.float32).min
    return HumanState(countdown=zeros() - 1, in_control=jnp.zeros(num_envs, bool),
                      held=zeros(), best_progress=jnp.full(num_envs, lowest),
                      since_progress=zeros(), used=jnp.zeros((), jnp.int32),
                      mean_difference=jnp.zeros((num_envs, action_size)), watched=zeros())


def distance(cfg: HumanConfig, difference: jax.Array) -> jax.Array:
    """(B,) the size of (B, A) differences between the policy's and the expert's actions."""
    diff = jnp.abs(difference)
    return diff.sum(-1) if cfg.norm == "l1" else jnp.sqrt((diff**2).sum(-1))


def _average(cfg: HumanConfig, state: HumanState, difference: jax.Array) -> HumanState:
    """The state with this step's action difference in its average: the mean of the episode's
    steps so far while they are fewer than `smoothing`, then an exponential average."""
    watched = jnp.minimum(state.watched + 1, cfg.smoothing)
    weight = (1.0 / watched.astype(difference.dtype))[:, None]
    mean = (1.0 - weight) * state.mean_difference + weight * difference
    return state._replace(mean_difference=mean, watched=watched)


def act(cfg: HumanConfig, state: HumanState, policy_action: jax.Array,
        expert_action: jax.Array, key: jax.Array, *, episode_start: jax.Array | None = None,
        progress: jax.Array | None = None, q_policy: jax.Array | None = None,
        q_expert: jax.Array | None = None, env_steps: jax.Array | None = None
        ) -> tuple[HumanState, jax.Array, jax.Array]:
    """(new state, takeover mask (B,), executed action (B, A)) for one step of a batch.

    `episode_start` (B,) marks envs whose episode began this step: their takeover ends and the
    rule's memory clears. `progress` feeds the stall rule, `q_policy`/`q_expert` the value rule,
    `env_steps` (the run's env steps so far) the `trusted_threshold`.
    """
    if episode_start is not None:
        state = _forget(state, episode_start)
    state = _average(cfg, state, policy_action - expert_action)
    gap = distance(cfg, state.mean_difference)
    fires, state = _rule(cfg, state, gap, progress, q_policy, q_expert, env_steps)
    # Noticing starts a countdown of reaction_delay steps; it runs out whether or not the rule
    # still fires.
    idle = ~state.in_control & (state.countdown < 0)
    countdown = jnp.where(idle & fires, cfg.reaction_delay, state.countdown)
    ready = ~state.in_control & (countdown == 0)
    keep = state.in_control & ((state.held < cfg.min_takeover) | (gap > cfg.release_threshold))
    start = _within_attention(cfg, keep, ready, gap)
    in_control = keep | start
    if cfg.budget is not None:
        in_control &= state.used + jnp.cumsum(in_control) <= cfg.budget
    noise = cfg.action_noise * jax.random.normal(key, expert_action.shape)
    human_action = jnp.clip(expert_action + noise, -1.0, 1.0)
    action = jnp.where(in_control[:, None], human_action, policy_action)
    countdown = jnp.where(ready & ~start, 0, jnp.where(countdown > 0, countdown - 1, -1))
    countdown = jnp.where(start, -1, countdown)  # waiting for attention keeps it at 0
    state = state._replace(countdown=countdown, in_control=in_control,
                           held=jnp.where(in_control, state.held + 1, 0),
                           used=state.used + in_control.sum().astype(jnp.int32))
    return state, in_control, action


def _forget(state: HumanState, episode_start: jax.Array) -> HumanState:
    fresh = init(*state.mean_difference.shape)._replace(used=state.used)
    start = lambda x: episode_start.reshape(-1, *[1] * (x.ndim - 1))  # noqa: E731
    return jax.tree.map(lambda new, old: jnp.where(start(old), new, old) if old.ndim else old,
                        fresh, state)


def threshold(cfg: HumanConfig, env_steps: jax.Array | None = None) -> jax.Array | float:
    """The deviation rule's threshold after `env_steps` of training (see
    `trusted_threshold`); `threshold` when either is None."""
    if cfg.trusted_threshold is None or env_steps is None:
        return cfg.threshold
    trust = jnp.clip(jnp.asarray(env_steps, jnp.float32) / cfg.trust_steps, 0.0, 1.0)
    return cfg.threshold + trust * (cfg.trusted_threshold - cfg.threshold)


def _rule(cfg: HumanConfig, state: HumanState, gap, progress, q_policy, q_expert, env_steps):
    if cfg.rule == "deviation":
        return gap > threshold(cfg, env_steps), state
    if cfg.rule == "stall":
        if progress is None:
            raise ValueError("the stall rule needs the task's progress: pass progress=...")
        improved = progress > state.best_progress + cfg.stall_progress
        since = jnp.where(improved, 0, state.since_progress + 1)
        best = jnp.where(improved, progress, state.best_progress)
        state = state._replace(best_progress=best, since_progress=since)
        return since >= cfg.stall_steps, state
    if q_policy is None or q_expert is None:
        raise ValueError("the value rule needs Q(s, a_policy) and Q(s, a_expert): pass "
                         "q_policy=... and q_expert=...")
    return q_policy < cfg.value_ratio * q_expert, state


def _within_attention(cfg: HumanConfig, keep: jax.Array, ready: jax.Array,
                      gap: jax.Array) -> jax.Array:
    """The envs whose takeover starts now: the ready ones, the most deviant first, as many as
    the free attention allows (envs already held keep theirs)."""
    if cfg.attention is None:
        return ready
    free = cfg.attention - keep.sum()
    order = jnp.argsort(-jnp.where(ready, gap, -jnp.inf))
    rank = jnp.zeros_like(order).at[order].set(jnp.arange(order.shape[0]))
    return ready & (rank < free)


def metrics(previous: HumanState, state: HumanState, dt: float) -> dict:
    """One step's counts: takeovers started, envs held, their share, the human-seconds spent
    (held envs x control dt), and the intervention steps given so far."""
    held = state.in_control.sum()
    return {"hil/interventions": (state.in_control & ~previous.in_control).sum(),
            "hil/intervention_steps": held,
            "hil/intervention_rate": held / state.in_control.shape[0],
            "hil/human_seconds": held * dt, "hil/budget_used": state.used}


def summarize(cfg: HumanConfig, steps: dict, state: HumanState, transitions: int, dt: float,
              env_steps: jax.Array) -> dict:
    """A rollout's metrics from the per-step ones stacked over time (`metrics` inside a scan):
    counts summed over the steps, the budget as it ends, the intervention rate over its
    `transitions`, the human-seconds spent since the start of training and, for a person who
    comes to trust the robot, the threshold the rollout ran at (`env_steps` before it)."""
    out = {k: v.sum() if k != "hil/budget_used" else v[-1] for k, v in steps.items()}
    out |= {"hil/intervention_rate": out["hil/intervention_steps"] / transitions,
            "hil/human_seconds_total": state.used * dt}
    if cfg.trusted_threshold is not None:
        out["hil/threshold"] = threshold(cfg, env_steps)
    return out
