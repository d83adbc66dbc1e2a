"""Base class for tasks simulated by MuJoCo MJX, built from MJCF."""

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

from robojax.core import robustness
from robojax.core.differentiable import fixed_step_linesearch, guard_reverse_mode
from robojax.core.env import Env
from robojax.core.fields import check_types
from robojax.core.mjcf import load_mj_model
from robojax.core.teleop import TeleopMap, default_map
from robojax.core.types import ArraySpec, State


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Settings every MJX task shares; tasks subclass this and add their own fields."""

    episode_length: int = 1000
    """Control steps before an episode is truncated."""
    n_substeps: int = 1
    """Physics steps per control step (control dt = n_substeps * timestep)."""
    timestep: float | None = None
    """Physics timestep in seconds; None keeps the MJCF's."""
    reward_scales: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """Weight of each named reward term; the reward is their weighted sum."""
    obs_noise: float = 0.0
    """Std of zero-mean Gaussian noise added to every observation (`robojax.core.robustness`)."""
    action_delay: tuple[int, int] = (0, 0)
    """Control steps each action is executed late, drawn per episode and env from low..high
    (`robojax.core.robustness`); e.g. (0, 2) in training, (2, 2) to evaluate at 2."""
    observe_last_actions: int = 0
    """The observation ends with the last this-many actions the policy sent, oldest first
    (`robojax.core.robustness`; `obs_noise` applies to them too); e.g. 2 beside
    `action_delay=(0, 2)`."""

    def __post_init__(self):
        check_types(self)
        positive = {"episode_length": self.episode_length, "n_substeps": self.n_substeps,
                    "timestep": 1.0 if self.timestep is None else self.timestep}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{type(self).__name__}.{name} must be positive, got {value}.")
        for term, scale in self.reward_scales.items():
            if not isinstance(scale, int | float) or isinstance(scale, bool):
                raise TypeError(f"reward_scales[{term!r}] must be a number, got {scale!r}.")
        robustness.check(self.obs_noise, self.action_delay, self.observe_last_actions)


_STATE_FIELDS = frozenset({"time", "qpos", "qvel", "act", "history", "qacc_warmstart",
                           "plugin_state", "ctrl", "qfrc_applied", "xfrc_applied", "eq_active",
                           "mocap_pos", "mocap_quat", "userdata"})
"""`mjx.Data`'s inputs: the state a task's `init_state` sets, which no forward pass writes."""
_POSE_FIELDS = frozenset({"xpos", "xquat", "xmat", "xipos", "ximat", "xanchor", "xaxis",
                          "geom_xpos", "geom_xmat", "site_xpos", "site_xmat"})
"""What `mjx.kinematics` computes from them: bodies', geoms' and sites' poses."""


def fields_read(fn, data: mjx.Data, *args) -> set[str]:
    """The names of the fields of `data` (an `mjx.Data` or its shape) that `fn(data, *args)`
    reads."""
    leaves = jax.tree_util.tree_flatten_with_path(data)[0]
    jaxpr = jax.make_jaxpr(fn)(data, *args).jaxpr
    used = {id(v) for eqn in jaxpr.eqns for v in eqn.invars} | {id(v) for v in jaxpr.outvars}
    return {path[0].name for (path, _), var in zip(leaves, jaxpr.invars[:len(leaves)],
                                                    strict=True)
            if id(var) in used}


class MjxEnv(Env):
    """An MJX task: subclasses define `init_state`, `observe`, `reward_terms`, `terminated`.

    Actions are in [-1, 1] per actuator and scaled to the actuators' control ranges.
    `robojax.core.differentiable.differentiable(env)` gives a copy that `jax.grad` passes.

    A reset computes the initial state's poses (`mjx.kinematics`: bodies, geoms, sites), or
    MJX's whole forward pass where the task's `observe`, or `reward_terms` on the reset state
    as `prev`, reads more (contacts, forces, sensors, velocities of bodies): tracing them at
    construction tells which. Code of your own that reads such fields of a reset's
    `state.data` runs `mjx.forward(env.mjx_model, state.data)` first.
    """

    differentiable: bool = False
    """Whether steps pass reverse-mode gradients (set by `differentiable(env)`)."""

    def __init__(self, xml: str | Path, config: EnvConfig, assets: dict[str, bytes] | None = None):
        self.config = config
        self._mj_model = load_mj_model(xml, assets)
        if config.timestep is not None:
            self._mj_model.opt.timestep = config.timestep
        if config.n_substeps < 1:
            raise ValueError(f"n_substeps must be >= 1, got {config.n_substeps}")
        # On this process's own device: MJX's default, jax.devices()[0], belongs to process 0
        # in a multi-process run.
        self._mjx_model = mjx.put_model(self._mj_model, device=jax.local_devices()[0])
        nu = self._mj_model.nu
        limited = self._mj_model.actuator_ctrllimited.astype(bool)
        ranges = np.where(limited[:, None], self._mj_model.actuator_ctrlrange, [[-1.0, 1.0]])
        self._ctrl_low = jnp.asarray(ranges[:, 0], jnp.float32) if nu else jnp.zeros(0)
        self._ctrl_high = jnp.asarray(ranges[:, 1], jnp.float32) if nu else jnp.zeros(0)
        zero = jax.eval_shape(self._zero_data)
        obs = jax.eval_shape(self.observe, zero, jax.random.PRNGKey(0))
        self._task_obs_shape = tuple(obs.shape)
        last = config.observe_last_actions * nu
        if last and len(obs.shape) != 1:
            raise ValueError(f"observe_last_actions needs a flat observation; {type(self).__name__}"
                             f"'s is {obs.shape}. Drop observe_last_actions for this task.")
        self._obs_spec = ArraySpec((obs.shape[0] + last,) if last else tuple(obs.shape),
                                   np.float32)
        self._reset_forward = not self._reset_reads(zero) <= _STATE_FIELDS | _POSE_FIELDS
        self._build_programs()

    def _reset_reads(self, data: mjx.Data) -> set[str]:
        """The fields of a reset's `mjx.Data` (`data`, or its shape) that its observation and
        the first step's reward read (the reward's `prev`)."""
        def first_reads(prev, data):
            action = jnp.zeros(self.action_spec.shape)
            return self.observe(prev, jax.random.PRNGKey(0)), self.reward_terms(prev, data, action)

        return fields_read(first_reads, data, data)

    def _build_programs(self) -> None:
        """`reset` and `step` as jitted programs of this env's own model. Called eagerly they
        run compiled, not op by op; inside other programs (training, evaluation, reset caches,
        under vmap or scan) each is traced once per input shape and shared, so the MJX physics
        is not traced again for every program that steps the env."""
        self._programs_model = self._mjx_model
        self._reset_program = jax.jit(self._reset)
        self._step_program = jax.jit(self._step)

    def share_programs(self, twin: "MjxEnv") -> None:
        """Run `twin`'s `reset` and `step` programs, traced and compiled once for both: for an
        env of the same class built from an equal config (`robojax.envs.make` does this)."""
        if type(twin) is not type(self) or twin.differentiable != self.differentiable:
            raise TypeError(f"share_programs needs an env of the same kind, got "
                            f"{type(twin).__name__} for {type(self).__name__}.")
        self._reset_program, self._step_program = twin._reset_program, twin._step_program

    # -- properties users build on -------------------------------------------------------------
    @property
    def mj_model(self) -> mujoco.MjModel:
        return self._mj_model

    @property
    def mjx_model(self) -> mjx.Model:
        return self._mjx_model

    @property
    def n_substeps(self) -> int:
        return self.config.n_substeps

    @property
    def dt(self) -> float:
        """Control timestep in seconds."""
        return float(self._mj_model.opt.timestep) * self.config.n_substeps

    @property
    def ctrl_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Actuator command bounds (low, high): action -1 maps to low, +1 to high."""
        return np.asarray(self._ctrl_low), np.asarray(self._ctrl_high)

    @property
    def observation_spec(self) -> ArraySpec:
        return self._obs_spec

    @property
    def task_obs_size(self) -> int:
        """How many values `observe` returns: the observation without the last actions that
        `observe_last_actions` appends (what a robot's runtime reads from its sensors)."""
        return int(np.prod(self._task_obs_shape))

    @property
    def action_spec(self) -> ArraySpec:
        return ArraySpec((self._mj_model.nu,), np.float32, -1.0, 1.0)

    # -- what tasks define ---------------------------------------------------------------------
    def init_state(self, data: mjx.Data, key: jax.Array) -> mjx.Data:
        """Set the episode's initial qpos/qvel (and mocap targets); default: the model's qpos0."""
        return data

    def observe(self, data: mjx.Data, key: jax.Array) -> jax.Array:
        raise NotImplementedError

    def observation_layout(self) -> list[tuple[str, int, str]]:
        """(name, size, unit) of each consecutive part of what `observe` returns ("" where it
        has no unit, e.g. a cosine). Default: one part."""
        return [("obs", self.task_obs_size, "")]

    def observation_parts(self) -> list[tuple[str, int, str]]:
        """(name, size, unit) of each part of the observation the policy gets: the task's
        `observation_layout()`, then the last actions where `observe_last_actions` adds them.
        Exports write it into their contract."""
        count = self.config.observe_last_actions
        last = [("last_actions", count * self.action_spec.size, "action")] if count else []
        return [*self.observation_layout(), *last]

    def reward_terms(self, prev: mjx.Data, data: mjx.Data, action: jax.Array) -> dict:
        """Unscaled reward terms by name; each is logged as `reward/<name>`."""
        raise NotImplementedError

    def terminated(self, data: mjx.Data) -> jax.Array:
        return jnp.array(False)

    @property
    def actions_are_commands(self) -> bool:
        """Whether an action maps onto the actuators' commands by their ranges alone (low at
        -1, high at 1), as exports and MuJoCo C replays assume; False where `action_to_ctrl`
        reads the state."""
        return True

    def action_to_ctrl(self, data: mjx.Data, action: jax.Array) -> jax.Array:
        """The actuators' commands for `action` (in [-1, 1]) from state `data`: by default
        each component spans its actuator's control range."""
        return self._ctrl_low + (action + 1.0) * 0.5 * (self._ctrl_high - self._ctrl_low)

    def teleop_map(self) -> TeleopMap:
        """How a person's keys and gamepad drive the action in `robojax teleop`; default:
        arrow keys and the left stick for the first two components, then letter pairs."""
        return default_map(self.action_spec.shape[0])

    def combine_reward(self, terms: dict) -> jax.Array:
        """The reward from its terms: by default their sum weighted by `config.reward_scales`."""
        scales = self.config.reward_scales
        return sum(scales.get(name, 1.0) * value for name, value in terms.items())

    # -- the contract ---------------------------------------------------------------------------
    def _zero_data(self) -> mjx.Data:
        return mjx.make_data(self._mjx_model)

    def reset(self, key: jax.Array) -> State:
        if self._mjx_model is not self._programs_model:  # per-env fields swapped in (DR)
            return self._reset(key)
        return self._reset_program(key)

    def step(self, state: State, action: jax.Array) -> State:
        action = check_action(action, self.action_spec)  # before the program: a NaN is an error
        # The step computes its own metrics and reads none: without those that wrappers added
        # (the NaN guard's), a training batch and an evaluation share one traced program.
        state = state.replace(metrics={})
        if self._mjx_model is not self._programs_model:
            return self._step(state, action)
        return self._step_program(state, action)

    def _reset(self, key: jax.Array) -> State:
        key, key_init, key_obs = jax.random.split(key, 3)
        data = self.init_state(mjx.make_data(self.mjx_model), key_init)
        # Only the poses where the observation and the first reward read nothing else: a
        # third of the forward pass's compile time, and the first step computes everything
        # from the state alone, so the episode is the same to the last bit.
        data = (mjx.forward if self._reset_forward else mjx.kinematics)(self.mjx_model, data)
        terms = jax.eval_shape(self.reward_terms, data, data, jnp.zeros(self.action_spec.shape))
        metrics = {**{f"reward/{name}": jnp.zeros(()) for name in terms},
                   "nonfinite_action": jnp.zeros(())}
        extras = {}
        if self.config.action_delay != (0, 0):
            extras = robustness.start_queue(jax.random.fold_in(key, 0xDE1A),
                                            self.config.action_delay, self.action_spec.size)
        if self.config.observe_last_actions:
            extras = {**extras, **robustness.start_last_actions(
                self.config.observe_last_actions, self.action_spec.size)}
        return State(
            data=data, obs=self._observe(data, key_obs, extras), reward=jnp.zeros(()),
            done=jnp.array(False), truncated=jnp.array(False), step=jnp.zeros((), jnp.int32),
            key=key, metrics=metrics, extras=extras,
        )

    def _step(self, state: State, action: jax.Array) -> State:
        # The reward sees the action the physics executes: clipped to [-1, 1], and a NaN or
        # infinite component (which would poison the physics) replaced by 0, the middle of its
        # range, and counted in `metrics["nonfinite_action"]`.
        action = check_action(action, self.action_spec)
        finite = jnp.isfinite(action)
        action = jnp.clip(jnp.where(finite, action, 0.0), -1.0, 1.0)
        extras = state.extras
        if self.config.observe_last_actions:
            extras = robustness.remember(extras, action)
        if self.config.action_delay != (0, 0):
            action, extras = robustness.delay(extras, action)
        data = self.physics_step(state.data, self.action_to_ctrl(state.data, action))
        # The episode key stays fixed; per-step randomness folds in the step count, and XLA
        # drops it entirely for tasks whose observations are noise-free.
        key_obs = jax.random.fold_in(state.key, state.step)
        terms = self.reward_terms(state.data, data, action)
        reward = self.combine_reward(terms)
        metrics = {**{f"reward/{name}": value for name, value in terms.items()},
                   "nonfinite_action": jnp.sum(~finite).astype(jnp.float32)}
        return state.replace(
            data=data, obs=self._observe(data, key_obs, extras),
            reward=jnp.asarray(reward, jnp.float32),
            done=jnp.asarray(self.terminated(data), bool), truncated=jnp.array(False),
            step=state.step + 1, metrics=metrics, extras=extras,
        )

    def _observe(self, data: mjx.Data, key: jax.Array, extras: dict) -> jax.Array:
        obs = self.observe(data, key)
        if self.config.observe_last_actions:
            obs = robustness.with_last_actions(obs, extras)
        if self.config.obs_noise:
            obs = robustness.add_noise(obs, key, self.config.obs_noise)
        return obs

    def physics_step(self, data: mjx.Data, ctrl: jax.Array) -> mjx.Data:
        """Hold `ctrl` for `n_substeps` physics steps."""
        if self.differentiable:
            with fixed_step_linesearch():
                return self._substeps(data, ctrl)
        if self._mj_model.opt.iterations > 1:  # a while_loop: name the switch in reverse mode
            return guard_reverse_mode(self._substeps, self.name)(data, ctrl)
        return self._substeps(data, ctrl)

    def _substeps(self, data: mjx.Data, ctrl: jax.Array) -> mjx.Data:
        data = data.replace(ctrl=ctrl)
        if self.config.n_substeps == 1:
            return mjx.step(self.mjx_model, data)
        return jax.lax.fori_loop(
            0, self.config.n_substeps, lambda _, d: mjx.step(self.mjx_model, d), data)

    def render(self, states: State | list[State], *, index: int | None = None, width: int = 320,
               height: int = 240, camera: int | str = -1) -> list[np.ndarray]:
        """Frames (H, W, 3 uint8) of a state, a list of states, or a stacked trajectory.

        Pass `index` to pick one env when the states are batched.
        """
        from robojax.io.video import render_qpos

        qpos, mocap = _trajectory_arrays(states, index)
        return render_qpos(self.mj_model, qpos, mocap, width=width, height=height, camera=camera)


def _trajectory_arrays(states: Any, index: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(T, nq) qpos and (T, nmocap, 3) mocap positions from one state, a list, or a trajectory.

    With `index`, the states are batched and env `index` of the batch is taken.
    """
    def physics(s):
        return s.data if isinstance(s, State) else s

    if isinstance(states, list | tuple):  # only the two fields drawn, not every leaf of the state
        qpos = np.stack([np.asarray(physics(s).qpos) for s in states])
        mocap = np.stack([np.asarray(physics(s).mocap_pos) for s in states])
    else:
        qpos, mocap = np.asarray(physics(states).qpos), np.asarray(physics(states).mocap_pos)
    if index is not None:
        qpos, mocap = qpos[..., index, :], mocap[..., index, :, :]
    if qpos.ndim == 1:
        qpos, mocap = qpos[None], mocap[None]
    return qpos, mocap


def require_command_actions(env: Any, purpose: str) -> None:
    """Raise a clear error where `env`'s actions are not its actuators' commands scaled by
    their ranges (push-t's "delta" actions are offsets from the state), which `purpose` (a
    policy export, a MuJoCo C replay) assumes."""
    inner = getattr(env, "unwrapped", env)
    if getattr(inner, "actions_are_commands", True):
        return
    mode = getattr(getattr(inner, "config", None), "action_mode", None)
    raise ValueError(f"{inner.name}'s actions are offsets from its state (action_mode="
                     f"{mode!r}), not commands scaled by the actuators' control ranges, which "
                     f"{purpose} needs; train with --env-config action_mode='position' for "
                     f"{purpose}.")


def check_action(action: jax.Array, spec: ArraySpec) -> jax.Array:
    """Check an action's shape and dtype against `spec` (raises with the fix), cast to float32."""
    action = jnp.asarray(action)
    if action.shape != spec.shape:
        raise ValueError(f"action has shape {action.shape}, expected {spec.shape} per env "
                         f"(batched envs take (num_envs, *{spec.shape})). Reshape the action.")
    if not jnp.issubdtype(action.dtype, jnp.floating):
        raise TypeError(f"action has dtype {action.dtype}, expected a float array; cast it with "
                        "action.astype(jnp.float32).")
    if not isinstance(action, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(action))):
        raise ValueError("action contains NaN or inf; check the policy's output. Inside a "
                         "compiled rollout the NaN guard resets such envs instead.")
    return action.astype(jnp.float32)
