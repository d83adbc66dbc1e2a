"""Differentiable-physics trainers vs PPO, same env, same machine, one run.

Records one scripted-expert demonstration of each env, then trains, one after the other and
each from scratch: ILD from that single demonstration (no reward), SHAC and APG through the
simulator from the task reward plus dense shaping terms (`SHAPING`; evaluated on the task
reward alone, from the task's own initial states), and PPO from the task reward. Every run
evaluates often; the table reports each one's final return and its wall time (compilation
included, from the run's metrics.csv) to 90% of the expert's return: the scripted expert's
mean over 256 episodes from the same random initial states the learners are evaluated from.

    python experiments/bench/diffsim_vs_ppo.py --envs pendulum-swingup cartpole-swingup
    python experiments/bench/diffsim_vs_ppo.py --algos shac ppo --num-seeds 3

On hopper (contacts) the expert is a trained PPO run (`--hopper-expert RUN`, trained as in
`experiments/diffsim/ild_table.py`), ILD runs that script's hopper recipe, PPO the expert's own
configuration from scratch, and every return is over the first 256 steps of an episode (the
demonstration ILD imitates):

    python experiments/bench/diffsim_vs_ppo.py --envs hopper --algos ild ppo \
        --hopper-expert runs/hopper-ppo --steps ild=400000 ppo=8000000
"""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from robojax.envs import make as make_env

from robojax.algos import apg, ild, ppo, shac
from robojax.data.collect import collect, collect_to_file
from robojax.io.metrics import read_metrics
from robojax.runs import run_controller
from robojax.train import TrainArgs, train_or_resume

sys.path.insert(0, str(Path(__file__).parents[1] / "diffsim"))
from ild_table import TASKS, hopper_ppo_config  # noqa: E402 - the hopper recipes

STEPS = {"ild": 2_000_000, "shac": 6_000_000, "apg": 2_000_000, "ppo": 10_000_000}

SHAPING = {
    "pendulum-swingup": {"swing": 1.0, "energy": 1.0, "balance": 1.0},
    "cartpole-swingup": {"energy": 1.0, "balance": 1.0},
}
"""Dense reward terms the reward-gradient learners (SHAC, APG) train with: the swing-ups' task
rewards give a short differentiable window nothing to follow (RESULTS.md, section 5). Their
evaluations use the task's reward (`eval_env_config`), so every row is scored alike."""

GRADIENTS = {"cartpole-swingup": {"contact_grad_scale": 0.1, "step_grad_clip": 1.0}}
"""Gradient hygiene per env: the cart's rail limit is a stiff constraint whose gradient
explodes; keep a tenth of it (cut whole, a cart pinned at the rail end never learns to leave)
and clip each env's state gradient per step (RESULTS.md, section 5)."""

TRAINING_EPISODES = {"cartpole-swingup": {"random_start": 0.5, "episode_length": 250}}
"""Env-config overrides for the reward-gradient learners' training episodes. A cartpole
swing-up episode holds one catch in 1000 steps, too few for SHAC to learn a reliable one:
250-step episodes, half of them from a random state, put catches (and rail ends to leave)
in every batch. Evaluations keep the task's own episodes (RESULTS.md, section 5)."""


def shaped(env: str, args: TrainArgs) -> TrainArgs:
    """`args` of a reward-gradient learner trained on `env`'s shaping terms, evaluated on its
    task reward."""
    terms = SHAPING.get(env)
    if not terms:
        return args
    cfg = getattr(args, args.algo)
    cfg = dataclasses.replace(cfg, gradients=dataclasses.replace(cfg.gradients,
                                                                 **GRADIENTS.get(env, {})))
    training = TRAINING_EPISODES.get(env, {})
    task = make_env(env).config  # the task's own episodes, for the evaluations
    return dataclasses.replace(
        args, **{args.algo: cfg},
        env_config=(f"reward_scales={terms!r}", *(f"{k}={v!r}" for k, v in training.items())),
        eval_env_config=(f"reward_scales={ {k: 0.0 for k in terms}!r}",
                         *(f"{k}={getattr(task, k)!r}" for k in training)))


def configs(demo: Path, steps: dict, ppo_envs: int) -> dict:
    return {
        "ild": TrainArgs(algo="ild", ild=ild.ILDConfig(demo=demo, num_timesteps=steps["ild"],
                                                      num_evals=20)),
        "shac": TrainArgs(algo="shac", shac=shac.SHACConfig(num_timesteps=steps["shac"],
                                                            num_evals=20)),
        "apg": TrainArgs(algo="apg", apg=apg.APGConfig(num_timesteps=steps["apg"], num_evals=20)),
        "ppo": TrainArgs(algo="ppo", ppo=ppo.PPOConfig(num_timesteps=steps["ppo"], num_evals=20,
                                                       discount=0.99, num_envs=ppo_envs)),
    }


HOPPER_STEPS = 256
"""Hopper's returns are over an episode's first steps, the span of the imitated demo."""


def hopper_configs(demo: Path, steps: dict) -> dict:
    """ILD with the ILD table's hopper recipe; PPO with the hopper expert's own configuration,
    evaluated over `HOPPER_STEPS`-step episodes."""
    task = TASKS["hopper"]
    ild_cfg = ild.ILDConfig(demo=demo, num_timesteps=steps["ild"], num_evals=20,
                            episode_length=task.episode_length, **task.ild)
    ppo_cfg = dataclasses.replace(hopper_ppo_config(), num_timesteps=steps["ppo"], num_evals=20)
    return {"ild": TrainArgs(algo="ild", ild=ild_cfg),
            "ppo": TrainArgs(algo="ppo", ppo=ppo_cfg,
                             eval_env_config=(f"episode_length={HOPPER_STEPS}",))}


def time_to(rows: list[dict], threshold: float) -> tuple[float | None, int | None]:
    for row in rows:
        if row["eval/episode_reward"] >= threshold:
            return row["wall_time_s"], int(row["env_steps"])
    return None, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/diffsim-vs-ppo"))
    parser.add_argument("--envs", nargs="*", default=["pendulum-swingup", "cartpole-swingup"])
    parser.add_argument("--algos", nargs="*", default=list(STEPS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-seeds", type=int, default=1,
                        help="seeds trained in one program per algo; the curve is their mean")
    parser.add_argument("--ppo-num-envs", type=int, default=ppo.PPOConfig.num_envs,
                        help="PPO's env batch (more on a GPU)")
    parser.add_argument("--steps", nargs="*", default=[], metavar="ALGO=N",
                        help="env-step budgets other than the defaults, e.g. ild=1000000")
    parser.add_argument("--hopper-expert", type=Path, default=None,
                        help="run directory of the trained hopper policy (PPO) ILD imitates")
    args = parser.parse_args()
    budgets = {**STEPS, **{k: int(v) for k, v in (s.split("=") for s in args.steps)}}
    results = {}
    for env in args.envs:
        source, config = "solver", None
        if env == "hopper":
            if args.hopper_expert is None or not args.algos or set(args.algos) - {"ild", "ppo"}:
                parser.error("hopper runs --algos ild ppo and needs --hopper-expert RUN (a "
                             "trained hopper policy: see experiments/diffsim/ild_table.py).")
            source, config = str(args.hopper_expert), {"episode_length": HOPPER_STEPS}
        demo = args.out / env / "demo.hdf5"
        policy = source if source == "solver" else run_controller(source, env)
        if not demo.exists():
            collect_to_file(env, policy, 1, demo, source_name=source)
        many, _ = collect(env, policy, 256, seed=1, env_config=config)
        expert = float(many.returns().mean())
        for algo in args.algos:
            seeds = f"x{args.num_seeds}" if args.num_seeds > 1 else ""
            run = args.out / env / f"{algo}-{args.seed}{seeds}"
            base = (hopper_configs(demo, budgets) if env == "hopper" else
                    configs(demo, budgets, args.ppo_num_envs))[algo]
            if algo in ("shac", "apg"):
                base = shaped(env, base)
            train_or_resume(dataclasses.replace(base, env=env, seed=args.seed, run_dir=run,
                                                num_seeds=args.num_seeds, video=False))
            rows = read_metrics(run / "metrics.csv")
            seconds, steps = time_to(rows, 0.9 * expert)
            results[f"{env} {algo}"] = {
                "expert": expert, "final": rows[-1]["eval/episode_reward"],
                "best": max(r["eval/episode_reward"] for r in rows),
                "seconds_to_90": seconds, "steps_to_90": steps,
                "total_s": rows[-1]["wall_time_s"], "env_steps": int(rows[-1]["env_steps"])}
            (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print("| env | algo | expert mean | final return | best eval | env steps | wall s | "
          "wall s to 90% expert | env steps to 90% |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        env, algo = name.split()
        to90 = "not reached" if r["seconds_to_90"] is None else f"{r['seconds_to_90']:.0f}"
        steps90 = "—" if r["steps_to_90"] is None else f"{r['steps_to_90']:,}"
        print(f"| {env} | {algo} | {r['expert']:.0f} | {r['final']:.0f} | {r['best']:.0f} | "
              f"{r['env_steps']:,} | {r['total_s']:.0f} | {to90} | {steps90} |")


if __name__ == "__main__":
    main()
