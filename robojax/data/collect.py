"""Record demonstrations from any controller in parallel envs: `robojax collect`."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from robojax import envs
from robojax.core.controller import Controller
from robojax.core.env import Env, Wrapper
from robojax.core.types import State
from robojax.core.wrappers import EpisodeWrapper, VmapWrapper
from robojax.data.demos import DemoFileError, Demos, from_episodes
from robojax.rollout import reports_success, run_controller


def solver_controller(env: Env, name: str) -> Controller:
    """The registered scripted expert of env `name`, acting in a batch of envs."""
    solve = envs.solver(name)
    return Controller(init=lambda state: (),
                      step=lambda carry, state, key: (jax.vmap(lambda s: solve(env, s))(state),
                                                      carry))


class ActionNoiseWrapper(Wrapper):
    """Steps a single env with Gaussian noise of std `scale` added to each action (normalized
    units, clipped to [-1, 1]); whoever calls `step` still holds the action it chose. The noise
    folds the step count into the episode key, as the envs' own per-step randomness does."""

    def __init__(self, env: Env, scale: float):
        super().__init__(env)
        self.scale = scale

    def step(self, state: State, action: jax.Array) -> State:
        key = jax.random.fold_in(jax.random.fold_in(state.key, 0xD1A7), state.step)
        noise = jax.random.normal(key, action.shape, action.dtype)
        return self.env.step(state, jnp.clip(action + self.scale * noise, -1.0, 1.0))


def record(env: Env, policy: Controller, key: jax.Array, num_episodes: int,
           episode_length: int, action_noise: float = 0.0) -> dict[str, np.ndarray]:
    """One episode in each of `num_episodes` envs, time-major arrays: obs seen before each
    action, the action, reward, done, terminal, and the success metric (zeros when the env
    has none).

    With `action_noise` > 0 the env steps with the source's action plus Gaussian noise of that
    std (`ActionNoiseWrapper`) while the clean action is recorded: the demonstrations then show
    how the source recovers from states off its own path (DART)."""
    single = EpisodeWrapper(env, episode_length)
    if action_noise > 0:
        single = ActionNoiseWrapper(single, action_noise)
    batched = VmapWrapper(single, num_episodes)

    def keep(state, action, next_state):
        success = next_state.metrics.get("reward/success", jnp.zeros_like(next_state.reward))
        return {"obs": state.obs, "actions": action, "rewards": next_state.reward,
                "dones": next_state.done, "terminals": next_state.terminated,
                "success": success}

    @jax.jit
    def run(key):
        key_reset, key_act = jax.random.split(key)
        return run_controller(batched, policy, batched.reset(key_reset), key_act,
                              episode_length, keep)

    return jax.tree.map(np.asarray, run(key))


def split_episodes(steps: dict[str, np.ndarray], only_success: bool
                   ) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    """Per-env episodes cut at their first done; and whether each succeeded (any step)."""
    episodes, successes = [], []
    for i in range(steps["dones"].shape[1]):
        done = steps["dones"][:, i]
        length = int(np.argmax(done)) + 1 if done.any() else len(done)
        success = bool(steps["success"][:length, i].max() > 0)
        successes.append(success)
        if success or not only_success:
            episodes.append({k: steps[k][:length, i] for k in ("obs", "actions", "rewards",
                                                              "dones", "terminals")})
    return episodes, np.array(successes)


def collect(env_name: str, source: str | Controller, num_episodes: int, *, seed: int = 0,
            only_success: bool = False, action_noise: float = 0.0, batch_size: int = 1024,
            env_config: dict | None = None) -> tuple[Demos, dict]:
    """`num_episodes` episodes of `source` ("solver", the env's scripted expert, or any
    controller, e.g. a trained run's: `robojax.runs.run_controller`) on `env_name` (its config
    with `env_config` overrides), executed with `action_noise` (see `record`); and their
    stats, with `success_rate` None where the env reports no success metric."""
    env = envs.make(env_name, **(env_config or {}))
    policy = solver_controller(env, env_name) if source == "solver" else source
    if not isinstance(policy, Controller):
        raise TypeError(f"source must be 'solver' or a Controller, got {source!r}; load a run's "
                        "policy with robojax.runs.run_controller(RUN_DIR, ENV).")
    if action_noise < 0:
        raise ValueError(f"action_noise must be >= 0 (a std in normalized action units), got "
                         f"{action_noise}.")
    has_success = reports_success(env)
    if only_success and not has_success:
        raise ValueError(f"{env_name} reports no success metric (reward/success), so "
                         "--only-success cannot tell good episodes; drop the flag.")
    length = env.config.episode_length
    batch_size = min(batch_size, num_episodes)
    episodes, successes, key = [], [], jax.random.PRNGKey(seed)
    while len(episodes) < num_episodes:
        key, key_batch = jax.random.split(key)
        steps = record(env, policy, key_batch, batch_size, length, action_noise)
        kept, ok = split_episodes(steps, only_success)
        episodes += kept
        successes.append(ok)
        if only_success and len(successes) * batch_size >= 20 * num_episodes and not episodes:
            raise DemoFileError(f"the source succeeded in none of {len(successes) * batch_size} "
                                f"episodes on {env_name}; nothing to keep.")
    rate = float(np.concatenate(successes).mean()) if has_success else None
    config = getattr(env, "config", None)
    kwargs = json.loads(json.dumps(config.__dict__, default=str)) if config is not None else {}
    demos = from_episodes(episodes[:num_episodes], env_name, kwargs)
    return demos, {"success_rate": rate, "episodes": demos.num_episodes,
                   "steps": demos.num_steps, "mean_return": float(demos.returns().mean())}


def collect_to_file(env_name: str, source: str | Controller, num_episodes: int, out: str | Path,
                    *, source_name: str | None = None, **kwargs) -> dict:
    """`collect` and save the demos to `out` (HDF5); `source_name` names the source in the
    summary line."""
    from robojax.data.demos import save
    from robojax.io.progress import console

    demos, stats = collect(env_name, source, num_episodes, **kwargs)
    save(out, demos)
    rate = stats["success_rate"]
    name = source_name or (source if isinstance(source, str) else "the policy")
    console.print(f"{stats['episodes']} episodes ({stats['steps']:,} steps, mean return "
                  f"{stats['mean_return']:.1f}) from {name} on {env_name} → {out}"
                  + (f"; source success rate {rate:.3f}" if rate is not None else ""))
    return stats
