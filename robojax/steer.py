"""Steering cloned generative policies at test time, without retraining: `robojax compose
RUN_A RUN_B` mixes two behaviour-cloned policies of one family at every sampling step
(`robojax.policies.compose`) and picks the weight by a short evaluation search.
"""

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp

from robojax.algos import acting
from robojax.core.controller import Controller
from robojax.io.progress import console
from robojax.policies.chunking import chunk_controller
from robojax.policies.compose import compose
from robojax.rollout import evaluate_episodes
from robojax.runs import Run, load_run, read_args
from robojax.stats import wilson


def _cloned(run_dir: Path) -> Run:
    args = read_args(run_dir)
    policy = args.algo_config().policy if args.algo == "bc" else None
    if policy not in ("diffusion", "flow"):
        family = f" --policy {policy}" if policy else ""
        raise ValueError(f"{run_dir} is a `--algo {args.algo}{family}` run; composition "
                         "mixes behaviour-cloned diffusion or flow policies (`robojax train "
                         "--algo bc --policy diffusion|flow`).")
    return load_run(run_dir)


def composed_controller(first: Run, second: Run, weight: float,
                        steps: int | None = None) -> Controller:
    """`weight` * first + (1 - weight) * second at every sampling step, acting with the first
    run's chunking; each network sees the history normalized its own way."""
    if first.args.env != second.args.env:
        raise ValueError(f"the runs were trained on {first.args.env!r} and "
                         f"{second.args.env!r}; compose runs of one env.")
    if first.cfg.chunks != second.cfg.chunks:
        raise ValueError(f"the runs chunk differently ({first.cfg.chunks} and "
                         f"{second.cfg.chunks}); compose runs trained with the same chunks.")
    a, b = first.state, second.state
    policy, params = compose(first.cfg.make_policy(), a.ema_params, second.cfg.make_policy(),
                             b.ema_params, weight, a.obs_mean.size * first.cfg.chunks.n_obs_steps)
    steps = steps or first.cfg.inference_steps

    def encode(state, history):
        normed = (history - state.obs_mean) / state.obs_std
        return normed.reshape(*normed.shape[:-2], -1)

    def plan(history, key):
        cond = jnp.concatenate([encode(a, history), encode(b, history)], axis=-1)
        return policy.sample(params, cond, key, steps=steps)

    return chunk_controller(first.cfg.chunks, a.action_size, plan)


def search(first_dir: Path, second_dir: Path, weights: Sequence[float], *,
           num_episodes: int = 256, seed: int = 1, steps: int | None = None) -> dict:
    """Success (with its Wilson interval) and return of the composition at each weight, on the
    same episodes; writes compose.json beside the first run and names the best weight."""
    first, second = _cloned(first_dir), _cloned(second_dir)
    eval_env = acting.make_eval_env(dataclasses.replace(first.cfg, num_eval_envs=num_episodes),
                                    first.env)
    key_reset, key_act = jax.random.split(jax.random.PRNGKey(seed))
    rows = []
    for weight in weights:
        controller = composed_controller(first, second, weight, steps)
        metrics = jax.jit(lambda c=controller: evaluate_episodes(
            eval_env, c, key_reset, key_act, track_success=True))()
        success = float(metrics["eval/success_rate"])
        low, high = wilson(round(success * num_episodes), num_episodes)
        rows.append({"weight": float(weight), "success_rate": success, "success_ci": [low, high],
                     "episode_reward": float(metrics["eval/episode_reward"])})
        console.print(f"weight {weight:.2f}: success {success:.3f} [{low:.3f}, {high:.3f}], "
                      f"return {rows[-1]['episode_reward']:.1f}")
    best = max(rows, key=lambda r: (r["success_rate"], r["episode_reward"]))
    result = {"first": str(first_dir), "second": str(second_dir), "episodes": num_episodes,
              "seed": seed, "weights": rows, "best_weight": best["weight"]}
    (Path(first_dir) / "compose.json").write_text(json.dumps(result, indent=2))
    console.print(f"best weight {best['weight']:.2f} (1 = {first_dir} alone, 0 = {second_dir} "
                  f"alone): success {best['success_rate']:.3f}")
    return result
