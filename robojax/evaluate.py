"""Evaluate a trained run's latest checkpoint: `robojax eval RUN_DIR`."""

import dataclasses
import functools
import json
from pathlib import Path

import jax

from robojax import algos
from robojax.core.adapters import make_env
from robojax.io import checkpoint
from robojax.io.progress import console


def load_run(run_dir: str | Path, seed_index: int = 0, env_config: dict | None = None):
    """(args, algo module, algo config, env, restored train state, checkpoint iteration) of a
    run; of a run trained with `--num-seeds N`, the state of seed `seed_index` (0..N-1).
    `env_config` overrides the run's env config (after its `--eval-env-config`), e.g. to
    evaluate with the task's own reward a policy trained with shaping terms."""
    args, algo, cfg, env, states, step = _restore(run_dir, env_config)
    return args, algo, cfg, env, _seed_state(run_dir, args, states, seed_index), step


def _restore(run_dir: str | Path, env_config: dict | None):
    """Like `load_run`, with the train states of all seeds (stacked when there are several)."""
    from robojax.train import args_from_json, eval_overrides

    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{run_dir} has no config.json; pass a directory written by "
                                "`robojax train`.")
    args = args_from_json(json.loads(config_path.read_text()))
    algo = algos.get(args.algo)
    cfg = args.algo_config()
    env = make_env(args.env, **eval_overrides(args, env_config))
    # Only the state's shapes: restoring needs no initial values (nor their compiles).
    target = jax.eval_shape(functools.partial(algo.init, cfg, env), jax.random.PRNGKey(0))
    if args.num_seeds > 1:
        target = jax.tree.map(lambda x: jax.ShapeDtypeStruct((args.num_seeds, *x.shape),
                                                             x.dtype), target)
    states, step = checkpoint.restore(run_dir / "checkpoints", target)
    return args, algo, cfg, env, states, step


def _seed_state(run_dir, args, states, seed_index: int):
    """Seed `seed_index`'s train state of a run's restored `states`; an index past the run's
    seeds is a named error."""
    if not 0 <= seed_index < args.num_seeds:
        raise ValueError(f"seed index {seed_index} is out of range: {run_dir} trained "
                         f"{args.num_seeds} seed(s); pass 0..{args.num_seeds - 1}.")
    return states if args.num_seeds == 1 else jax.tree.map(lambda x: x[seed_index], states)


def _evaluate(algo, cfg, env, state, num_episodes: int, seed: int,
              overrides: dict) -> dict[str, float]:
    size_field = "num_eval_envs" if hasattr(cfg, "num_eval_envs") else "num_envs"
    cfg = dataclasses.replace(cfg, **{size_field: num_episodes, **overrides})
    metrics = jax.jit(functools.partial(algo.evaluate, cfg, algo.make_eval_env(cfg, env)))(
        state, jax.random.PRNGKey(seed))
    return {k: float(v) for k, v in metrics.items()}


def evaluate_checkpoint(run_dir: str | Path, *, num_episodes: int = 256, seed: int = 1,
                        seed_index: int = 0, env_config: dict | None = None,
                        **overrides) -> dict[str, float]:
    """Mean metrics of a run's latest checkpoint over `num_episodes` parallel episodes;
    `overrides` replace fields of the algo config first (e.g. `inference_steps=1`);
    `seed_index` picks one seed of a `--num-seeds` run; `env_config` overrides the run's env
    config."""
    _, algo, cfg, env, state, _ = load_run(run_dir, seed_index, env_config)
    return _evaluate(algo, cfg, env, state, num_episodes, seed, overrides)


def evaluate_run(run_dir: str | Path, *, num_episodes: int = 256, video: bool = True,
                 seed: int = 1, env_config: dict | None = None,
                 seed_index: int | None = None) -> dict[str, float]:
    """Mean metrics over `num_episodes` parallel episodes; writes eval.json (and a video).
    `env_config` overrides the run's env config (recorded in eval.json). Of a run trained with
    `--num-seeds N`, every seed is evaluated: eval.json holds the mean over seeds and, under
    "seeds", each seed's metrics; `seed_index` evaluates that one seed only."""
    args, algo, cfg, env, states, step = _restore(run_dir, env_config)
    indices = list(range(args.num_seeds)) if seed_index is None else [seed_index]
    seed_states = [_seed_state(run_dir, args, states, i) for i in indices]
    per_seed = [_evaluate(algo, cfg, env, state, num_episodes, seed, {})
                for state in seed_states]
    result = {k: sum(r[k] for r in per_seed) / len(per_seed) for k in per_seed[0]}
    result["checkpoint_iteration"] = step
    if args.num_seeds > 1:
        result["seed_indices"] = indices
        result["seeds"] = per_seed
    if env_config:
        result["env_config"] = {k: repr(v) for k, v in env_config.items()}
    (Path(run_dir) / "eval.json").write_text(json.dumps(result, indent=2))
    for i, metrics in zip(indices, per_seed, strict=True):
        name = f"seed {i}" if args.num_seeds > 1 else f"{args.env} checkpoint {step}"
        console.print(f"{name}: eval reward {_summary(metrics, num_episodes)}")
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
