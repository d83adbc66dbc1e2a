"""Several runs' success against env steps in one figure: each run's periodic evaluations as
a line (the seed mean), and with `--sampled` the kept checkpoints of runs that can act either
way scored again with sampled actions (`checkpoint_success.py`) as open markers with their
pooled Wilson 95% intervals; `--scores` adds those a `checkpoint_success.py --out` file holds
(run from the same directory), so checkpoints the run no longer keeps are drawn too. A second
panel holds the human's intervention rate of the runs that log one.

    python experiments/bench/plot_success.py HIL=runs/pusht-hil-trust/hil \
        RLPD=runs/pusht-rlpd/rlpd --sampled --episodes 64 --out experiments/bench/pusht-hil-rlpd.png
"""

import argparse
from pathlib import Path

import numpy as np
from _stats import pooled_success
from checkpoint_success import checkpoint_rates, read_scores
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from robojax.io.metrics import read_metrics
from robojax.runs import read_args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=RUN")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sampled", action="store_true",
                        help="also score each kept checkpoint with sampled actions")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--scores", type=Path, nargs="*", default=[],
                        help="checkpoint_success.py --out files: their sampled-action scores")
    parser.add_argument("--title", default="")
    parser.add_argument("--target", type=float, help="draw a success target, e.g. 0.9")
    args = parser.parse_args()
    runs = []
    for spec in args.runs:
        label, sep, run = spec.partition("=")
        if not sep:
            parser.error(f"{spec!r}: name each run as LABEL=RUN, e.g. HIL=runs/pusht-hil/hil")
        runs.append((label, Path(run)))

    sampled = [r for path in args.scores for r in read_scores(path) if r["deterministic"] is False]
    fig = Figure(figsize=(10, 4.6), layout="constrained")
    success_ax, rate_ax = fig.subplots(1, 2)
    for (label, run), color in zip(runs, ("tab:blue", "tab:orange", "tab:green", "tab:red",
                                          "tab:purple", "tab:brown"), strict=False):
        rows = [r for r in read_metrics(run / "metrics.csv") if "eval/success_rate" in r]
        steps = np.array([r["env_steps"] for r in rows], float)
        success_ax.plot(steps, [r["eval/success_rate"] for r in rows], marker="o", ms=3,
                        color=color, label=f"{label}, periodic evaluations")
        points = {r["env_steps"]: (r["success"], r["episodes"]) for r in sampled
                  if Path(r["run"]).resolve() == run.resolve()}
        if args.sampled and hasattr(read_args(run).algo_config(), "deterministic_eval"):
            points.update({steps: (rates, args.episodes) for _, steps, rates in checkpoint_rates(
                run, args.episodes, deterministic=False) if steps not in points})
        if points:
            steps = sorted(points)
            pooled = np.array([pooled_success(*points[s]) for s in steps])
            success_ax.errorbar(steps, pooled[:, 0], yerr=[pooled[:, 0] - pooled[:, 1],
                                                           pooled[:, 2] - pooled[:, 0]],
                                fmt="o", mfc="none", ms=7, capsize=2, color=color,
                                label=f"{label}, sampled actions (Wilson 95%)")
        rates = [(r["env_steps"], r["hil/intervention_rate"]) for r in rows
                 if np.isfinite(r.get("hil/intervention_rate", np.nan))]
        if rates:
            rate_ax.plot(*zip(*rates, strict=True), marker=".", color=color, label=label)
    success_ax.set_ylabel("success rate (seed mean)")
    success_ax.set_ylim(0, 1)
    if args.target is not None:
        success_ax.axhline(args.target, color="gray", ls="--", lw=1, label=f"{args.target:g}")
    success_ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    rate_ax.set_ylabel("intervention rate")
    rate_ax.set_ylim(0, None)
    rate_ax.legend(fontsize=8)
    for ax in (success_ax, rate_ax):
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    if args.title:
        fig.suptitle(args.title)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
