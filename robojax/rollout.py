"""Roll a controller (`robojax.core.controller`) out in a batch of envs, compiled, and render
it to a video."""

from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from robojax.core.controller import Controller, as_controller
from robojax.core.env import Env
from robojax.core.wrappers import EpisodeWrapper, VmapWrapper
from robojax.io.progress import console
from robojax.io.video import RenderUnavailable, write_video


def run_controller(batched: Env, policy: Controller | Callable, first, key: jax.Array,
                   num_steps: int, record: Callable):
    """Scan `policy` over `num_steps` steps of the batched env from state `first`;
    `record(state, action, next_state)` says what each step keeps (stacked, time first)."""
    controller = as_controller(policy)

    def one_step(carry, step_key):
        state, memory = carry
        action, memory = controller.step(memory, state, step_key)
        next_state = batched.step(state, action)
        return (next_state, memory), record(state, action, next_state)

    _, out = jax.lax.scan(one_step, (first, controller.init(first)),
                          jax.random.split(key, num_steps))
    return out


def rollout_states(env: Env, policy: Controller | Callable, key: jax.Array, num_steps: int,
                   num_envs: int = 1):
    """Run `policy` for `num_steps` in `num_envs` envs; returns the stacked states (time first)
    and the step at which env 0's episode ended (or num_steps)."""
    batched = VmapWrapper(EpisodeWrapper(env, num_steps), num_envs)

    @jax.jit
    def run(key):
        key_reset, key_act = jax.random.split(key)
        return run_controller(batched, policy, batched.reset(key_reset), key_act, num_steps,
                              lambda state, action, next_state: next_state)

    states = run(key)
    done = np.asarray(states.done[:, 0])
    end = int(np.argmax(done)) + 1 if done.any() else num_steps
    return states, end


def reports_success(env: Env) -> bool:
    """Whether `env` reports a `reward/success` metric (detour, pusher and push-t do; hopper,
    reacher and the others do not): only then is there a success rate to evaluate or plot."""
    return "reward/success" in jax.eval_shape(env.reset, jax.random.PRNGKey(0)).metrics


def evaluate_episodes(eval_env: Env, policy: Controller | Callable, reset_key: jax.Array,
                      act_key: jax.Array, *, track_success: bool | None = False) -> dict:
    """Mean return and reward terms (and their std) over one full episode in each env of the
    batched, time-limited `eval_env`. With `track_success`, also the share of episodes whose
    `reward/success` metric was positive at some step (`eval/success_rate`) and the mean over
    episodes of each term's peak value (`eval/peak/<term>`, e.g. Push-T's max overlap);
    `track_success=None` tracks them where the env reports `reward/success`. An env that
    reports no success gets no success rate (rather than a rate of 0), only the peaks."""
    controller = as_controller(policy)

    def one_step(carry, step_key):
        env_state, memory, alive, totals, peaks = carry
        action, memory = controller.step(memory, env_state, step_key)
        env_state = eval_env.step(env_state, action)
        values = {"eval/episode_reward": env_state.reward,
                  **{f"eval/{k}": v for k, v in env_state.metrics.items()}}
        totals = jax.tree.map(lambda t, v: t + alive * v, totals, values)
        peaks = {k: jnp.where(alive > 0, jnp.maximum(p, env_state.metrics[k]), p)
                 for k, p in peaks.items()}
        alive = alive * (1.0 - env_state.done.astype(jnp.float32))
        return (env_state, memory, alive, totals, peaks), None

    first = eval_env.reset(reset_key)
    if track_success is None:
        track_success = "reward/success" in first.metrics
    zeros = jnp.zeros_like(first.reward)
    totals = {"eval/episode_reward": zeros, **{f"eval/{k}": zeros for k in first.metrics}}
    peaks = {k: jnp.full_like(zeros, -jnp.inf) for k in first.metrics} if track_success else {}
    carry = (first, controller.init(first), jnp.ones_like(zeros), totals, peaks)
    length = eval_env.env.episode_length
    (_, _, _, totals, peaks), _ = jax.lax.scan(one_step, carry,
                                               jax.random.split(act_key, length))
    metrics = {k: jnp.mean(v) for k, v in totals.items()}
    metrics["eval/episode_reward_std"] = jnp.std(totals["eval/episode_reward"])
    if track_success:
        metrics |= {f"eval/peak/{k}": jnp.mean(v) for k, v in peaks.items()}
    if track_success and "reward/success" in peaks:
        metrics["eval/success_rate"] = jnp.mean(peaks["reward/success"] > 0)
    return metrics


def nonfinite_action_warning(metrics: dict) -> str | None:
    """A warning when the evaluated policy produced NaN or infinite actions (the env replaced
    them by 0 and counted them in `nonfinite_action`), else None."""
    count = float(metrics.get("eval/nonfinite_action", 0.0))
    if count == 0:
        return None
    return (f"the policy produced {count:.3g} NaN or infinite action value(s) per episode; the "
            "env replaced them by 0 (the middle of each actuator's range), so this score is not "
            "the policy's own. Check the policy (its inputs, normalizer and parameters).")


def save_video(env: Env, policy: Controller | Callable, path: str | Path, *, key: jax.Array,
               seconds: float = 10.0, fps: float = 30.0, width: int = 320,
               height: int = 240) -> Path | None:
    """Render up to `seconds` of env 0 acting with `policy` to `path`; None if rendering is
    off."""
    dt = getattr(env, "dt", None) or float(env.mj_model.opt.timestep) * env.n_substeps
    num_steps = max(1, int(round(seconds / dt)))
    every = max(1, int(round(1.0 / (fps * dt))))
    states, end = rollout_states(env, policy, key, num_steps)
    states = jax.tree.map(lambda x: x[:end:every], states)
    try:
        frames = env.render(states, index=0, width=width, height=height)
    except RenderUnavailable as err:
        console.print(f"[yellow]video skipped:[/] {err}")
        return None
    out = write_video(path, frames, fps=1.0 / (dt * every))
    console.print(f"video → {out}")
    return out
