"""HL-Gauss vs MSE critics in SAC, same seeds, one dense and one sparse task.

Each (task, critic) pair trains `--seeds` seeds vmapped in one program (`--num-seeds`), then
every seed's final policy is evaluated over `--episodes` episodes. Prints final returns per
seed with a bootstrap 95% interval of their mean, and the env steps at which the seed-mean
eval curve first reaches `--fraction` of the better critic's final mean.

    python experiments/bench/hl_gauss_vs_mse.py --seeds 3
"""

import argparse
import tempfile
import time
from pathlib import Path

from _stats import bootstrap_mean, overlap

from robojax.algos.sac import SACConfig
from robojax.evaluate import evaluate_run
from robojax.io.metrics import read_metrics
from robojax.runs import TrainArgs
from robojax.train import train

TASKS = {"cartpole-swingup": "dense", "pendulum-swingup": "sparse"}
CONFIG = SACConfig(num_envs=16, num_timesteps=80_000, batch_size=128, grad_updates_per_step=8,
                   learning_starts=2000, policy_hidden_sizes=(64, 64),
                   critic_hidden_sizes=(64, 64), num_evals=8, num_eval_envs=16)


def run(task: str, critic: str, seeds: int, episodes: int, out: Path) -> dict:
    run_dir = out / f"{task}-{critic}"
    start = time.perf_counter()
    cfg = SACConfig(**{**CONFIG.__dict__, "critic": critic})
    train(TrainArgs(algo="sac", env=task, num_seeds=seeds, run_dir=run_dir, sac=cfg,
                    video=False, progress=False))
    wall = time.perf_counter() - start
    result = evaluate_run(run_dir, num_episodes=episodes, video=False)
    finals = [s["eval/episode_reward"] for s in result.get("seeds", [result])]
    curve = [(r["env_steps"], r["eval/episode_reward"]) for r in read_metrics(
        run_dir / "metrics.csv")]
    return {"finals": finals, "curve": curve, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--fraction", type=float, default=0.8)
    args = parser.parse_args()
    print(f"# HL-Gauss vs MSE critics (SAC), {args.seeds} seeds, {time.strftime('%Y-%m-%d')}; "
          f"config {CONFIG}")
    print("| task | reward | critic | final return per seed | mean [95% CI] | env steps to "
          f"{args.fraction:.0%} of best | train wall s |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for task, kind in TASKS.items():
            results = {c: run(task, c, args.seeds, args.episodes, Path(tmp))
                       for c in ("mse", "hl_gauss")}
            best = max(sum(r["finals"]) / len(r["finals"]) for r in results.values())
            intervals = {}
            for critic, r in results.items():
                mean = sum(r["finals"]) / len(r["finals"])
                intervals[critic] = bootstrap_mean(r["finals"])
                lo, hi = intervals[critic]
                reach = next((s for s, v in r["curve"] if v >= args.fraction * best), None)
                print(f"| {task} | {kind} | {critic} | "
                      f"{' / '.join(f'{v:.0f}' for v in r['finals'])} | {mean:.0f} "
                      f"[{lo:.0f}, {hi:.0f}] | {reach if reach is not None else 'not reached'}"
                      f" | {r['wall_s']:.0f} |", flush=True)
            verdict = ("the intervals overlap: not separated" if overlap(*intervals.values())
                       else "separated")
            print(f"| {task} | | | | {verdict} | | |", flush=True)


if __name__ == "__main__":
    main()
