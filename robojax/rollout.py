"""Roll a policy out in one env (compiled) and render it to a video."""

from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from robojax.core.env import Env
from robojax.core.wrappers import EpisodeWrapper, VmapWrapper
from robojax.io.progress import console
from robojax.io.video import RenderUnavailable, write_video


def rollout_states(env: Env, act: Callable, key: jax.Array, num_steps: int, num_envs: int = 1):
    """Run `act(obs) -> action` for `num_steps` in `num_envs` envs; returns the stacked states
    (time first) and the step at which env 0's episode ended (or num_steps)."""
    batched = VmapWrapper(EpisodeWrapper(env, num_steps), num_envs)

    @jax.jit
    def run(key):
        def one_step(state, _):
            state = batched.step(state, act(state.obs))
            return state, state
        first = batched.reset(key)
        _, states = jax.lax.scan(one_step, first, None, num_steps)
        return states

    states = run(key)
    done = np.asarray(states.done[:, 0])
    end = int(np.argmax(done)) + 1 if done.any() else num_steps
    return states, end


def save_video(env: Env, act: Callable, path: str | Path, *, key: jax.Array,
               seconds: float = 10.0, fps: float = 30.0, width: int = 320,
               height: int = 240) -> Path | None:
    """Render up to `seconds` of env 0 acting with `act` to `path`; None if rendering is off."""
    dt = getattr(env, "dt", None) or float(env.mj_model.opt.timestep) * env.n_substeps
    num_steps = max(1, int(round(seconds / dt)))
    every = max(1, int(round(1.0 / (fps * dt))))
    states, end = rollout_states(env, act, key, num_steps)
    states = jax.tree.map(lambda x: x[:end:every], states)
    try:
        frames = env.render(states, index=0, width=width, height=height)
    except RenderUnavailable as err:
        console.print(f"[yellow]video skipped:[/] {err}")
        return None
    out = write_video(path, frames, fps=1.0 / (dt * every))
    console.print(f"video → {out}")
    return out
