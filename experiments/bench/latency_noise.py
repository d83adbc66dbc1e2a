"""Training for the trip: a policy trained with observation noise and action latency against one
trained without, both evaluated under a robot's imperfections, in MJX and in MuJoCo C.

    robojax train --env pendulum-swingup --num-seeds 3 --seed 10 --run-dir runs/plain
    robojax train --env pendulum-swingup --num-seeds 3 --seed 10 --run-dir runs/robust \\
        --env-config obs_noise=0.05 "action_delay=(0, 2)"
    python experiments/bench/latency_noise.py runs/plain runs/robust [--episodes 256]

For each run and seed: the MJX evaluation (`robojax eval`'s metrics, `--episodes` episodes) with
no noise and no delay, then at each (observation noise, fixed delay) of CONDITIONS, and the
share of its clean return each keeps; then the exported seed in MuJoCo C through the deploy
runtime (`robojax sim2sim`, `--sim2sim-episodes` episodes) at the first condition. Means over
seeds with a 95% bootstrap interval over the seeds.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from robojax.evaluate import evaluate_checkpoint
from robojax.runs import read_args
from robojax.stats import bootstrap_mean

CONDITIONS = ((0.05, 2), (0.1, 2))
"""(observation noise std, action delay in control steps) to evaluate at."""


def mjx_return(run_dir: Path, seed_index: int, episodes: int, noise: float, delay: int) -> float:
    metrics = evaluate_checkpoint(run_dir, num_episodes=episodes, seed_index=seed_index,
                                  env_config={"obs_noise": noise,
                                              "action_delay": (delay, delay)})
    return metrics["eval/episode_reward"]


def sim2sim_return(run_dir: Path, seed_index: int, episodes: int, noise: float,
                   delay: int) -> float:
    from robojax.export import export_run
    from robojax.sim2sim import sim2sim

    out = run_dir / f"export-seed{seed_index}"
    if not (out / "contract.json").is_file():
        export_run(run_dir, out, formats=("onnx",), seed_index=seed_index)
    result = sim2sim(out, episodes=episodes, obs_noise=noise, action_delay=delay, compare=False)
    return result.summary()["mujoco_return"]


def interval(values) -> str:
    low, high = bootstrap_mean(values)
    return f"{np.mean(values):.1f} [{low:.1f}, {high:.1f}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--episodes", type=int, default=256)
    parser.add_argument("--sim2sim-episodes", type=int, default=20)
    args = parser.parse_args()
    header = ["run", "seed", "clean"] + [f"noise {n}, delay {d}" for n, d in CONDITIONS]
    header += [f"kept at noise {n}, delay {d}" for n, d in CONDITIONS]
    header += [f"MuJoCo C, noise {CONDITIONS[0][0]}, delay {CONDITIONS[0][1]}"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for run_dir in args.runs:
        env_config = " ".join(read_args(run_dir).env_config) or "none"
        rows = []
        for seed in range(read_args(run_dir).num_seeds):
            clean = mjx_return(run_dir, seed, args.episodes, 0.0, 0)
            noisy = [mjx_return(run_dir, seed, args.episodes, n, d) for n, d in CONDITIONS]
            c_side = sim2sim_return(run_dir, seed, args.sim2sim_episodes, *CONDITIONS[0])
            rows.append([clean, *noisy, *[x / clean for x in noisy], c_side])
            cells = [f"{x:.1f}" for x in (clean, *noisy)] + [f"{x / clean:.2f}" for x in noisy]
            print(f"| {run_dir.name} ({env_config}) | {seed} | " + " | ".join(cells)
                  + f" | {c_side:.1f} |", flush=True)
        columns = np.array(rows).T
        means = [interval(c) if i < 1 + len(CONDITIONS) or i == len(columns) - 1
                 else f"{np.mean(c):.2f} [{bootstrap_mean(c)[0]:.2f}, {bootstrap_mean(c)[1]:.2f}]"
                 for i, c in enumerate(columns)]
        print(f"| {run_dir.name} | mean [95% CI] | " + " | ".join(means) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
