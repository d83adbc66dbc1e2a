"""Demonstrations from a person at the teleop page: `robojax teleop ENV --out demos.hdf5` (or
`robojax collect --source human`).

One env steps in real time. The person watches it on the page and drives it with the task's
teleop map (`MjxEnv.teleop_map`); with `policy` (a trained run) the policy acts until they take
over, and they hand back when it should go on. Each step stores the executed action and an
intervention flag; the file is rewritten after every episode, so stopping loses at most the one
under way. An episode ends with the env (success or the time limit) or when the person presses
success or failure; declared failures are left out unless `keep_failures`.
"""

import dataclasses
import threading
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from robojax import envs
from robojax.core.controller import Controller
from robojax.core.env import Env
from robojax.core.wrappers import EpisodeWrapper, VmapWrapper
from robojax.data.demos import from_episodes, save
from robojax.hil.operator import Operator
from robojax.hil.server import TeleopServer
from robojax.hil.viewer import Viewer


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    allow_remote: bool = False
    token: str | None = None
    fps: float = 20.0
    max_age: float = 0.5


@dataclasses.dataclass
class Episode:
    """One episode's rows, appended step by step."""

    rows: dict = dataclasses.field(default_factory=lambda: {k: [] for k in (
        "obs", "actions", "rewards", "dones", "terminals", "interventions")})
    succeeded: bool = False
    declared: str | None = None
    total_reward: float = 0.0
    held_steps: int = 0

    def add(self, **row) -> None:
        for key, value in row.items():
            self.rows[key].append(np.asarray(value))
        self.total_reward += float(row["rewards"])
        self.held_steps += int(row["interventions"])

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.stack(v) for k, v in self.rows.items()}


class Recorder:
    """One registered `env` (built with `env_config`) paced at `speed` x real time, driven by
    `operator` (and `policy` where the person does not hold it)."""

    def __init__(self, env: Env, operator: Operator, *, env_config: dict | None = None,
                 policy: Controller | None = None, speed: float = 1.0, seed: int = 0):
        if speed <= 0:
            raise ValueError(f"speed must be > 0 (1: real time), got {speed}.")
        self.env_name, self.env_config = env.registry_name, dict(env_config or {})
        self.env = env
        self.operator, self.policy, self.speed = operator, policy, speed
        batched = VmapWrapper(EpisodeWrapper(self.env, self.env.config.episode_length), 1)
        self._reset, self._step = jax.jit(batched.reset), jax.jit(batched.step)
        self._act = jax.jit(policy.step) if policy is not None else None
        low, high = (jnp.asarray(b) for b in self.env.ctrl_range)
        self._normalize = jax.jit(lambda ctrl: (ctrl - (high + low) / 2) / ((high - low) / 2))
        self.key = jax.random.PRNGKey(seed)
        self.steps = 0

    def episode(self, show, publish, stop: threading.Event) -> Episode:
        """Run one episode until it ends (or `stop` is set); `show(qpos, mocap_pos)` gets every
        state, `publish(status=...)` the running stats."""
        self.key, key_reset, key_policy = jax.random.split(self.key, 3)
        state = self._reset(key_reset)
        carry = self.policy.init(state) if self.policy is not None else None
        previous = np.asarray(self._normalize(state.data.ctrl))[0]
        episode, period, tick = Episode(), self.env.dt / self.speed, time.monotonic()
        self.operator.events()  # outcomes pressed between episodes do not end this one
        while not stop.is_set():
            command = self.operator.command(previous)
            if self._act is None:  # nobody else acts: hold the target (or push nothing)
                own = previous if self.operator.keymap.integrate else np.zeros_like(previous)
            else:
                own, carry = self._act(carry, state, jax.random.fold_in(key_policy, self.steps))
                own = np.asarray(own[0])
            action = command.action if command.takeover else own
            next_state = self._step(state, jnp.asarray(action, jnp.float32)[None])
            episode.add(obs=state.obs[0], actions=action, rewards=next_state.reward[0],
                        dones=next_state.done[0], terminals=next_state.terminated[0],
                        interventions=command.takeover)
            success = next_state.metrics.get("reward/success")
            episode.succeeded |= bool(success is not None and success[0] > 0)
            state, previous, self.steps = next_state, np.asarray(action), self.steps + 1
            show(np.asarray(state.data.qpos[0]), np.asarray(state.data.mocap_pos[0]))
            publish(status=self._status(episode, command))
            outcomes = self.operator.events()
            if outcomes:
                episode.declared = outcomes[-1]
                break
            if bool(state.done[0]):
                break
            tick += period
            time.sleep(max(0.0, tick - time.monotonic()))
        return episode

    def _status(self, episode: Episode, command) -> dict:
        return {"mode": "collect", "env_name": self.env_name,
                "step": len(episode.rows["actions"]), "return": episode.total_reward,
                "takeover": command.takeover, "intervention_steps": episode.held_steps,
                "succeeded": episode.succeeded, "applied_seq": command.seq,
                "last_action": [round(float(a), 3) for a in episode.rows["actions"][-1]]}


def record(env_name: str, out: str | Path, episodes: int, *, env_config: dict | None = None,
           policy: Controller | None = None, speed: float = 1.0, seed: int = 0,
           keep_failures: bool = False, serve: ServeConfig = ServeConfig(),
           on_ready=None, stop: threading.Event | None = None) -> dict:
    """Serve the teleop page and record `episodes` episodes to `out`; returns the stats.
    `on_ready(url)` is called once the page is up (default: print it)."""
    from robojax.io.progress import console

    stop = stop or threading.Event()
    env = envs.make(env_name, **(env_config or {}))
    operator = Operator(env.teleop_map(), num_envs=1, max_age=serve.max_age)
    server = TeleopServer(operator, host=serve.host, port=serve.port, token=serve.token,
                          allow_remote=serve.allow_remote)
    recorder = Recorder(env, operator, env_config=env_config, policy=policy, speed=speed,
                        seed=seed)
    url = server.start()
    viewer = Viewer(recorder.env.mj_model, server.publish, fps=serve.fps).start()
    if server.allow_remote:
        console.print(f"[yellow]warning:[/] the teleop page listens on {serve.host}: anyone "
                      "who can reach it with the URL drives the env.")
    (on_ready or (lambda u: console.print(f"teleop page: {u}")))(url)
    kept, declared = [], []
    try:
        while len(kept) < episodes and not stop.is_set():
            episode = recorder.episode(viewer.show, server.publish, stop)
            if not episode.rows["actions"]:
                break
            declared.append(episode.declared or ("success" if episode.succeeded else "timeout"))
            if episode.declared != "failure" or keep_failures:
                kept.append(episode.arrays())
                save(out, from_episodes(kept, env_name, recorder.env_config))
            server.publish(status={"episodes_saved": len(kept), "episodes_target": episodes})
    finally:
        viewer.stop()
        server.stop()
    stats = {"episodes": len(kept), "outcomes": declared, "steps": recorder.steps,
             "frames_per_second": viewer.rate(), "counts": dict(operator.counts),
             "refused_requests": server.refused, **operator.latency_ms()}
    if kept:
        console.print(f"{len(kept)} episode(s) from the teleop page on {env_name} → {out}")
    return stats

