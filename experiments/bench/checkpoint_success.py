"""Success of every checkpoint a run kept, each seed on the same episodes, with a Wilson 95%
interval over the pooled episodes: where a run's periodic evaluations act one way (e.g. an
off-policy learner's mean action), this scores its kept checkpoints the other way, e.g. to
find the env steps at which sampled actions pass 90%.

    python experiments/bench/checkpoint_success.py runs/pusht-hil-trust/hil runs/pusht-rlpd/rlpd \
        --episodes 64 --deterministic False --out scores.jsonl

Evaluation uses `robojax eval`'s episodes (seed 1 by default) and writes nothing into the runs.
A run keeps its last three checkpoints; one trained with `--keep-checkpoints 0` keeps each.
With `--out`, each score is appended to a JSON-lines file and a checkpoint already scored
there (same run, episodes and way of acting) is not scored again: run it again while a run
trains (e.g. under `watch -n 600`) and no checkpoint is lost to the rotation. `plot_success.py
--scores` draws the file.
"""

import argparse
import json
from pathlib import Path

from _stats import pooled_success

from robojax.evaluate import evaluate_seeds
from robojax.io import checkpoint
from robojax.io.run import CHECKPOINTS
from robojax.runs import read_args


def checkpoint_rates(run: Path, episodes: int, seed: int = 1, deterministic: bool | None = None,
                     skip: frozenset[int] = frozenset()) -> list[tuple[int, int, list[float]]]:
    """(iteration, env steps, success per seed) of each checkpoint `run` kept, oldest first,
    but those of the iterations in `skip`."""
    steps_per_iteration = read_args(run).algo_config().steps_per_iteration()
    rates = []
    for iteration in checkpoint.steps(run / CHECKPOINTS):
        if iteration in skip:
            continue
        scores = evaluate_seeds(run, num_episodes=episodes, seed=seed,
                                deterministic=deterministic, checkpoint=iteration)
        rates.append((iteration, iteration * steps_per_iteration,
                      [m["eval/success_rate"] for m in scores.metrics]))
    return rates


def read_scores(path: Path) -> list[dict]:
    """The rows a `--out` file holds, in the order they were written."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# What makes two scores of one checkpoint the same measurement.
KEY_FIELDS = ("run", "episodes", "seed", "deterministic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1, help="seed of the evaluation episodes")
    parser.add_argument("--deterministic", choices=["True", "False"], default=None,
                        help="the mean action (True) or sampled ones (False); by default as "
                             "each run evaluated")
    parser.add_argument("--out", type=Path, help="append each score to this JSON-lines file "
                        "and skip the checkpoints it already holds")
    args = parser.parse_args()
    deterministic = None if args.deterministic is None else args.deterministic == "True"
    done = read_scores(args.out) if args.out else []
    print("| run | iteration | env steps | success per seed | pooled [Wilson 95%] |")
    print("|---|---|---|---|---|")
    for run in args.runs:
        key = dict(zip(KEY_FIELDS, (str(run), args.episodes, args.seed, deterministic),
                       strict=True))
        skip = frozenset(r["iteration"] for r in done
                         if all(r[f] == key[f] for f in KEY_FIELDS))
        for iteration, env_steps, rates in checkpoint_rates(run, args.episodes, args.seed,
                                                            deterministic, skip):
            pooled, lo, hi = pooled_success(rates, args.episodes)
            print(f"| {run} | {iteration:,} | {env_steps:,} | "
                  f"{' / '.join(f'{r:.2f}' for r in rates)} | {pooled:.2f} "
                  f"[{lo:.2f}, {hi:.2f}] |", flush=True)
            if args.out:
                with args.out.open("a") as f:
                    f.write(json.dumps({**key, "iteration": iteration, "env_steps": env_steps,
                                        "success": rates}) + "\n")


if __name__ == "__main__":
    main()
