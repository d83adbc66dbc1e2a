"""Every built-in task trained with its PPO preset (`robojax.presets`), several seeds each,
beside the task's scripted expert: the README's results table.

    python experiments/presets_table.py --seeds 3 [--tasks reacher hopper] [--out runs/presets]

Per task: the final checkpoint of each seed evaluated over `--episodes` episodes; the mean eval
reward over seeds with a 95% percentile-bootstrap interval, the success rate over all episodes
with a Wilson interval (where the task reports success), the expert's mean return over the
same number of episodes, and the training wall time per seed (compilation included). Runs are
resumed when the table is run again; results go to OUT/results.json.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent / "bench"))
from _stats import bootstrap_mean, wilson  # noqa: E402

from robojax import envs, presets  # noqa: E402
from robojax.data.collect import collect  # noqa: E402
from robojax.evaluate import evaluate_checkpoint  # noqa: E402
from robojax.io.metrics import read_metrics  # noqa: E402
from robojax.runs import TrainArgs  # noqa: E402
from robojax.train import train_or_resume  # noqa: E402


def run_task(env: str, seeds: int, episodes: int, out: Path) -> dict:
    rewards, successes, walls, steps = [], [], [], 0
    for seed in range(seeds):
        run_dir = out / env / f"seed-{seed}"
        args = presets.apply(TrainArgs(env=env, seed=seed, run_dir=run_dir, video=False,
                                       progress=False), set())
        train_or_resume(args)
        metrics = evaluate_checkpoint(run_dir, num_episodes=episodes, seed=10_000 + seed)
        rewards.append(metrics["eval/episode_reward"])
        if "eval/success_rate" in metrics:
            successes.append(metrics["eval/success_rate"])
        last = read_metrics(run_dir / "metrics.csv")[-1]
        walls.append(float(last["wall_time_s"]))
        steps = int(last["env_steps"])
    row = {"env": env, "rewards": rewards, "reward_ci": bootstrap_mean(rewards), "walls": walls,
           "env_steps": steps, "successes": successes}
    try:
        _, stats = collect(env, "solver", episodes, seed=1)
        row["expert"], row["expert_success"] = stats["mean_return"], stats["success_rate"]
    except ValueError:  # no scripted expert
        row["expert"], row["expert_success"] = None, None
    return row


def _cell(row: dict, episodes: int) -> str:
    if not row["successes"]:
        return "-"
    hits = int(round(sum(row["successes"]) * episodes))
    low, high = wilson(hits, episodes * len(row["successes"]))
    return f"{np.mean(row['successes']):.2f} [{low:.2f}, {high:.2f}]"


def print_table(rows: list[dict], episodes: int) -> None:
    print("| task | env steps | eval reward, mean [95% CI] (per seed) | success [95% CI] | "
          "expert return | / expert | wall s per seed |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        mean = float(np.mean(row["rewards"]))
        per_seed = " / ".join(f"{r:.0f}" for r in row["rewards"])
        low, high = row["reward_ci"]
        expert = row["expert"]
        ratio = f"{mean / expert:.2f}" if expert else "-"
        print(f"| {row['env']} | {row['env_steps']:,} | {mean:.0f} [{low:.0f}, {high:.0f}] "
              f"({per_seed}) | {_cell(row, episodes)} | "
              f"{f'{expert:.0f}' if expert is not None else '-'} | {ratio} | "
              f"{np.mean(row['walls']):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=envs.names())
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("runs/presets"))
    args = parser.parse_args()
    rows = [run_task(env, args.seeds, args.episodes, args.out) for env in args.tasks]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2, default=float))
    print_table(rows, args.episodes)


if __name__ == "__main__":
    main()
