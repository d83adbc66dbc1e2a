"""Success of every checkpoint a run kept, each seed on the same episodes, with a Wilson 95%
interval over the pooled episodes: where a run's periodic evaluations act one way (e.g. an
off-policy learner's mean action), this scores its kept checkpoints the other way, e.g. to
find the env steps at which sampled actions pass 90%.

    python experiments/bench/checkpoint_success.py runs/pusht-hil-trust/hil runs/pusht-rlpd/rlpd \
        --episodes 64 --deterministic False

Evaluation uses `robojax eval`'s episodes (seed 1 by default) and writes nothing into the runs.
A run keeps its last three checkpoints; one trained with `--keep-checkpoints 0` keeps each.
"""

import argparse
from pathlib import Path

from _stats import pooled_success

from robojax.evaluate import evaluate_seeds
from robojax.io import checkpoint
from robojax.io.run import CHECKPOINTS
from robojax.runs import read_args


def checkpoint_rates(run: Path, episodes: int, seed: int = 1, deterministic: bool | None = None
                     ) -> list[tuple[int, int, list[float]]]:
    """(iteration, env steps, success per seed) of each checkpoint `run` kept, oldest first."""
    steps_per_iteration = read_args(run).algo_config().steps_per_iteration()
    rates = []
    for iteration in checkpoint.steps(run / CHECKPOINTS):
        scores = evaluate_seeds(run, num_episodes=episodes, seed=seed,
                                deterministic=deterministic, checkpoint=iteration)
        rates.append((iteration, iteration * steps_per_iteration,
                      [m["eval/success_rate"] for m in scores.metrics]))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1, help="seed of the evaluation episodes")
    parser.add_argument("--deterministic", choices=["True", "False"], default=None,
                        help="the mean action (True) or sampled ones (False); by default as "
                             "each run evaluated")
    args = parser.parse_args()
    deterministic = None if args.deterministic is None else args.deterministic == "True"
    print("| run | iteration | env steps | success per seed | pooled [Wilson 95%] |")
    print("|---|---|---|---|---|")
    for run in args.runs:
        for iteration, env_steps, rates in checkpoint_rates(run, args.episodes, args.seed,
                                                            deterministic):
            pooled, lo, hi = pooled_success(rates, args.episodes)
            print(f"| {run} | {iteration:,} | {env_steps:,} | "
                  f"{' / '.join(f'{r:.2f}' for r in rates)} | {pooled:.2f} "
                  f"[{lo:.2f}, {hi:.2f}] |", flush=True)


if __name__ == "__main__":
    main()
