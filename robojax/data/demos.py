"""Demonstration datasets in HDF5, robomimic layout.

    data/                       attrs: env_args (JSON: env_name, env_kwargs, type), total
      demo_<i>/                 attrs: num_samples
        obs/state  (T, obs_dim) (robomimic keeps observations in a group of named arrays;
                                 a plain `obs` dataset is read as well)
        actions    (T, act_dim)
        rewards    (T,)
        dones      (T,)         the episode ended here (for any reason)
        terminals  (T,)         it ended in a terminal state, not by a time limit (optional:
                                 read as all zeros when absent)
        interventions (T,)      a person (or a simulated one) chose this action, not the
                                 policy (optional: written by `robojax teleop`)

`Demos` holds every episode concatenated in memory; `robojax.data.sampler` cuts training windows
out of it on device.
"""

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class DemoFileError(ValueError):
    """A demonstration file is missing, malformed, or does not fit the env it is used with."""


@dataclasses.dataclass(frozen=True)
class Demos:
    """Episodes concatenated along time; episode i spans `starts[i]:ends[i]`."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    terminals: np.ndarray | None = None
    """Where an episode ended in a terminal state (not a time limit); None: nowhere known."""
    env_name: str | None = None
    env_kwargs: dict = dataclasses.field(default_factory=dict)
    interventions: np.ndarray | None = None
    """Where a person chose the action instead of the policy; None: not recorded."""

    @property
    def num_episodes(self) -> int:
        return len(self.starts)

    @property
    def num_steps(self) -> int:
        return len(self.actions)

    def episode(self, i: int) -> dict[str, np.ndarray]:
        s = slice(self.starts[i], self.ends[i])
        episode = {"obs": self.obs[s], "actions": self.actions[s], "rewards": self.rewards[s],
                   "dones": self.dones[s], "terminals": self.terminal_flags()[s]}
        if self.interventions is not None:
            episode["interventions"] = self.interventions[s]
        return episode

    def terminal_flags(self) -> np.ndarray:
        return np.zeros(self.num_steps, bool) if self.terminals is None else self.terminals

    def returns(self) -> np.ndarray:
        return np.array([self.rewards[s:e].sum() for s, e in zip(self.starts, self.ends,
                                                                  strict=True)])

    def check_env(self, env_name: str, obs_size: int, action_size: int) -> None:
        """Raise DemoFileError unless these demos were recorded on `env_name` with these sizes."""
        if self.env_name is not None and self.env_name != env_name:
            raise DemoFileError(f"the demos were recorded on {self.env_name!r}, not {env_name!r};"
                                f" pass --env {self.env_name} or record demos on {env_name}.")
        if self.obs.shape[1] != obs_size or self.actions.shape[1] != action_size:
            raise DemoFileError(
                f"demo observations/actions have sizes {self.obs.shape[1]}/"
                f"{self.actions.shape[1]}, but {env_name} has {obs_size}/{action_size}; the file "
                "was recorded with another version or config of the env: train with the "
                "--env-config overrides it was collected with.")


def check_fits(demos: Demos, env) -> None:
    """Raise DemoFileError unless `demos` fit `env`: the same registered env (when it has a
    registry name) with the same sizes, else at least the same observation size."""
    name = getattr(env, "registry_name", None)
    if name is not None:
        demos.check_env(name, env.observation_spec.size, env.action_spec.size)
    elif demos.obs.shape[1] != env.observation_spec.size:
        raise DemoFileError(f"demo observations have size {demos.obs.shape[1]} but the env's "
                            f"have {env.observation_spec.size}; record the demos on this env.")


def from_episodes(episodes: list[dict[str, np.ndarray]], env_name: str | None = None,
                  env_kwargs: dict | None = None) -> Demos:
    """Build Demos from per-episode dicts of obs, actions, rewards, dones (and terminals,
    all false where an episode has none; interventions, kept when every episode has them)."""
    if not episodes:
        raise DemoFileError("no episodes to store (were all of them unsuccessful?)")
    lengths = np.array([len(ep["actions"]) for ep in episodes])
    ends = np.cumsum(lengths)
    cat = lambda k: np.concatenate([np.asarray(ep[k]) for ep in episodes]).astype(np.float32)
    return Demos(obs=cat("obs"), actions=cat("actions"), rewards=cat("rewards"),
                 dones=cat("dones").astype(bool), starts=ends - lengths, ends=ends,
                 terminals=np.concatenate([np.asarray(ep.get("terminals", np.zeros(n)), bool)
                                           for ep, n in zip(episodes, lengths, strict=True)]),
                 env_name=env_name, env_kwargs=dict(env_kwargs or {}),
                 interventions=(np.concatenate([np.asarray(ep["interventions"], bool)
                                                for ep in episodes])
                                if all("interventions" in ep for ep in episodes) else None))


def save(path: str | Path, demos: Demos) -> Path:
    """Write `demos` to an HDF5 file in the robomimic layout."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": demos.env_name, "type": "robojax",
                                             "env_kwargs": demos.env_kwargs})
        data.attrs["total"] = demos.num_steps
        for i in range(demos.num_episodes):
            ep = demos.episode(i)
            group = data.create_group(f"demo_{i}")
            group.attrs["num_samples"] = len(ep["actions"])
            group.create_dataset("obs/state", data=ep["obs"])
            for key in ("actions", "rewards", "dones", "terminals", "interventions"):
                if key in ep:
                    group.create_dataset(key, data=ep[key])
    return path


def load(path: str | Path, obs_keys: list[str] | None = None, *,
         drop_nonfinite: bool = False) -> Demos:
    """Read an HDF5 file in the robomimic layout; `obs_keys` picks (and orders) the arrays of
    an `obs` group, default all of them sorted by name. An episode holding a NaN or infinity is
    an error naming it, or with `drop_nonfinite` left out with a warning."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise DemoFileError(f"no demonstration file at {path}; record one with "
                            "`robojax collect --env NAME --episodes N --out FILE`.")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DemoFileError(f"{path} is not a readable HDF5 file ({err}).") from err
    with f:
        if "data" not in f:
            raise DemoFileError(f"{path} has no 'data' group; expected the robomimic layout "
                                "data/demo_<i>/{obs,actions,rewards,dones}.")
        data = f["data"]
        names = sorted((k for k in data if k.startswith("demo_")), key=lambda k: int(k[5:]))
        if not names:
            raise DemoFileError(f"{path} holds no episodes (no data/demo_<i> groups).")
        episodes = {name: _read_episode(path, name, data[name], obs_keys) for name in names}
        env_args = json.loads(data.attrs.get("env_args", "{}"))
    episodes = _finite_episodes(path, episodes, drop_nonfinite)
    return from_episodes(episodes, env_args.get("env_name"), env_args.get("env_kwargs"))


def _finite_episodes(path, episodes: dict[str, dict], drop: bool) -> list[dict]:
    """The episodes whose every value is finite; a non-finite one raises DemoFileError naming
    the episode, the key and the first step, or is dropped with a warning when `drop`."""
    kept = []
    for name, episode in episodes.items():
        bad = [(key, int(np.argwhere(~np.isfinite(np.asarray(value, float)))[0][0]))
               for key, value in episode.items()
               if not np.all(np.isfinite(np.asarray(value, float)))]
        if not bad:
            kept.append(episode)
            continue
        key, step = bad[0]
        where = f"{path}: data/{name}/{key} is not finite at step {step}"
        if not drop:
            raise DemoFileError(f"{where}; repair the file, or load it with drop_nonfinite=True "
                                "to leave such episodes out.")
        log.warning("%s: episode left out.", where)
    if not kept:
        raise DemoFileError(f"{path}: every episode holds non-finite values.")
    return kept


def _read_episode(path, name, group, obs_keys) -> dict[str, np.ndarray]:
    for key in ("obs", "actions"):
        if key not in group:
            raise DemoFileError(f"{path}: data/{name} has no '{key}'; each episode needs obs "
                                "and actions (rewards and dones are optional).")
    obs_node = group["obs"]
    if hasattr(obs_node, "keys"):  # an obs group of named arrays
        keys = obs_keys or sorted(obs_node.keys())
        missing = [k for k in keys if k not in obs_node]
        if missing:
            raise DemoFileError(f"{path}: data/{name}/obs has no {missing}; it has "
                                f"{sorted(obs_node.keys())}.")
        arrays = [np.asarray(obs_node[k]) for k in keys]
        obs = np.concatenate([a.reshape(len(a), int(np.prod(a.shape[1:]))) for a in arrays],
                             axis=-1)
    else:
        obs = np.asarray(obs_node)
    actions = np.asarray(group["actions"])
    if obs.ndim != 2 or actions.ndim != 2:
        raise DemoFileError(f"{path}: data/{name} obs and actions must be 2-D (time, size), got "
                            f"shapes {obs.shape} and {actions.shape}.")
    length = len(actions)
    if length == 0:
        raise DemoFileError(f"{path}: data/{name} is empty (0 steps).")
    rewards = np.asarray(group["rewards"]) if "rewards" in group else np.zeros(length)
    dones = np.asarray(group["dones"]) if "dones" in group else np.eye(length)[-1]
    terminals = np.asarray(group["terminals"]) if "terminals" in group else dones
    for key, value in (("obs", obs), ("rewards", rewards), ("dones", dones),
                       ("terminals", terminals)):
        if len(value) != length:
            raise DemoFileError(f"{path}: data/{name} has {length} actions but {len(value)} "
                                f"{key}; every array must have one row per step.")
    episode = {"obs": obs, "actions": actions, "rewards": rewards, "dones": dones}
    for key in ("terminals", "interventions"):
        if key in group:
            episode[key] = np.asarray(group[key])
    if len(episode.get("interventions", obs)) != length:
        raise DemoFileError(f"{path}: data/{name} has {length} actions but "
                            f"{len(episode['interventions'])} interventions.")
    return episode
