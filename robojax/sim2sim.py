"""`robojax sim2sim EXPORT_DIR`: does the deployed program do what the trained one did?

The exported policy, loaded by the deploy runtime (`robojax.deploy.Policy`, ONNX Runtime) and
driven by its fixed-rate loop (`robojax.deploy.run`, on a simulated clock), controls its task
simulated by MuJoCo C (the `mujoco` package, not MJX), optionally with observation noise and
action latency. Beside it: the MJX evaluation of the same checkpoint under the same noise and
latency. A gap between the two is a gap between deploy and play.

What comes from where: the physics steps are `mujoco.mj_step` on the task's compiled model.
The observation, reward, termination and success are the task's own definitions (`observe`,
`reward_terms`, `terminated`), evaluated on the MuJoCo C state (positions, velocities,
actuator, control and mocap state copied into MJX data and passed through `mjx.forward`), so the
two sides differ in the simulator and the policy's runtime only.
"""

import collections
import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

from robojax import envs
from robojax.core.mjx_env import MjxEnv, require_command_actions
from robojax.deploy import Policy, SimulatedClock, run
from robojax.deploy import contract as contract_io
from robojax.deploy.contract import ContractError
from robojax.stats import bootstrap_mean, wilson

STATE_FIELDS = ("qpos", "qvel", "act", "ctrl", "mocap_pos", "mocap_quat", "time")
"""What of MuJoCo C's state the task's definitions see (the rest `mjx.forward` derives)."""
RESULT = "sim2sim.json"


class MujocoTask:
    """One episode at a time of `env`'s task, stepped by MuJoCo C and observed, rewarded and
    ended by the task's own definitions."""

    def __init__(self, env: MjxEnv):
        require_command_actions(env, "a MuJoCo C replay (sim2sim)")
        self.env = env
        self.model = env.mj_model
        self.data = mujoco.MjData(self.model)
        self._reset = jax.jit(env.reset)
        template = mjx.make_data(env.mjx_model)
        low, high = env.ctrl_range
        self.rest_command = ((low + high) / 2).astype(np.float32)
        """The command of action 0, the middle of each actuator's range."""
        self._half = np.maximum((high - low) / 2, 1e-12)

        def sense(prev, state, action, key):
            data = mjx.forward(env.mjx_model, template.replace(**state))
            terms = env.reward_terms(prev, data, action)
            return (data, env.observe(data, key), env.combine_reward(terms),
                    env.terminated(data), terms.get("success", jnp.zeros(())))

        self._sense = jax.jit(sense)
        data = jax.eval_shape(lambda: template)
        action = jax.ShapeDtypeStruct(env.action_spec.shape, np.float32)
        self.reports_success = "success" in jax.eval_shape(env.reward_terms, data, data, action)

    def reset(self, key: jax.Array) -> None:
        """Start an episode from the task's initial-state distribution (drawn by `key`)."""
        state = self._reset(key)
        mujoco.mj_resetData(self.model, self.data)
        for name in STATE_FIELDS:
            value = np.asarray(getattr(state.data, name))
            if name == "time":
                self.data.time = float(value)
            else:
                getattr(self.data, name)[...] = value
        mujoco.mj_forward(self.model, self.data)
        self._key, self._mjx_data = state.key, state.data
        # The runtime appends the last actions (`observe_last_actions`) to what it reads.
        self.obs, self.steps = np.asarray(state.obs)[:self.env.task_obs_size], 0
        self.done, self.reward_sum, self.success = False, 0.0, False

    def step(self, command: np.ndarray) -> None:
        """Hold `command` (actuator units) for one control step of physics."""
        self.data.ctrl[:] = command
        for _ in range(self.env.config.n_substeps):
            mujoco.mj_step(self.model, self.data)
        action = np.clip((command - self.rest_command) / self._half, -1, 1).astype(np.float32)
        state = {name: np.asarray(getattr(self.data, name), np.float32) for name in STATE_FIELDS}
        key = jax.random.fold_in(self._key, self.steps)
        self._mjx_data, obs, reward, done, success = self._sense(self._mjx_data, state, action,
                                                                 key)
        self.obs, self.steps = np.asarray(obs), self.steps + 1
        self.reward_sum += float(reward)
        self.done = bool(done)
        self.success |= bool(success > 0)


@dataclasses.dataclass(frozen=True)
class Sim2SimResult:
    env: str
    obs_noise: float
    action_delay: int
    returns: list
    """Each MuJoCo C episode's return."""
    successes: list | None
    """Whether each episode succeeded, for tasks that report success."""
    loop: dict
    """The runtime loop's counts over all episodes: steps, faults, stale observations."""
    mjx: dict | None
    """The MJX evaluation of the same checkpoint (`robojax eval`'s metrics), if run."""

    def summary(self) -> dict:
        low, high = bootstrap_mean(self.returns)
        out = {"mujoco_return": float(np.mean(self.returns)), "mujoco_return_ci95": [low, high]}
        if self.successes is not None:
            out["mujoco_success"] = float(np.mean(self.successes))
            out["mujoco_success_ci95"] = list(wilson(sum(self.successes), len(self.successes)))
        if self.mjx is not None:
            mean, std = self.mjx["eval/episode_reward"], self.mjx["eval/episode_reward_std"]
            half = 1.96 * std / np.sqrt(self.mjx["episodes"])
            out |= {"mjx_return": mean, "mjx_return_ci95": [mean - half, mean + half],
                    "return_ratio": out["mujoco_return"] / mean if mean else float("nan")}
            if "eval/success_rate" in self.mjx:
                out["mjx_success"] = self.mjx["eval/success_rate"]
        return out


def sim2sim(export_dir: str | Path, *, env: str | None = None, episodes: int = 20,
            seed: int = 0, obs_noise: float = 0.0, action_delay: int = 0,
            episode_length: int | None = None, run_dir: str | Path | None = None,
            compare: bool = True, progress: bool = False) -> Sim2SimResult:
    """Run the policy exported to `export_dir` for `episodes` MuJoCo C episodes (and, with
    `compare`, the MJX evaluation of its run's checkpoint beside it); writes sim2sim.json."""
    if obs_noise < 0 or action_delay < 0:
        raise ValueError(f"obs_noise and action_delay must be >= 0, got {obs_noise} and "
                         f"{action_delay}.")
    contract = contract_io.read(export_dir)
    name = env or contract["env"]["name"]
    policy = Policy.load(export_dir, env=name, seed=seed)
    task = MujocoTask(_task_env(contract, name))
    length = episode_length or contract["env"].get("episode_length") or \
        task.env.config.episode_length
    returns, successes, loop = _episodes(policy, task, episodes, seed, obs_noise, action_delay,
                                         length, progress)
    mjx_metrics = None
    if compare:
        mjx_metrics = _mjx_evaluation(contract, run_dir, export_dir, episodes, seed, obs_noise,
                                      action_delay, length)
    result = Sim2SimResult(name, obs_noise, action_delay, returns,
                           successes if task.reports_success else None, loop, mjx_metrics)
    path = Path(export_dir) / RESULT
    path.write_text(json.dumps({**dataclasses.asdict(result), **result.summary()}, indent=2))
    return result


def _task_env(contract: dict, name: str) -> MjxEnv:
    """The task with the config the policy was trained on (less the training's noise and
    latency: this side adds its own), checked against the contract's model hash."""
    from robojax.export import model_sha256

    config = {k: v for k, v in contract["env"].get("config", {}).items()
              if k not in ("obs_noise", "action_delay")}
    defaults = json.loads(json.dumps(dataclasses.asdict(envs.get_config(name)), default=str))
    env = envs.make(name, **{k: v for k, v in config.items() if defaults.get(k) != v})
    if not isinstance(env, MjxEnv):
        raise ValueError(f"sim2sim runs registered MJX tasks in MuJoCo C; {name!r} is not one.")
    expected = contract["env"].get("mjcf_sha256")
    if expected and model_sha256(env.mj_model) != expected:
        raise ContractError(f"{name}'s MuJoCo model differs from the one the policy was "
                            "exported with (its MJCF or timestep changed since); export the "
                            "policy again, or check out the version it was trained with.")
    return env


def _episodes(policy: Policy, task: MujocoTask, episodes: int, seed: int, obs_noise: float,
              action_delay: int, length: int, progress: bool):
    rng = np.random.default_rng(seed)
    returns, successes, totals = [], [], collections.Counter()
    for i, key in enumerate(jax.random.split(jax.random.PRNGKey(seed), episodes)):
        stats = _episode(policy, task, key, rng, obs_noise, action_delay, length)
        totals.update({"steps": stats.steps, "faults": stats.faults, "stale": stats.stale})
        returns.append(task.reward_sum)
        successes.append(task.success)
        if progress:
            print(f"episode {i + 1}/{episodes}: return {task.reward_sum:.1f}", flush=True)
    return returns, successes, dict(totals)


def _episode(policy: Policy, task: MujocoTask, key: jax.Array, rng: np.random.Generator,
             obs_noise: float, action_delay: int, length: int):
    """One episode through the runtime's loop: the policy reads noisy observations and its
    commands reach the actuators `action_delay` steps late (the rest command before then)."""
    task.reset(key)
    policy.reset()
    pending = collections.deque([task.rest_command] * action_delay)

    def read_obs():
        return task.obs + obs_noise * rng.standard_normal(task.obs.shape, np.float32)

    def write_command(command):
        pending.append(np.asarray(command, np.float32))
        task.step(pending.popleft())

    clock = SimulatedClock()
    return run(policy, read_obs, write_command, rate_hz=1 / policy.control_dt, steps=length,
               until=lambda: task.done, clock=clock, sleep=clock.sleep)


def _mjx_evaluation(contract: dict, run_dir, export_dir, episodes: int, seed: int,
                    obs_noise: float, action_delay: int, length: int) -> dict:
    from robojax.evaluate import evaluate_checkpoint

    run_dir = Path(run_dir or contract["run"].get("dir") or Path(export_dir).parent)
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(f"no run at {run_dir} to evaluate in MJX beside MuJoCo C; pass "
                                "--run-dir RUN_DIR, or --no-compare for MuJoCo C alone.")
    config = {"obs_noise": obs_noise, "action_delay": (action_delay, action_delay)}
    metrics = evaluate_checkpoint(run_dir, num_episodes=episodes, seed=seed,
                                  seed_index=contract["run"].get("seed_index", 0),
                                  env_config=config, episode_length=length)
    return {**metrics, "episodes": episodes, "run_dir": str(run_dir)}
