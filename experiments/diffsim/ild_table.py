"""ILD from ONE demonstration vs behaviour cloning from the same demonstration, several seeds.

For each task: record one expert episode (the scripted solver, or a trained checkpoint for
hopper), train ILD (`--algo ild`) and Gaussian behaviour cloning (`--algo bc`) from it for each
seed, and evaluate every final policy over `--episodes` parallel episodes of the evaluated
length. Two expert returns are reported: the demonstration's own (over the evaluated steps),
and the expert policy's mean over `--episodes` episodes from the same random initial states
the learners are evaluated from (a demonstration that starts near the goal scores above the
expert's average). Prints a markdown table.

    python experiments/diffsim/ild_table.py --seeds 3 --hopper-expert runs/hopper-ppo

Without `--hopper-expert`, hopper's expert is trained first with PPO (the command below,
about 30 minutes on 2 CPU cores):

    robojax train --algo ppo --env hopper --num-envs 1024 --num-timesteps 8000000 \
        --ppo.discount 0.99 --ppo.policy-hidden-sizes 128 128 --run-dir runs/hopper-ppo
"""

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from robojax import diffsim, presets
from robojax.algos import bc, ild, ppo
from robojax.data import demos as demo_data
from robojax.data.collect import collect, collect_to_file
from robojax.evaluate import evaluate_checkpoint
from robojax.runs import run_controller
from robojax.train import TrainArgs, train_or_resume


@dataclasses.dataclass(frozen=True)
class Task:
    env: str
    episode_length: int  # evaluated steps (and the demonstration's imitated horizon)
    num_timesteps: int  # ILD env steps per seed
    source: str = "solver"
    match_dims: tuple[int, ...] | None = None  # ILD's matched observation entries
    ild: dict = dataclasses.field(default_factory=dict)  # other ILDConfig fields for this task


TASKS = {
    "pendulum-swingup": Task("pendulum-swingup", 1000, 2_000_000),
    "cartpole-swingup": Task("cartpole-swingup", 1000, 2_000_000),
    "cartpole-balance": Task("cartpole-balance", 1000, 500_000),
    # The goal moves every episode: match velocity and offset to the goal, not position.
    "point-mass": Task("point-mass", 1000, 1_000_000, match_dims=(2, 3, 4, 5)),
    # Contacts: per-step clipping turns the gradient through a foot strike into a non-descent
    # direction, so cut it at contacts instead, in short segments, and restart fallen envs.
    # The cloning loss stays in the objective as an anchor (bc_weight).
    "hopper": Task("hopper", 256, 800_000, source="ppo", ild=dict(
        num_envs=64, rollout_length=16, restart_distance=1.0, learning_rate=1e-3,
        bc_steps=5_000, bc_weight=1.0, policy_hidden_sizes=(128, 128),
        gradients=diffsim.GradientConfig(contact_grad_scale=0.0, step_grad_clip=None))),
}


def hopper_ppo_config() -> ppo.PPOConfig:
    """The hopper expert's PPO configuration: hopper's training preset."""
    return ppo.PPOConfig(**presets.get("hopper", "ppo").config)


def hopper_expert(out: Path) -> Path:
    run_dir = out / "hopper-ppo"
    train_or_resume(TrainArgs(algo="ppo", env="hopper", run_dir=run_dir,
                              ppo=hopper_ppo_config(), video=False))
    return run_dir


def final_return(run_dir: Path, episodes: int, seed: int) -> float:
    metrics = evaluate_checkpoint(run_dir, num_episodes=episodes, seed=10_000 + seed)
    return metrics["eval/episode_reward"]


def _policy(source: str, env: str):
    """The scripted expert ("solver") or a trained run's policy."""
    return source if source == "solver" else run_controller(source, env)


def run_task(task: Task, source: str, args) -> dict:
    out = args.out / task.env
    demo = out / "demo.hdf5"
    if not demo.exists():
        collect_to_file(task.env, _policy(source, task.env), 1, demo, source_name=source)
    episode = demo_data.load(demo).episode(0)
    if len(episode["actions"]) < task.episode_length:
        raise SystemExit(f"the {task.env} demonstration ended after {len(episode['actions'])} "
                         f"steps, before the {task.episode_length} evaluated; record another.")
    expert = float(episode["rewards"][: task.episode_length].sum())
    many, _ = collect(task.env, _policy(source, task.env), args.episodes, seed=1)
    expert_mean = float(np.mean([many.episode(i)["rewards"][: task.episode_length].sum()
                                 for i in range(many.num_episodes)]))
    row = {"demo": expert, "expert": expert_mean, "ild": [], "bc": [], "ild_s": []}
    for seed in range(args.seeds):
        cfg = ild.ILDConfig(demo=demo, num_timesteps=task.num_timesteps,
                            match_dims=task.match_dims, episode_length=task.episode_length,
                            num_evals=4, **task.ild)
        run = out / f"ild-{seed}"
        train_or_resume(TrainArgs(algo="ild", env=task.env, seed=seed, run_dir=run, ild=cfg,
                                  video=False))
        row["ild"].append(final_return(run, args.episodes, seed))
        row["ild_s"].append(read_wall_time(run))
        bc_cfg = bc.BCConfig(policy="gaussian", dataset=demo, num_grad_steps=5_000,
                             episode_length=task.episode_length, num_evals=2)
        run = out / f"bc-{seed}"
        train_or_resume(TrainArgs(algo="bc", env=task.env, seed=seed, run_dir=run, bc=bc_cfg,
                                  video=False))
        row["bc"].append(final_return(run, args.episodes, seed))
    return row


def read_wall_time(run_dir: Path) -> float:
    from robojax.io.metrics import read_metrics

    return float(read_metrics(run_dir / "metrics.csv")[-1]["wall_time_s"])


def print_table(results: dict) -> None:
    print("| task | demo return | expert mean return | ILD (mean; per seed) | ILD / demo | "
          "ILD / expert mean | BC, same demo (mean; per seed) | BC / expert mean | "
          "ILD train s per seed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, row in results.items():
        ild_mean, bc_mean = np.mean(row["ild"]), np.mean(row["bc"])
        seeds = lambda xs: " / ".join(f"{x:.0f}" for x in xs)  # noqa: E731
        print(f"| {name} | {row['demo']:.0f} | {row['expert']:.0f} | {ild_mean:.0f} "
              f"({seeds(row['ild'])}) | {ild_mean / row['demo']:.2f} | "
              f"{ild_mean / row['expert']:.2f} | {bc_mean:.0f} ({seeds(row['bc'])}) | "
              f"{bc_mean / row['expert']:.2f} | {np.mean(row['ild_s']):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/ild-table"))
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=256)
    parser.add_argument("--hopper-expert", type=Path, default=None,
                        help="run directory of a trained hopper policy (PPO)")
    args = parser.parse_args()
    saved = args.out / "results.json"
    results = json.loads(saved.read_text()) if saved.exists() else {}
    for name in args.tasks:
        task = TASKS[name]
        source = task.source
        if source == "ppo":
            source = str(args.hopper_expert or hopper_expert(args.out))
        results[name] = run_task(task, source, args)
        saved.write_text(json.dumps(results, indent=1))
        print_table({name: results[name]})
    print_table(results)


if __name__ == "__main__":
    main()
