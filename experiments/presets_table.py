"""Every built-in task trained with its preset (`robojax.presets`), several seeds each,
beside the task's scripted expert: the README's results table.

    python experiments/presets_table.py --seeds 3 [--tasks reacher hopper] [--algo ppo]
        [--out runs/presets] [--vmap-seeds]

Per task: the final checkpoint of each seed evaluated over `--episodes` episodes; the mean eval
reward over seeds with a 95% percentile-bootstrap interval, the success rate over all episodes
with a Wilson interval (where the task reports success), the expert's mean return over the
same number of episodes, and the training wall time per seed (compilation included). Runs are
resumed when the table is run again; each task's row goes to OUT/results.json as it finishes,
beside the rows of tasks run before, and the table printed holds them all.
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


def _train(env: str, algo: str, run_dir: Path, **fields) -> float:
    """Train (or resume) the run in `run_dir` with its task's preset; its wall time in s."""
    train_or_resume(presets.apply(TrainArgs(env=env, algo=algo, run_dir=run_dir, video=False,
                                            progress=False, **fields), {"algo"}))
    return float(read_metrics(run_dir / "metrics.csv")[-1]["wall_time_s"])


def _train_seeds(env: str, algo: str, seeds: int, out: Path,
                 vmap: bool) -> list[tuple[Path, int, float]]:
    """(run dir, seed index in it, wall s per seed) of every seed, trained (or resumed)."""
    out = out / env if algo == "ppo" else out / f"{env}-{algo}"
    if vmap:  # one program for all seeds: one compile, the seeds share the cores
        run_dir = out / f"seeds-{seeds}"
        wall = _train(env, algo, run_dir, num_seeds=seeds) / seeds
        return [(run_dir, i, wall) for i in range(seeds)]
    return [(out / f"seed-{seed}", 0, _train(env, algo, out / f"seed-{seed}", seed=seed))
            for seed in range(seeds)]


def run_task(env: str, seeds: int, episodes: int, out: Path, vmap: bool = False,
             algo: str = "ppo") -> dict:
    rewards, successes, walls = [], [], []
    for i, (run_dir, seed_index, wall) in enumerate(_train_seeds(env, algo, seeds, out, vmap)):
        metrics = evaluate_checkpoint(run_dir, num_episodes=episodes, seed=10_000 + i,
                                      seed_index=seed_index)
        rewards.append(metrics["eval/episode_reward"])
        if "eval/success_rate" in metrics:
            successes.append(metrics["eval/success_rate"])
        walls.append(wall)
    steps = int(read_metrics(run_dir / "metrics.csv")[-1]["env_steps"])
    row = {"env": env, "algo": algo, "rewards": rewards, "reward_ci": bootstrap_mean(rewards),
           "walls": walls, "env_steps": steps, "successes": successes, "vmapped_seeds": vmap}
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


def _num(x: float) -> str:
    """A return to the precision it is read at: 936, 5.72."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def print_table(rows: list[dict], episodes: int) -> None:
    print("| task | algorithm | env steps | eval reward, mean [95% CI] (per seed) | "
          "success [95% CI] | expert return | / expert | wall s per seed |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        mean = float(np.mean(row["rewards"]))
        per_seed = " / ".join(_num(r) for r in row["rewards"])
        low, high = row["reward_ci"]
        expert = row["expert"]
        ratio = f"{mean / expert:.2f}" if expert else "-"
        print(f"| {row['env']} | {row.get('algo', 'ppo')} | {row['env_steps']:,} | "
              f"{_num(mean)} [{_num(low)}, {_num(high)}] ({per_seed}) | {_cell(row, episodes)} | "
              f"{_num(expert) if expert is not None else '-'} | {ratio} | "
              f"{np.mean(row['walls']):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=envs.names())
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--algo", default="ppo", help="the presets of this algorithm")
    parser.add_argument("--episodes", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("runs/presets"))
    parser.add_argument("--vmap-seeds", action="store_true",
                        help="train a task's seeds in one program (`--num-seeds`); the wall "
                             "time per seed is then the run's divided by the seeds")
    args = parser.parse_args()
    results = args.out / "results.json"
    earlier = json.loads(results.read_text()) if results.exists() else []
    rows = {(row["env"], row.get("algo", "ppo")): row for row in earlier}
    for env in args.tasks:
        rows[env, args.algo] = run_task(env, args.seeds, args.episodes, args.out,
                                        args.vmap_seeds, args.algo)
        args.out.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(list(rows.values()), indent=2, default=float))
    print_table(list(rows.values()), args.episodes)


if __name__ == "__main__":
    main()
