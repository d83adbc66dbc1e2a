"""The driver shared by the behaviour-cloning result tables: record scripted-expert demos once,
train each row's policy family for several seeds from them, evaluate every seed's final EMA
policy in parallel episodes, and print a markdown table."""

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from robojax.algos import bc
from robojax.data.collect import collect_to_file
from robojax.evaluate import evaluate_checkpoint
from robojax.train import TrainArgs, train


@dataclasses.dataclass(frozen=True)
class Row:
    label: str
    family: str
    overrides: dict = dataclasses.field(default_factory=dict)  # BCConfig fields
    inference_steps: int | None = None  # at evaluation; None: the family's default


def parse_args(doc: str, *, out: str, demos: int, grad_steps: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(out))
    parser.add_argument("--demos", type=int, default=demos)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=512)
    parser.add_argument("--grad-steps", type=int, default=grad_steps)
    parser.add_argument("--families", nargs="*", default=None)
    return parser.parse_args()


def run(env: str, rows: list[Row], args: argparse.Namespace, columns: dict[str, str]) -> dict:
    """Train and evaluate every row; `columns` maps a column title to the eval metric it
    averages (besides the success rate). Writes results.json and prints the table."""
    dataset = args.out / f"{env}_demos_{args.demos}.hdf5"
    if not dataset.exists():
        collect_to_file(env, "solver", args.demos, dataset, only_success=True)
    results, trained = {}, {}
    for row in rows:
        if args.families and row.family not in args.families:
            continue
        per_seed = []
        for seed in range(args.seeds):
            run_dir = args.out / f"{row.family}-{seed}"
            if (row.family, seed) not in trained:
                start = time.perf_counter()
                cfg = dataclasses.replace(bc.BCConfig(), policy=row.family, dataset=dataset,
                                          num_grad_steps=args.grad_steps, num_evals=1,
                                          **row.overrides)
                train(TrainArgs(algo="bc", env=env, run_dir=run_dir, seed=seed, bc=cfg,
                                video=seed == 0, progress=False))
                trained[row.family, seed] = time.perf_counter() - start
            per_seed.append(evaluate_checkpoint(run_dir, num_episodes=args.episodes,
                                                seed=10_000 + seed,
                                                inference_steps=row.inference_steps))
        results[row.label] = {
            "success": [m["eval/success_rate"] for m in per_seed],
            **{title: [m[key] for m in per_seed] for title, key in columns.items()},
            "train_seconds": [trained[row.family, s] for s in range(args.seeds)]}
        success = results[row.label]["success"]
        print(f"{row.label}: success {np.mean(success):.3f} {np.round(success, 3).tolist()}",
              flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    titles = list(columns)
    print(f"\n| policy | success (mean of {args.seeds} seeds x {args.episodes} episodes) | "
          f"per seed | {' | '.join(titles)} | train s per seed |\n"
          f"|---|---|---|{'---|' * len(titles)}---|")
    for label, r in results.items():
        print(f"| {label} | {np.mean(r['success']):.3f} | "
              f"{' / '.join(f'{s:.3f}' for s in r['success'])} | "
              + "".join(f"{np.mean(r[t]):.3f} | " for t in titles)
              + f"{np.mean(r['train_seconds']):.0f} |")
    return results
