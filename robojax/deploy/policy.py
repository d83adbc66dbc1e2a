"""An exported policy on the robot: ONNX Runtime, numpy, and the contract beside the model.

    policy = Policy.load("exported/cartpole")
    policy.reset()
    command = policy.act(obs)        # actuator units, one control step

`act` keeps the observation history the policy was trained with (the first observation of an
episode repeated, as in training) and executes a chunked policy's actions with a receding
horizon: it plans when the last chunk is used up and returns its actions one per call.
A policy trained with `observe_last_actions` (`robojax.core.robustness`) saw its own last
actions at the end of each observation; `act` appends them itself, so the robot passes its
observation alone (`policy.obs_size` values).

A chunk that takes longer to plan than a control period stalls the step that plans it. With
`asynchronous=True` (`Policy.load(..., asynchronous=True)`) the next chunk is planned in a
background thread while the current one executes, so no step waits:
- planning starts when `lead` actions of the current chunk are left, `lead` being the slowest
  of the recent plans in control steps, plus one (at most the chunk's length minus one);
- it plans from the observations up to that step, so its first action belongs to that step.
  When it arrives k steps later, its first k actions are already in the past: they are dropped
  and the chunk takes over from its action k (the rest of the old chunk is dropped: the new
  one saw fresher observations). This is the switching scheme of latency-aware chunk
  execution (no blending: actions of two chunks are never averaged);
- if a plan is late and the current chunk runs out, that step waits for it (counted in
  `starved`). The first chunk of an episode is planned synchronously.
A policy that executes one action per call (a Gaussian one) has nothing to overlap and always
plans synchronously.

A residual policy's export has a second model, its correction: on every step the planned
action due is corrected on that step's observation before it is commanded (after the switch
above, so a late chunk's actions are corrected on the observations they are executed at).
"""

import collections
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from robojax.deploy import contract as contract_io
from robojax.deploy.contract import ACTIONS, COMMAND, NOISE_PREFIX, OBS, PLANNED, ContractError


class Policy:
    def __init__(self, session, contract: dict, *, seed: int = 0, asynchronous: bool = False,
                 executor=None, correction=None):
        self.contract = contract
        self._session = session
        self._correction = correction
        self._rng = np.random.default_rng(seed)
        inputs = {spec["name"]: spec for spec in contract["inputs"]}
        self._noise = {name: (tuple(spec["shape"][1:]), spec["noise"])
                       for name, spec in inputs.items() if name.startswith(NOISE_PREFIX)}
        self.n_obs_steps = int(contract["observation"]["history"])
        self.action_size = int(contract["action"]["size"])
        self.last_actions = int(contract["observation"].get("last_actions", 0))
        """How many of its own last actions `act` appends to each observation."""
        self.obs_size = int(contract["observation"]["size"]) - self.last_actions * \
            self.action_size
        """What `act` takes: the robot's observation, without the appended actions."""
        self.n_action_steps = int(contract["action"]["per_call"])
        self.ctrl_low = np.asarray(contract["action"]["ctrl_low"], np.float32)
        self.ctrl_high = np.asarray(contract["action"]["ctrl_high"], np.float32)
        self.control_dt = float(contract["control_dt"])
        self.asynchronous = asynchronous and self.n_action_steps > 1
        self._executor = executor or (ThreadPoolExecutor(1, thread_name_prefix="planner")
                                      if self.asynchronous else None)
        self.plan_seconds: collections.deque = collections.deque(maxlen=20)
        """How long the recent plans took (s)."""
        self.starved = 0
        """Steps that waited for a late asynchronous plan."""
        self.reset()

    @classmethod
    def load(cls, directory: str | Path, *, seed: int = 0, env: str | None = None,
             threads: int = 1, asynchronous: bool = False) -> "Policy":
        """The ONNX policy exported to `directory`, checked against its contract (and, given
        `env`, against the task it must control). `threads`: ONNX Runtime's intra-op threads
        (1 keeps latency steady next to a control loop). `asynchronous`: plan chunks in the
        background (see the module's docstring)."""
        import onnxruntime

        contract = contract_io.read(directory)
        if env is not None and contract["env"]["name"] != env:
            raise ContractError(f"the policy in {directory} was trained on "
                                f"{contract['env']['name']!r}, not {env!r}.")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no notes on unused initializers
        session = _session(onnxruntime, options, directory, contract)
        correction = contract.get("correction")
        if correction is not None:
            correction = _session(onnxruntime, options, directory, correction)
        return cls(session, contract, seed=seed, asynchronous=asynchronous,
                   correction=correction)

    def noise(self, batch: int = 1) -> dict[str, np.ndarray]:
        """Fresh noise inputs for `batch` policy calls, drawn as the contract says."""
        return {name: _draw(self._rng, kind, (batch, *shape))
                for name, (shape, kind) in self._noise.items()}

    def plan(self, history: np.ndarray, noise: dict | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """(actions, commands), each (batch, Ta, action_size), for a batch of histories
        (batch, To, the model's observation: `obs_size` values, then the last actions where
        the contract has them); `noise` defaults to fresh draws."""
        history = np.asarray(history, np.float32)
        noise = self.noise(history.shape[0]) if noise is None else noise
        feeds = {OBS: history, **{k: np.asarray(v, np.float32) for k, v in noise.items()}}
        actions, command = self._session.run([ACTIONS, COMMAND], feeds)
        return actions, command

    def correct(self, obs: np.ndarray, planned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(actions, commands), each (batch, action_size): the correction of the planned
        actions (batch, action_size) on the model's observations (as in `plan`)."""
        feeds = {OBS: np.asarray(obs, np.float32), PLANNED: np.asarray(planned, np.float32)}
        actions, command = self._correction.run([ACTIONS, COMMAND], feeds)
        return actions, command

    def reset(self) -> None:
        """Forget the history and the chunk in progress: the next `act` starts an episode."""
        self._history: np.ndarray | None = None
        self._queue: list[tuple[np.ndarray, np.ndarray]] = []  # (action, command)
        self._pending = None  # (future of a chunk, the step it was planned at)
        self._step = 0
        self._sent = np.zeros((self.last_actions, self.action_size), np.float32)

    @property
    def lead(self) -> int:
        """Actions left in the current chunk when the next one starts planning (asynchronous
        mode): the slowest recent plan in control steps, plus one."""
        slowest = max(self.plan_seconds, default=0.0)
        return max(1, min(self.n_action_steps - 1, math.ceil(slowest / self.control_dt) + 1))

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The actuator command (action_size,) for this control step's observation. A policy
        trained with `observe_last_actions` gets its own last actions appended here, as in
        training (the actions it chose: a safe command the loop sends instead is not one)."""
        obs = check_observation(obs, self.obs_size)
        if self.last_actions:
            obs = np.concatenate([obs, self._sent.reshape(-1)])
        if self._history is None:
            self._history = np.repeat(obs[None], self.n_obs_steps, axis=0)
        else:
            self._history = np.concatenate([self._history[1:], obs[None]])
        action, command = self._next_async() if self.asynchronous else self._next()
        self._step += 1
        if self._correction is not None:
            action, command = (x[0] for x in self.correct(obs[None], action[None]))
        if self.last_actions:
            self._sent = np.concatenate([self._sent[1:], np.clip(action, -1, 1)[None]])
        return command

    def _next(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._queue:
            self._queue = self._timed_plan(self._history, self.noise(1))
        return self._queue.pop(0)

    def _next_async(self) -> tuple[np.ndarray, np.ndarray]:
        if self._pending is not None and (self._pending[0].done() or not self._queue):
            future, planned_at = self._pending
            self.starved += not future.done()
            self._pending = None
            self._queue = list(future.result()[self._step - planned_at:])
        if not self._queue:  # an episode's first chunk, or a plan too late for any action
            self._queue = self._timed_plan(self._history, self.noise(1))
        if len(self._queue) <= self.lead and self._pending is None:
            future = self._executor.submit(self._timed_plan, self._history, self.noise(1))
            self._pending = (future, self._step)
        return self._queue.pop(0)

    def _timed_plan(self, history: np.ndarray, noise: dict) -> list:
        """The (action, command) pairs of one plan from `history`, (action_size,) each, Ta of
        them; records its time."""
        start = time.perf_counter()
        actions, command = self.plan(history[None], noise)
        self.plan_seconds.append(time.perf_counter() - start)
        return list(zip(actions[0], command[0], strict=True))


def check_observation(obs, size: int) -> np.ndarray:
    """`obs` as a float32 vector of `size` finite values, else a ValueError that says why."""
    obs = np.asarray(obs, np.float32).reshape(-1)
    if obs.shape != (size,):
        raise ValueError(f"observation has {obs.size} values, the policy takes {size}.")
    if not np.all(np.isfinite(obs)):
        raise ValueError("observation contains NaN or inf.")
    return obs


def _draw(rng: np.random.Generator, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    if kind == "normal":
        return rng.standard_normal(shape, np.float32)
    if kind == "uniform":
        return rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    if kind == "gumbel":
        return rng.gumbel(size=shape).astype(np.float32)
    raise ContractError(f"unknown noise kind {kind!r} in the contract; export again.")


def _session(onnxruntime, options, directory: str | Path, part: dict):
    """An ONNX Runtime session of the model that `part` (the contract, or its "correction")
    describes, checked against it."""
    path = contract_io.model_file(directory, part["files"], "onnx")
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    _check_io(session, part, path)
    return session


def _check_io(session, part: dict, path: Path) -> None:
    """The model's input and output names and per-sample shapes must be the contract's."""
    for kind, declared, actual in (("input", part["inputs"], session.get_inputs()),
                                   ("output", part["outputs"], session.get_outputs())):
        want = {spec["name"]: list(spec["shape"][1:]) for spec in declared}
        have = {node.name: list(node.shape[1:]) for node in actual}
        if want != have:
            raise ContractError(f"{path}'s {kind}s {have} differ from the contract's {want}; "
                                "the model and contract.json come from different exports.")
