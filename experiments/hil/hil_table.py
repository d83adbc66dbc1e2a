"""HIL (RLPD + the simulated human) against RLPD alone, from the same demonstrations on a
sparse-reward task, over seeds: success evaluated with no intervener, env steps and
human-seconds to a success threshold, the intervention rate at the end.

    python experiments/hil/hil_table.py --env pusher --demos 20 --seeds 3 \\
        --num-timesteps 200000 [--out runs/hil-table]

Each method trains its seeds in one compiled program (`--num-seeds`); the simulated human has a
reaction delay of 3 steps, action noise 0.1 and watches at most a quarter of the envs. A run
directory that already holds a finished run is reused. Success rates carry Wilson intervals
over the evaluation episodes of all seeds; steps to the threshold are those of the seeds'
mean success rate.
"""

import argparse
from pathlib import Path

import numpy as np

from robojax import cli
from robojax.io.metrics import read_metrics
from robojax.stats import wilson


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="pusher")
    parser.add_argument("--demos", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--num-timesteps", type=int, default=200_000)
    parser.add_argument("--num-evals", type=int, default=10)
    parser.add_argument("--eval-episodes", type=int, default=64)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--methods", nargs="*", default=["hil", "rlpd"])
    parser.add_argument("--out", type=Path, default=Path("runs/hil-table"))
    return parser.parse_args()


def demos(args) -> Path:
    path = args.out / f"{args.env}-sparse-{args.demos}.hdf5"
    if not path.exists():
        cli.main(["collect", "--env", args.env, "--env-config", "sparse_reward=True",
                  "--episodes", str(args.demos), "--only-success", "--out", str(path)])
    return path


def train(args, method: str, dataset: Path) -> Path:
    run_dir = args.out / method
    if (run_dir / "learning_curve.png").exists():
        return run_dir
    flags = ["train", "--algo", method, "--env", args.env, "--env-config", "sparse_reward=True",
             "--dataset", str(dataset), "--num-seeds", str(args.seeds),
             "--num-envs", str(args.num_envs), "--num-timesteps", str(args.num_timesteps),
             f"--{method}.num-evals", str(args.num_evals),
             f"--{method}.num-eval-envs", str(args.eval_episodes),
             "--run-dir", str(run_dir), "--no-video", "--no-progress"]
    if method == "hil":
        flags += ["--hil.human.reaction-delay", "3", "--hil.human.action-noise", "0.1",
                  "--hil.human.attention", str(max(1, args.num_envs // 4))]
    cli.main(flags)
    return run_dir


def first_reaching(rows: list[dict], key: str, threshold: float, x: str) -> float:
    for row in rows:
        if row.get(key, 0.0) >= threshold:
            return row[x]
    return float("nan")


def main():
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    dataset = demos(args)
    print(f"| method | final success [95% CI] | env steps until the seeds' mean reaches "
          f"{args.threshold:.0%} | wall s to it | human-seconds to it | final intervention rate "
          "| train wall s |\n|---|---|---|---|---|---|---|")
    for method in args.methods:
        run_dir = train(args, method, dataset)
        rows = [r for r in read_metrics(run_dir / "metrics.csv")
                if np.isfinite(r.get("eval/success_rate", np.nan))]
        final = rows[-1]["eval/success_rate"]
        trials = args.eval_episodes * args.seeds
        low, high = wilson(round(final * trials), trials)
        steps = first_reaching(rows, "eval/success_rate", args.threshold, "env_steps")
        seconds = first_reaching(rows, "eval/success_rate", args.threshold,
                                 "hil/human_seconds_total")
        wall = first_reaching(rows, "eval/success_rate", args.threshold, "wall_time_s")
        rate = rows[-1].get("hil/intervention_rate", float("nan"))
        print(f"| {method} | {final:.3f} [{low:.3f}, {high:.3f}] | {steps:,.0f} | {wall:.0f} | "
              f"{seconds:.0f} | {rate:.3f} | {rows[-1]['wall_time_s']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
