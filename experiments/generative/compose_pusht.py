"""Composition on `push-t`: two diffusion U-Nets cloned from different scripted-expert demos
(demo files collected with seeds 0 and 1), mixed at every sampling step. Pair i is clone i of
each demo file (training seed i). The weight is picked by `robojax compose`'s search on one set
of episodes, then the composition at that weight and both parts alone are evaluated on fresh
episodes (another seed), so the pick is not scored on the episodes that chose it.

    python experiments/generative/compose_pusht.py --pairs 3 --grad-steps 2000
"""

import argparse
import json
from pathlib import Path

from steer_detour import pooled

from robojax import cli
from robojax.runs import load_run
from robojax.steer import _evaluate_each, composed_controller, search

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def clone(out: Path, demo_seed: int, seed: int, demos: int = 200, grad_steps: int = 2000,
          family: str = "diffusion") -> Path:
    """The U-Net clone (training seed `seed`) of `demos` scripted-expert demos collected with
    `demo_seed` and their mirror images, in `out`; collected and trained unless already there."""
    demo_file = out / f"push-t_demos_{demos}_seed{demo_seed}.hdf5"
    if not demo_file.exists():
        cli.main(["collect", "--env", "push-t", "--source", "solver", "--episodes",
                  str(demos), "--seed", str(demo_seed), "--only-success", "--out",
                  str(demo_file)])
    run_dir = out / f"{family}-demos{demo_seed}-{seed}"
    if not (run_dir / "checkpoints").exists():
        cli.main(["train", "--algo", "bc", "--policy", family, "--env", "push-t",
                  "--dataset", str(demo_file), "--seed", str(seed), "--run-dir", str(run_dir),
                  "--bc.num-grad-steps", str(grad_steps), "--bc.num-evals", "1",
                  "--bc.mirror", "--no-video", "--no-progress"])
    return run_dir


def _each(rows: list[dict]) -> str:
    return " / ".join(f"{row['success_rate']:.3f}" for row in rows)


def held_out(first: Path, second: Path, weight: float, episodes: int, seed: int) -> list[dict]:
    """The composition at `weight`, the first run alone and the second alone, on the same
    fresh episodes."""
    a, b = load_run(first), load_run(second)
    controllers = [composed_controller(a, b, weight), a.algo.controller(a.cfg, a.state),
                   b.algo.controller(b.cfg, b.state)]
    return _evaluate_each(a, controllers, episodes, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--demos", type=int, default=200)
    parser.add_argument("--grad-steps", type=int, default=2000)
    parser.add_argument("--search-episodes", type=int, default=256)
    parser.add_argument("--episodes", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path("runs/compose-pusht"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for i in range(args.pairs):
        first, second = (clone(args.out, demo_seed, i, args.demos, args.grad_steps)
                         for demo_seed in (0, 1))
        found = search(first, second, WEIGHTS, num_episodes=args.search_episodes, seed=1)
        composed, alone_first, alone_second = held_out(first, second, found["best_weight"],
                                                       args.episodes, seed=20_000 + i)
        results.append({"search": found, "composed": composed, "first": alone_first,
                        "second": alone_second})
        (args.out / "compose.json").write_text(json.dumps(results, indent=1))
    n = args.episodes
    print(f"\n| policy | success [Wilson 95% CI], {len(results)} x {n} fresh episodes | "
          "per pair |\n|---|---|---|")
    for name, key in (("clone of demos 0", "first"), ("clone of demos 1", "second"),
                      ("composed at the searched weight", "composed")):
        rows = [r[key] for r in results]
        print(f"| {name} | {pooled(rows, n)} | {_each(rows)} |")
    better = [max(r["first"], r["second"], key=lambda row: row["success_rate"])
              for r in results]
    print(f"| the better part of each pair | {pooled(better, n)} | {_each(better)} |")
    print(f"searched weights: {[r['search']['best_weight'] for r in results]}")


if __name__ == "__main__":
    main()
