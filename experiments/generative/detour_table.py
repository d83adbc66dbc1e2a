"""Success on the bimodal `detour` task: every policy family cloned from the same demos.

Collects scripted-expert demonstrations (each passes the wall on a random side), trains each
family by behaviour cloning for several seeds, and evaluates every seed's final EMA policy in
`--episodes` parallel episodes. Prints a markdown table (mean and per-seed success).

    python experiments/generative/detour_table.py --seeds 3 --episodes 512
"""

import argparse
import dataclasses
import functools
import json
import time
from pathlib import Path

import jax
import numpy as np
from robojax.policies.diffusion import DenoiserConfig

from robojax.algos import bc
from robojax.data.collect import collect_to_file
from robojax.evaluate import load_run
from robojax.train import TrainArgs, train

MLP = DenoiserConfig(network="mlp")
FLOW = bc.FlowPolicy(denoiser=MLP, max_steps=8)
# (row label, family, BC overrides, inference steps at eval)
ROWS = [
    ("gaussian (MSE)", "gaussian", {}, None),
    ("diffusion (sample prediction), DDIM-10", "diffusion",
     {"diffusion": bc.DiffusionPolicy(denoiser=MLP)}, 10),
    ("flow (sample prediction), 10 Euler steps", "flow", {"flow": FLOW}, 10),
    ("flow (sample prediction), 1 step", "flow", {"flow": FLOW}, 1),
    ("energy, proposal + 2 descent steps", "energy", {"batch_size": 64, "energy":
                                                     bc.EnergyPolicy(num_negatives=32)}, 2),
]


def evaluate_seed(run_dir: Path, steps: int | None, episodes: int, seed: int) -> dict:
    _, algo, cfg, env, state, _ = load_run(run_dir)
    cfg = dataclasses.replace(cfg, num_envs=episodes, inference_steps=steps)
    metrics = jax.jit(functools.partial(algo.evaluate, cfg, algo.make_eval_env(cfg, env)))(
        state, jax.random.PRNGKey(10_000 + seed))
    return {k: float(v) for k, v in metrics.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/detour-table"))
    parser.add_argument("--demos", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=512)
    parser.add_argument("--grad-steps", type=int, default=10_000)
    parser.add_argument("--families", nargs="*", default=None)
    args = parser.parse_args()
    dataset = args.out / "detour_demos.hdf5"
    if not dataset.exists():
        collect_to_file("detour", "solver", args.demos, dataset, only_success=True)
    results = {}
    trained = {}
    for label, family, overrides, steps in ROWS:
        if args.families and family not in args.families:
            continue
        per_seed, seconds = [], []
        for seed in range(args.seeds):
            run_dir = args.out / f"{family}-{seed}"
            if (family, seed) not in trained:
                start = time.perf_counter()
                cfg = dataclasses.replace(bc.BCConfig(), policy=family, dataset=dataset,
                                          num_grad_steps=args.grad_steps, num_evals=2,
                                          **overrides)
                train(TrainArgs(algo="bc", env="detour", run_dir=run_dir, seed=seed, bc=cfg,
                                video=seed == 0, progress=False))
                trained[family, seed] = time.perf_counter() - start
            seconds.append(trained[family, seed])
            per_seed.append(evaluate_seed(run_dir, steps, args.episodes, seed))
        success = [m["eval/success_rate"] for m in per_seed]
        results[label] = {"success": success, "collision": [m["eval/reward/collision"]
                                                            for m in per_seed],
                          "train_seconds": seconds}
        print(f"{label}: success {np.mean(success):.3f} {np.round(success, 3).tolist()}",
              flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\n| policy | success (mean of {args.seeds} seeds x {args.episodes} episodes) | "
          "per seed | wall-into-wall rate | train s per seed |\n|---|---|---|---|---|")
    for label, r in results.items():
        print(f"| {label} | {np.mean(r['success']):.3f} | "
              f"{' / '.join(f'{s:.3f}' for s in r['success'])} | "
              f"{np.mean(r['collision']):.3f} | {np.mean(r['train_seconds']):.0f} |")


if __name__ == "__main__":
    main()
