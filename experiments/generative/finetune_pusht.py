"""RL fine-tuning on `push-t` from U-Net clones: success before and after, on the
same episodes, with env steps and wall time to a periodic evaluation >= `--threshold`.

The clones are those of `compose_pusht.py` (200 scripted-expert demos and their mirror images,
2,000 gradient steps; clone i trained with seed i): diffusion U-Nets (DDIM-10) for residual RL
and DPPO, flow U-Nets for ReinFlow, trained here first where `--clones` lacks them.
Fine-tuning uses the task's dense reward (keypoint progress and the success bonus; the episode
ends on success) unless the flags after `--` say otherwise (`--env-config sparse_reward=True`:
success alone). Success gets a Wilson 95% interval over all episodes of all seeds.

    python experiments/generative/finetune_pusht.py --seeds 3 --algo residual \
        --timesteps 655360 -- --residual.residual-scale 0.1 --residual.init-log-std -1.0
"""

import argparse
import json
from pathlib import Path

from compose_pusht import clone
from finetune_detour import robojax, time_to

from robojax.evaluate import evaluate_checkpoint
from robojax.stats import wilson

FAMILY = {"residual": "diffusion", "dppo": "diffusion", "reinflow": "flow"}  # what each tunes


def success(run_dir: Path, episodes: int, seed: int) -> int:
    metrics = evaluate_checkpoint(run_dir, num_episodes=episodes, seed=seed)
    return round(metrics["eval/success_rate"] * episodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--algo", default="residual", choices=list(FAMILY))
    parser.add_argument("--timesteps", type=int, default=655_360)
    parser.add_argument("--episodes", type=int, default=512)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--clones", type=Path, default=Path("runs/compose-pusht"),
                        help="where the clones are (or are trained)")
    parser.add_argument("--out", type=Path, default=Path("runs/finetune-pusht"))
    parser.add_argument("flags", nargs="*", help="after --: more `robojax train` flags")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in range(args.seeds):
        base = clone(args.clones, 0, seed, family=FAMILY[args.algo])
        tuned = args.out / f"{args.algo}-{seed}"
        seconds = robojax("train", "--algo", args.algo, "--env", "push-t", "--init-from",
                          str(base), "--seed", str(seed), "--run-dir", str(tuned),
                          "--num-timesteps", str(args.timesteps),
                          f"--{args.algo}.num-evals", "8", *args.flags)
        row = {"clone": success(base, args.episodes, 20_000 + seed),
               "tuned": success(tuned, args.episodes, 20_000 + seed),
               "seconds": seconds, "reached": time_to(tuned, args.threshold)}
        rows.append(row)
        print(json.dumps({f"{args.algo}-{seed}": row}), flush=True)
        (args.out / f"{args.algo}.json").write_text(json.dumps(rows, indent=1))
    n = args.episodes * len(rows)
    print(f"\n| policy | success [Wilson 95% CI], {len(rows)} x {args.episodes} episodes | "
          f"per seed |\n|---|---|---|")
    for stage, name in (("clone", f"{FAMILY[args.algo]} clone"), ("tuned", f"clone + {args.algo}")):
        won = sum(r[stage] for r in rows)
        low, high = wilson(won, n)
        print(f"| {name} | {won / n:.3f} [{low:.3f}, {high:.3f}] | "
              f"{' / '.join(f'{r[stage] / args.episodes:.3f}' for r in rows)} |")
    for seed, row in enumerate(rows):
        reached = row["reached"]
        print(f"seed {seed}: {row['seconds']:.0f} s; to {args.threshold}: "
              + (f"{reached[0]:,.0f} env steps, {reached[1]:.0f} s" if reached else "not reached"))


if __name__ == "__main__":
    main()
