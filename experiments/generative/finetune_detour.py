"""RL fine-tuning on `detour` from deliberately weak behaviour cloning: success and the split
between the two ways round the wall, before and after ReinFlow (flow), DPPO (diffusion) and
residual RL (on the diffusion clone).

Per seed: clone the scripted expert's demos briefly (MLP denoiser), fine-tune with a sparse
reward, then roll both policies out in `--episodes` parallel episodes. The reward has no
distance shaping (with it a policy earns more by hovering near the goal than by reaching it):
success +1 and touching the wall -1 for ReinFlow and DPPO; success alone for the residual,
which otherwise learns to stop short of the wall. A success passed the wall on the left when
the puck's mean sideways position level with the wall is negative. Success gets a Wilson 95%
interval over all episodes of all seeds.

    python experiments/generative/finetune_detour.py --seeds 3 --timesteps 600000
    python experiments/generative/finetune_detour.py --seeds 3 --report   # tables only
    python experiments/generative/finetune_detour.py --seeds 3 --algos residual \
        --out runs/finetune-detour-mirror -- --residual.mirror   # a mirror-equivariant residual
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

from robojax.io.metrics import read_metrics
from robojax.rollout import rollout_states
from robojax.runs import load_run
from robojax.stats import wilson

SPARSE = "reward_scales={'progress': 0.0}"
SUCCESS_ONLY = "reward_scales={'progress': 0.0, 'collision': 0.0}"
BC_STEPS = {"flow": 1000, "diffusion": 600}
ALGOS = {"reinflow": ("flow", SPARSE), "dppo": ("diffusion", SPARSE),
         "residual": ("diffusion", SUCCESS_ONLY)}  # the cloned family, the training reward


def robojax(*args: str) -> float:
    start = time.perf_counter()
    quiet = ("--no-progress", "--no-video") if args[0] == "train" else ()
    subprocess.run([sys.executable, "-m", "robojax.cli", *args, *quiet], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def outcomes(run_dir: Path, episodes: int, seed: int) -> dict:
    """Success and left/right of the successes over `episodes` parallel episodes."""
    _, algo, cfg, env, state, _ = load_run(run_dir)
    states, _ = rollout_states(env, algo.controller(cfg, state), jax.random.PRNGKey(seed),
                               env.config.episode_length, episodes)
    position, done = np.asarray(states.obs[..., :2]), np.asarray(states.done)
    success = np.asarray(states.metrics["reward/success"])
    last = np.where(done.any(0), done.argmax(0), len(done) - 1)
    alive = np.arange(len(done))[:, None] <= last
    won = (alive * success).max(0) > 0
    level = alive & (np.abs(position[..., 1]) < 0.1)
    mean_x = (position[..., 0] * level).sum(0) / np.maximum(level.sum(0), 1)
    return {"episodes": episodes, "successes": int(won.sum()),
            "left": int((won & (mean_x < 0)).sum()), "right": int((won & (mean_x >= 0)).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--timesteps", type=int, default=600_000)
    parser.add_argument("--episodes", type=int, default=512)
    parser.add_argument("--num-envs", type=int, default=256, help="fine-tuning envs")
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    parser.add_argument("--out", type=Path, default=Path("runs/finetune-detour"))
    parser.add_argument("--threshold", type=float, default=0.75,
                        help="success of the periodic evaluation the time-to rows count to")
    parser.add_argument("--report", action="store_true",
                        help="print the tables of the runs already in --out")
    parser.add_argument("flags", nargs="*",
                        help="after --: more `robojax train` flags for the fine-tuning runs")
    args = parser.parse_args()
    if args.report:
        report(args, json.loads((args.out / "results.json").read_text()))
        return
    demos = args.out / "detour_demos_100.hdf5"
    if not demos.exists():
        robojax("collect", "--env", "detour", "--episodes", "100", "--only-success",
                "--out", str(demos))
    results_file = args.out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    for algo in args.algos:
        family, reward = ALGOS[algo]
        for seed in range(args.seeds):
            bc, tuned = args.out / f"bc-{family}-{seed}", args.out / f"{algo}-{seed}"
            bc_s = 0.0
            if not (bc / "checkpoints").is_dir():  # the clones are shared by the algorithms
                bc_s = robojax("train", "--algo", "bc", "--policy", family, "--env", "detour",
                               "--dataset", str(demos), "--seed", str(seed), "--run-dir",
                               str(bc), f"--bc.{family}.denoiser.network", "mlp",
                               f"--bc.{family}.denoiser.mlp-hidden", "256", "256", "256",
                               "--bc.num-grad-steps", str(BC_STEPS[family]),
                               "--bc.num-evals", "1")
            ft_s = robojax("train", "--algo", algo, "--env", "detour", "--init-from", str(bc),
                           "--env-config", reward, "--seed", str(seed), "--run-dir", str(tuned),
                           "--num-timesteps", str(args.timesteps), "--num-envs", str(args.num_envs),
                           f"--{algo}.num-evals", "10", *args.flags)
            row = {"bc": outcomes(bc, args.episodes, 10_000 + seed),
                   "tuned": outcomes(tuned, args.episodes, 10_000 + seed),
                   "bc_s": bc_s, "tuned_s": ft_s}
            results[f"{algo}-{seed}"] = row
            print(json.dumps({f"{algo}-{seed}": row}), flush=True)
            results_file.write_text(json.dumps(results, indent=1))
    report(args, results)


def time_to(run_dir: Path, threshold: float) -> tuple[float, float] | None:
    """(env steps, wall seconds) of the first periodic evaluation at or past `threshold`."""
    for row in read_metrics(run_dir / "metrics.csv"):
        if row["eval/success_rate"] >= threshold:
            return row["env_steps"], row["wall_time_s"]
    return None


def report(args: argparse.Namespace, results: dict) -> None:
    print("\n| run | BC success | tuned success | minority side of the tuned successes | "
          f"env steps, wall s to {args.threshold} |\n|---|---|---|---|---|")
    for name, row in results.items():
        tuned = row["tuned"]
        minority = min(tuned["left"], tuned["right"]) / max(tuned["successes"], 1)
        reached = time_to(args.out / name, args.threshold)
        when = f"{reached[0]:,.0f}, {reached[1]:.0f}" if reached else "not reached"
        print(f"| {name} | {row['bc']['successes'] / row['bc']['episodes']:.3f} | "
              f"{tuned['successes'] / tuned['episodes']:.3f} | {minority:.2f} | {when} |")
    print("\n| policy | success [Wilson 95% CI] | left / right of the successes |\n|---|---|---|")
    for algo in args.algos:
        family = ALGOS[algo][0]
        for stage, name in (("bc", f"{family} BC"), ("tuned", f"{family} BC + {algo}")):
            rows = [r[stage] for k, r in results.items() if k.startswith(algo)]
            won, n = sum(r["successes"] for r in rows), sum(r["episodes"] for r in rows)
            left, right = sum(r["left"] for r in rows), sum(r["right"] for r in rows)
            low, high = wilson(won, n)
            print(f"| {name} | {won / n:.3f} [{low:.3f}, {high:.3f}] | "
                  f"{left / max(won, 1):.2f} / {right / max(won, 1):.2f} |")


if __name__ == "__main__":
    main()
