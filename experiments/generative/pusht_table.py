"""Success on `push-t` (>= 95% overlap with the target): diffusion and flow cloned from the
same scripted-expert demos, each seed's EMA policy evaluated in `--episodes` parallel episodes.

Prints a markdown table of success rate, mean max overlap and training time.

    python experiments/generative/pusht_table.py --demos 200 --seeds 1 --grad-steps 8000
"""

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from detour_table import evaluate_seed

from robojax.algos import bc
from robojax.data.collect import collect_to_file
from robojax.train import TrainArgs, train

# (row label, family, BC overrides, inference steps at eval)
ROWS = [
    ("diffusion (U-Net, epsilon), DDIM-10", "diffusion", {}, 10),
    ("flow (U-Net, sample prediction), 10 Euler steps", "flow", {}, 10),
    ("flow (U-Net, sample prediction), 1 step", "flow", {}, 1),
    ("gaussian (MSE)", "gaussian", {}, None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/pusht-table"))
    parser.add_argument("--demos", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=512)
    parser.add_argument("--grad-steps", type=int, default=8_000)
    parser.add_argument("--families", nargs="*", default=None)
    args = parser.parse_args()
    dataset = args.out / f"push_t_demos_{args.demos}.hdf5"
    if not dataset.exists():
        collect_to_file("push-t", "solver", args.demos, dataset, only_success=True)
    results, trained = {}, {}
    for label, family, overrides, steps in ROWS:
        if args.families and family not in args.families:
            continue
        per_seed = []
        for seed in range(args.seeds):
            run_dir = args.out / f"{family}-{seed}"
            if (family, seed) not in trained:
                start = time.perf_counter()
                cfg = dataclasses.replace(bc.BCConfig(), policy=family, dataset=dataset,
                                          num_grad_steps=args.grad_steps, num_evals=1,
                                          **overrides)
                train(TrainArgs(algo="bc", env="push-t", run_dir=run_dir, seed=seed, bc=cfg,
                                video=seed == 0, progress=False))
                trained[family, seed] = time.perf_counter() - start
            per_seed.append(evaluate_seed(run_dir, steps, args.episodes, seed))
        results[label] = {
            "success": [m["eval/success_rate"] for m in per_seed],
            "max_overlap": [m["eval/peak/reward/overlap"] for m in per_seed],
            "train_seconds": [trained[family, s] for s in range(args.seeds)]}
        print(f"{label}: {results[label]}", flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\n| policy | success (mean of {args.seeds} seed(s) x {args.episodes} episodes) | "
          "per seed | mean max overlap | train s per seed |\n|---|---|---|---|---|")
    for label, r in results.items():
        print(f"| {label} | {np.mean(r['success']):.3f} | "
              f"{' / '.join(f'{s:.3f}' for s in r['success'])} | "
              f"{np.mean(r['max_overlap']):.3f} | {np.mean(r['train_seconds']):.0f} |")


if __name__ == "__main__":
    main()
