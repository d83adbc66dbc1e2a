"""The contract between the training loop (`robojax.train`) and an algorithm.

An algorithm is a module of pure functions over its own `TrainState` pytree, registered by
name in `robojax.algos`. The loop calls them in this order:

    train_input = make_train_input(cfg, env)            # once, on the host
    state = init(cfg, env, train_input, key)            # per seed
    state, metrics = train_iteration(cfg, train_input, state)   # compiled once, scanned
    metrics = evaluate(cfg, eval_env, state, key)       # compiled; eval_env from make_eval_env
    policy = controller(cfg, state)                     # videos, `robojax collect`
    program = program(cfg, state)                       # `robojax export`

`cfg` is the module's `Config`, a frozen subclass of `AlgoConfig`; `env` is the unbatched task.
What iterations count (env steps or gradient steps) and which metric is plotted are the
module's `PROGRESS_UNIT`, `TRAIN_KEY` and `PLOT_KEY`. An algorithm never imports another: what
several share lives in neutral modules (`acting`, `returns`, `squashed_actor`,
`robojax.diffsim`, `robojax.core.normalize`).

Restoring a checkpoint needs only the state's shapes, from `init` under `jax.eval_shape`. An
algorithm whose `make_train_input` reads files or opens services also gives
`restore_input(cfg, env)`, a train input that does neither but gives `init` the same shapes,
so that its runs evaluate, export and deploy from the run directory alone.
"""

import dataclasses
from typing import Any, Protocol, runtime_checkable

import jax
import optax
from flax import struct

from robojax.core import normalize
from robojax.core.controller import Controller
from robojax.core.env import Env
from robojax.core.program import PolicyProgram
from robojax.core.types import State

ENV_STEPS, GRAD_STEPS = "env_steps", "grad_steps"
"""The two progress units: RL counts env steps, learning from data counts gradient steps."""


@dataclasses.dataclass(frozen=True)
class AlgoConfig:
    """Fields every algorithm's config has; subclasses add theirs."""

    num_evals: int = 10
    """Evaluations (and log points) over the run, plus one before training."""
    num_eval_envs: int = 128
    """Parallel episodes per evaluation."""
    episode_length: int | None = None
    """Episode time limit in control steps (training and evaluation); None: the env config's."""

    def steps_per_iteration(self) -> int:
        """Progress units (env or gradient steps) one `train_iteration` advances."""
        raise NotImplementedError

    def num_iterations(self) -> int:
        """Iterations in the whole run."""
        raise NotImplementedError

    def validate(self) -> None:
        """Raise a ValueError naming the field and the fix when the config cannot run."""
        _check_positive(self, "num_eval_envs")
        if self.num_evals < 0:
            raise ValueError(f"num_evals must be >= 0, got {self.num_evals}.")


@dataclasses.dataclass(frozen=True)
class RolloutConfig(AlgoConfig):
    """Learners that step `num_envs` envs for `rollout_length` steps per iteration."""

    num_envs: int = 64
    """Envs stepped in parallel."""
    num_timesteps: int = 1_000_000
    """Total env steps to train for."""
    rollout_length: int = 32
    """Steps per env per iteration."""

    def steps_per_iteration(self) -> int:
        return self.num_envs * self.rollout_length

    def num_iterations(self) -> int:
        return max(1, -(-self.num_timesteps // self.steps_per_iteration()))

    def validate(self) -> None:
        super().validate()
        for name in ("num_envs", "num_timesteps", "rollout_length"):
            _check_positive(self, name)


def _check_positive(cfg, name: str) -> None:
    value = getattr(cfg, name)
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}.")


@struct.dataclass
class RolloutState:
    """The train state of a learner with one optimizer, running observation statistics and a
    batch of envs that carries over between iterations (PPO, APG)."""

    params: dict
    opt_state: optax.OptState
    obs_stats: normalize.RunningStats
    env_state: State
    key: jax.Array
    iteration: jax.Array


@runtime_checkable
class Algorithm(Protocol):
    """What a registered algorithm module provides (see the module docstring for the order)."""

    Config: type[AlgoConfig]
    PROGRESS_UNIT: str
    """`ENV_STEPS` or `GRAD_STEPS`: what the x axis of the run's metrics counts."""
    TRAIN_KEY: str
    """The training metric the progress bar shows, e.g. "train/reward" or "train/loss"."""
    PLOT_KEY: str
    """The evaluation metric the learning curve plots, e.g. "eval/episode_reward"."""

    def make_train_input(self, cfg: Any, env: Env) -> Any:
        """Everything `train_iteration` consumes besides the state: the batched training env,
        demonstrations on device, an expert trajectory. Loads files, once."""

    def init(self, cfg: Any, env: Env, train_input: Any, key: jax.Array) -> Any:
        """The initial train state (a pytree) of one seed."""

    def train_iteration(self, cfg: Any, train_input: Any, state: Any) -> tuple[Any, dict]:
        """One iteration; pure and jit-able. Returns the new state and scalar metrics."""

    def evaluate(self, cfg: Any, eval_env: Env, state: Any, key: jax.Array) -> dict:
        """Mean `eval/...` metrics over the batched, time-limited `eval_env`'s episodes."""

    def controller(self, cfg: Any, state: Any) -> Controller:
        """The trained policy as it acts in a rollout (deterministic where it can be)."""

    def program(self, cfg: Any, state: Any) -> PolicyProgram:
        """The trained policy as one pure function of the observation history and explicit
        noise (`robojax.core.program`): what `robojax export` compiles."""
