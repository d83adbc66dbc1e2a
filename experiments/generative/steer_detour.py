"""Steering the weak `detour` clones of `finetune_detour.py` at test time, without training the
policies: value-guided sampling (a Q fitted on each clone's own rollouts picks among 1, 4 or 16
candidate chunks) and composition (two clones of one family, trained with different seeds,
mixed at every sampling step, the weight picked by an evaluation search).

Q learns the sparse success reward (no distance shaping). Every row of one clone is evaluated on
the same episodes; success gets a Wilson 95% interval over all episodes of all clones.

    python experiments/generative/finetune_detour.py --seeds 3   # the clones
    python experiments/generative/steer_detour.py --seeds 3
"""

import argparse
import json
from pathlib import Path

from robojax.stats import wilson
from robojax.steer import search, value_guided_search

SUCCESS_ONLY = {"reward_scales": {"progress": 0.0}}


def pooled(rows: list[dict], episodes: int) -> str:
    won = sum(round(r["success_rate"] * episodes) for r in rows)
    n = episodes * len(rows)
    low, high = wilson(won, n)
    return f"{won / n:.3f} [{low:.3f}, {high:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=512)
    parser.add_argument("--families", nargs="+", default=["diffusion", "flow"])
    parser.add_argument("--runs", type=Path, default=Path("runs/finetune-detour"))
    args = parser.parse_args()
    results = {"vgps": {}, "compose": {}}
    for family in args.families:
        clones = [args.runs / f"bc-{family}-{seed}" for seed in range(args.seeds)]
        results["vgps"][family] = [
            value_guided_search(run, num_candidates=(1, 4, 16), num_episodes=args.episodes,
                                env_config=SUCCESS_ONLY) for run in clones]
        results["compose"][family] = [
            search(clones[i], clones[(i + 1) % len(clones)], (0.0, 0.25, 0.5, 0.75, 1.0),
                   num_episodes=args.episodes) for i in range(len(clones))]
    (args.runs / "steer.json").write_text(json.dumps(results, indent=1))
    print("\n| policy | success [Wilson 95% CI] |\n|---|---|")
    for family in args.families:
        runs = results["vgps"][family]
        for i, n in enumerate((1, 4, 16)):
            name = f"{family} clone" + (f" + V-GPS, {n} candidates" if n > 1 else " alone")
            print(f"| {name} | {pooled([r['rows'][i] for r in runs], args.episodes)} |")
        pairs = results["compose"][family]
        weights = [w["weight"] for w in pairs[0]["weights"]]
        for j, w in enumerate(weights):
            print(f"| {family} pair composed at weight {w:.2f} | "
                  f"{pooled([p['weights'][j] for p in pairs], args.episodes)} |")
        best = [max(p["weights"], key=lambda r: r["success_rate"]) for p in pairs]
        better_part = [max((p["weights"][0], p["weights"][-1]), key=lambda r: r["success_rate"])
                       for p in pairs]
        print(f"| {family} pair, best weight per pair ({[b['weight'] for b in best]}) | "
              f"{pooled(best, args.episodes)} |")
        print(f"| {family} pair, the better part alone | "
              f"{pooled(better_part, args.episodes)} |")


if __name__ == "__main__":
    main()
