"""The driver shared by the behaviour-cloning result tables: record scripted-expert demos once,
train each row's policy family for several seeds from them, evaluate every seed's final EMA
policy in parallel episodes, and print a markdown table.

A run directory that already holds a finished checkpoint is reused, not retrained, so a table can be
trained in one command (or several side by side, `--train-only --families X`) and evaluated in
the next. `--vmap-seeds` trains a family's seeds in one compiled program (`--num-seeds`), which
keeps an accelerator busy where one small network would not."""

import argparse
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
from robojax.envs import parse_overrides

from robojax.algos import bc
from robojax.data.collect import collect_to_file
from robojax.evaluate import evaluate_checkpoint
from robojax.io import checkpoint
from robojax.io.metrics import read_metrics
from robojax.train import TrainArgs, train


@dataclasses.dataclass(frozen=True)
class Row:
    label: str
    family: str
    overrides: dict = dataclasses.field(default_factory=dict)  # BCConfig fields
    inference_steps: int | None = None  # at evaluation; None: the family's default
    evaluation: dict = dataclasses.field(default_factory=dict)  # BCConfig fields, eval only
    eval_chunks: dict = dataclasses.field(default_factory=dict)  # ChunkConfig fields, eval
    # only, on top of the chunking the row trained with (e.g. {"n_action_steps": 4})
    run: str | None = None  # run directory stem; None: the family. Rows of one family whose
    # overrides differ need different stems, rows that share a stem share its checkpoints

    @property
    def stem(self) -> str:
        return self.run or self.family


def parse_args(doc: str, *, out: str, demos: int, grad_steps: int,
               mirror: bool = False) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(out))
    parser.add_argument("--demos", type=int, default=demos)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=512)
    parser.add_argument("--grad-steps", type=int, default=grad_steps)
    parser.add_argument("--families", nargs="*", default=None,
                        help="only the rows of these families or run stems (Row.run)")
    parser.add_argument("--only-seeds", nargs="*", type=int, default=None,
                        help="train just these of the --seeds seeds (with --train-only), so "
                             "that seeds can train side by side in separate processes")
    parser.add_argument("--action-noise", type=float, default=0.0,
                        help="std of the noise the expert's executed actions get while its "
                             "clean actions are recorded (DART-style recoveries)")
    parser.add_argument("--env-config", nargs="*", default=[], metavar="KEY=VALUE",
                        help="env config overrides for the demos and every run")
    parser.add_argument("--demo-env-config", nargs="*", default=[], metavar="KEY=VALUE",
                        help="env config overrides for the demos only, on top of "
                             "--env-config (e.g. block_range=0.2: demos from a wider start "
                             "region than the evaluation's)")
    parser.add_argument("--n-obs-steps", type=int, default=None,
                        help="observations the policies see (default: ChunkConfig's)")
    parser.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=mirror,
                        help="train on the demos and their mirror images (--bc.mirror; the "
                             "env must declare a reflection)")
    parser.add_argument("--num-evals", type=int, default=1,
                        help="evaluations (and checkpoints) during training")
    parser.add_argument("--vmap-seeds", action="store_true",
                        help="train a family's seeds in one program, one run directory")
    parser.add_argument("--train-only", action="store_true",
                        help="train (or reuse) the runs, evaluate nothing")
    parser.add_argument("--collect-only", action="store_true",
                        help="record the demos (unless present) and stop, so that trainings "
                             "started side by side next all read one file")
    args = parser.parse_args()
    if args.only_seeds is not None:
        if not args.train_only or args.vmap_seeds:
            parser.error("--only-seeds trains single seeds in their own runs: add --train-only "
                         "and drop --vmap-seeds, then evaluate all seeds in a call without it")
        if outside := [s for s in args.only_seeds if not 0 <= s < args.seeds]:
            parser.error(f"--only-seeds {outside} outside the {args.seeds} seeds of --seeds "
                         f"(0..{args.seeds - 1})")
    return args


def _config(family: str, overrides: dict, args: argparse.Namespace,
            dataset: Path | None = None) -> bc.BCConfig:
    """The behaviour-cloning config a row trains with."""
    cfg = dataclasses.replace(bc.BCConfig(), policy=family, dataset=dataset,
                              num_grad_steps=args.grad_steps, num_evals=args.num_evals,
                              mirror=args.mirror, **overrides)
    if args.n_obs_steps is not None:
        cfg = dataclasses.replace(cfg, chunks=dataclasses.replace(
            cfg.chunks, n_obs_steps=args.n_obs_steps))
    return cfg


def _evaluation(row: Row, args: argparse.Namespace) -> dict:
    """The config fields a row's evaluation replaces."""
    if not row.eval_chunks:
        return row.evaluation
    chunks = _config(row.family, row.overrides, args).chunks
    return {**row.evaluation, "chunks": dataclasses.replace(chunks, **row.eval_chunks)}


def _train(env: str, family: str, overrides: dict, args: argparse.Namespace, run_dir: Path,
           dataset: Path, seed: int, num_seeds: int) -> None:
    if checkpoint.steps(run_dir / "checkpoints"):  # finished checkpoints only
        print(f"reusing {run_dir}", flush=True)
        return
    cfg = _config(family, overrides, args, dataset)
    train(TrainArgs(algo="bc", env=env, run_dir=run_dir, seed=seed, num_seeds=num_seeds,
                    bc=cfg, env_config=tuple(args.env_config), video=seed == 0,
                    progress=False))


def _trained(run_dir: Path) -> tuple[int, float]:
    """(gradient steps, wall seconds) of a run's last logged evaluation."""
    last = read_metrics(run_dir / "metrics.csv")[-1]
    return int(last["grad_steps"]), float(last["wall_time_s"])


def _slug(override: str) -> str:
    """A file-name-safe form of a KEY=VALUE override (dict values carry braces and quotes)."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", override).strip("-")


def demos_path(env: str, args: argparse.Namespace) -> Path:
    """The demo file of these settings: demo count, action noise and env overrides in its name,
    so that tables with different demos never share one."""
    noise = f"_noise{args.action_noise:g}" if args.action_noise else ""
    overrides = "".join(f"_{_slug(item)}" for item in sorted(args.env_config))
    overrides += "".join(f"_demo-{_slug(item)}" for item in sorted(args.demo_env_config))
    return args.out / f"{env}_demos_{args.demos}{noise}{overrides}.hdf5"


def run(env: str, rows: list[Row], args: argparse.Namespace, columns: dict[str, str]) -> dict:
    """Train and evaluate every row; `columns` maps a column title to the eval metric it
    averages (besides the success rate). Writes results.json and prints the table."""
    dataset = demos_path(env, args)
    if not dataset.exists():
        collect_to_file(env, "solver", args.demos, dataset, only_success=True,
                        action_noise=args.action_noise,
                        env_config=parse_overrides([*args.env_config,
                                                    *args.demo_env_config]))
    if args.collect_only:
        print(f"demos: {dataset}", flush=True)
        return {}
    results = {}
    for row in rows:
        if args.families and not {row.family, row.stem} & set(args.families):
            continue
        if args.vmap_seeds:  # (run directory, seed index) of each seed
            runs = [(args.out / f"{row.stem}-seeds{args.seeds}", s) for s in range(args.seeds)]
            _train(env, row.family, row.overrides, args, runs[0][0], dataset, 0, args.seeds)
        else:
            runs = [(args.out / f"{row.stem}-{s}", 0) for s in range(args.seeds)]
            for seed, (run_dir, _) in enumerate(runs):
                if args.only_seeds is not None and seed not in args.only_seeds:
                    continue
                _train(env, row.family, row.overrides, args, run_dir, dataset, seed, 1)
        if args.train_only:
            continue
        per_seed = [evaluate_checkpoint(run_dir, num_episodes=args.episodes,
                                        seed=10_000 + seed, seed_index=index,
                                        inference_steps=row.inference_steps,
                                        **_evaluation(row, args))
                    for seed, (run_dir, index) in enumerate(runs)]
        grad_steps, seconds = zip(*(_trained(run_dir) for run_dir, _ in runs), strict=True)
        results[row.label] = {
            "success": [m["eval/success_rate"] for m in per_seed],
            **{title: [m[key] for m in per_seed] for title, key in columns.items()},
            "grad_steps": list(grad_steps), "train_seconds": list(seconds)}
        success = results[row.label]["success"]
        print(f"{row.label}: success {np.mean(success):.3f} {np.round(success, 3).tolist()}",
              flush=True)
    if args.train_only:
        return results
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    titles = list(columns)
    where = " (all seeds, one program)" if args.vmap_seeds else " per seed"
    print(f"\n| policy | success (mean of {args.seeds} seeds x {args.episodes} episodes) | "
          f"per seed | {' | '.join(titles)} | grad steps | train s{where} |\n"
          f"|---|---|---|{'---|' * len(titles)}---|---|")
    for label, r in results.items():
        print(f"| {label} | {np.mean(r['success']):.3f} | "
              f"{' / '.join(f'{s:.3f}' for s in r['success'])} | "
              + "".join(f"{np.mean(r[t]):.3f} | " for t in titles)
              + f"{min(r['grad_steps']):,} | {np.mean(r['train_seconds']):.0f} |")
    return results
