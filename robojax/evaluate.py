"""Evaluate a trained run's latest checkpoint (or an earlier one): `robojax eval RUN_DIR`."""

import dataclasses
import functools
import json
from pathlib import Path
from typing import NamedTuple

import jax

from robojax.algos import acting
from robojax.io import run as run_dir_io
from robojax.io.progress import console
from robojax.rollout import nonfinite_action_warning
from robojax.runs import Run, load_run, restore_run


def _evaluation(algo, cfg, env, num_episodes: int, overrides: dict):
    """`(state, key) -> metrics`: one compiled evaluation, traced once for every seed's state."""
    cfg = dataclasses.replace(cfg, num_eval_envs=num_episodes, **overrides)
    program = jax.jit(functools.partial(algo.evaluate, cfg, acting.make_eval_env(cfg, env)))
    return lambda state, key: {k: float(v) for k, v in program(state, key).items()}


def evaluate_checkpoint(run_dir: str | Path, *, num_episodes: int = 256, seed: int = 1,
                        seed_index: int = 0, env_config: dict | None = None,
                        checkpoint: int | None = None, **overrides) -> dict[str, float]:
    """Mean metrics of a run's latest checkpoint (or of iteration `checkpoint`) over
    `num_episodes` parallel episodes; `overrides` replace fields of the algo config first
    (e.g. `inference_steps=1`); `seed_index` picks one seed of a `--num-seeds` run;
    `env_config` overrides the run's env config."""
    _, algo, cfg, env, state, _ = load_run(run_dir, seed_index, env_config, checkpoint)
    return _evaluation(algo, cfg, env, num_episodes, overrides)(state, jax.random.PRNGKey(seed))


def _acting_overrides(algo_name: str, cfg, deterministic: bool | None) -> dict:
    """The algo config fields `deterministic` sets: {} for None, else `deterministic_eval`."""
    if deterministic is None:
        return {}
    if not hasattr(cfg, "deterministic_eval"):
        raise ValueError(f"{algo_name} has no choice of mean or sampled actions to evaluate "
                         "(no deterministic_eval setting); leave out --deterministic.")
    return {"deterministic_eval": deterministic}


class SeedScores(NamedTuple):
    """`evaluate_seeds`' answer: the run (its config with `overrides` applied), the seed
    indices evaluated, their states and each one's mean metrics."""

    run: Run
    overrides: dict
    indices: list[int]
    states: list
    metrics: list[dict[str, float]]


def evaluate_seeds(run_dir: str | Path, *, num_episodes: int = 256, seed: int = 1,
                   env_config: dict | None = None, seed_index: int | None = None,
                   deterministic: bool | None = None, checkpoint: int | None = None
                   ) -> SeedScores:
    """Every seed's (or seed `seed_index`'s) mean metrics of one checkpoint over the same
    `num_episodes` parallel episodes: the run restored once, the evaluation compiled once.
    The arguments are `evaluate_run`'s; nothing is written."""
    run = restore_run(run_dir, env_config, checkpoint)
    overrides = _acting_overrides(run.args.algo, run.cfg, deterministic)
    run = run._replace(cfg=dataclasses.replace(run.cfg, **overrides))
    num_seeds = run.args.num_seeds
    indices = list(range(num_seeds)) if seed_index is None else [seed_index]
    states = [run_dir_io.seed_state(run.state, num_seeds, i, run_dir) for i in indices]
    evaluation = _evaluation(run.algo, run.cfg, run.env, num_episodes, {})
    metrics = [evaluation(state, jax.random.PRNGKey(seed)) for state in states]
    return SeedScores(run, overrides, indices, states, metrics)


def evaluate_run(run_dir: str | Path, *, num_episodes: int = 256, video: bool = True,
                 seed: int = 1, env_config: dict | None = None,
                 seed_index: int | None = None, deterministic: bool | None = None,
                 checkpoint: int | None = None) -> dict[str, float]:
    """Mean metrics over `num_episodes` parallel episodes; writes eval.json (and a video).
    `env_config` overrides the run's env config (recorded in eval.json). Of a run trained with
    `--num-seeds N`, every seed is evaluated: eval.json holds the mean over seeds and, under
    "seeds", each seed's metrics; `seed_index` evaluates that one seed only. `deterministic`
    picks the mean action (True) or sampled ones (False) where the algorithm offers both
    (`deterministic_eval`); None keeps the run's setting. `checkpoint` evaluates the
    checkpoint of that iteration instead of the latest (eval.json records which)."""
    scores = evaluate_seeds(run_dir, num_episodes=num_episodes, seed=seed,
                            env_config=env_config, seed_index=seed_index,
                            deterministic=deterministic, checkpoint=checkpoint)
    (args, algo, cfg, env, _, step), overrides = scores.run, scores.overrides
    indices, seed_states, per_seed = scores.indices, scores.states, scores.metrics
    result = {k: sum(r[k] for r in per_seed) / len(per_seed) for k in per_seed[0]}
    result["checkpoint_iteration"] = step
    if args.num_seeds > 1:
        result["seed_indices"] = indices
        result["seeds"] = per_seed
    if env_config:
        result["env_config"] = {k: repr(v) for k, v in env_config.items()}
    if overrides:
        result["algo_config"] = overrides
    (Path(run_dir) / "eval.json").write_text(json.dumps(result, indent=2))
    for i, metrics in zip(indices, per_seed, strict=True):
        name = f"seed {i}" if args.num_seeds > 1 else f"{args.env} checkpoint {step}"
        console.print(f"{name}: eval reward {_summary(metrics, num_episodes)}")
        warning = nonfinite_action_warning(metrics)
        if warning:
            console.print(f"[yellow]warning:[/] {name}: {warning}")
    if len(per_seed) > 1:
        rewards = " / ".join(f"{r['eval/episode_reward']:.1f}" for r in per_seed)
        console.print(f"{args.env} checkpoint {step}: mean eval reward over {len(per_seed)} "
                      f"seeds {result['eval/episode_reward']:.1f} (per seed {rewards})")
    if video:
        from robojax.rollout import save_video

        save_video(env, algo.controller(cfg, seed_states[0]), Path(run_dir) / "eval_video.mp4",
                   key=jax.random.PRNGKey(seed))
    return result


def _summary(metrics: dict, num_episodes: int) -> str:
    return (f"{metrics['eval/episode_reward']:.1f} ± {metrics['eval/episode_reward_std']:.1f} "
            f"over {num_episodes} episodes"
            + (f", success rate {metrics['eval/success_rate']:.3f}"
               if "eval/success_rate" in metrics else ""))
