"""RLPD with scripted-expert demonstrations on a sparse-reward task, beside SAC without them,
behaviour cloning on the same demonstrations, and the human-in-the-loop learners (HIL: RLPD
with the simulated human taking over; HG-DAgger: BC on the demos and the human's takeovers),
over several seeds.

The sparse task (`--env-config sparse_reward=True`) pays 1 on success, where the episode ends.
Each learner trains `--seeds` seeds vmapped in one program; every seed's final policy is then
evaluated over `--episodes` episodes, and the off-policy learners' again acting the other way
(sampled actions beside the actor's mean, or the mean beside samples with `--rlpd
deterministic_eval=False`). Prints success rates with Wilson 95% intervals (pooled
over seeds and episodes), the env steps at which the seed-mean eval success first reaches 90%,
and wall times.

    python experiments/bench/rlpd_sparse.py --env pusher --seeds 3
    python experiments/bench/rlpd_sparse.py --learners hil rlpd dagger

The simulated human (HIL, HG-DAgger) reacts 3 steps late, acts with noise 0.1 and corrects at
most a quarter of the envs at once, and steps in when the policy's action strays from the
expert's (`--human` sets any other `HumanConfig` field, e.g. `--human rule=stall
progress_metric=reward/block_at_goal` to step in where the block stops nearing the goal); its
intervention rate at the end of training and the human-seconds it spent up to 90% success are
printed beside the rest.
"""

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from _stats import pooled_success

from robojax import envs
from robojax.algos.bc import BCConfig, HGDaggerConfig
from robojax.algos.sac import HILConfig, RLPDConfig
from robojax.data.collect import collect_to_file
from robojax.evaluate import evaluate_run
from robojax.hil.human import HumanConfig
from robojax.io.metrics import read_metrics
from robojax.runs import TrainArgs
from robojax.train import train

SPARSE = ("sparse_reward=True",)
RLPD = RLPDConfig(num_envs=16, batch_size=128, grad_updates_per_step=8,
                  critic_updates_per_actor=8, policy_hidden_sizes=(64, 64),
                  critic_hidden_sizes=(64, 64), num_evals=10, num_eval_envs=32)
HUMAN = HumanConfig(reaction_delay=3, action_noise=0.1, attention=RLPD.num_envs // 4)


def _run(args, name: str, run_dir: Path, **train_args) -> dict:
    start = time.perf_counter()
    train(TrainArgs(env=args.env, env_config=(*SPARSE, *args.env_config, *args.train_env_config),
                    eval_env_config=_task_values(args.env, [*SPARSE, *args.env_config],
                                                 args.train_env_config),
                    num_seeds=args.seeds, run_dir=run_dir, video=False, progress=False,
                    **train_args))
    wall = time.perf_counter() - start
    result = evaluate_run(run_dir, num_episodes=args.episodes, video=False)
    rates = [s["eval/success_rate"] for s in result.get("seeds", [result])]
    algo_config = train_args.get(train_args["algo"])
    other = None  # the same checkpoints acting the other way: sampled actions, or the mean
    if hasattr(algo_config, "deterministic_eval"):
        flipped = evaluate_run(run_dir, num_episodes=args.episodes, video=False,
                               deterministic=not algo_config.deterministic_eval)
        other = ("the mean action" if not algo_config.deterministic_eval else "sampled actions",
                 [s["eval/success_rate"] for s in flipped.get("seeds", [flipped])])
    rows = read_metrics(run_dir / "metrics.csv")
    unit = "env_steps" if "env_steps" in rows[-1] else "grad_steps"
    reach = next((r[unit] for r in rows if r.get("eval/success_rate", 0) >= 0.9), None)
    first = next((r for r in rows if r.get("eval/success_rate", 0) >= 0.9), None)
    return {"name": name, "rates": rates, "other": other, "reach": reach, "unit": unit,
            "wall": wall,
            "reach_wall": first and first["wall_time_s"],
            "human_s": first and first.get("hil/human_seconds_total"),
            "final_rate": rows[-1].get("hil/intervention_rate"),
            "curve": [(r[unit], r["eval/success_rate"]) for r in rows
                      if "eval/success_rate" in r]}


def _task_values(env: str, task: list[str], items: list[str]) -> tuple[str, ...]:
    """Each field `items` sets (FIELD=VALUE) at its value in the task itself (`task`'s
    overrides on the env's defaults): the evaluation's config."""
    config = envs.get_config(env, **envs.parse_overrides(task, env))
    return tuple(f"{name}={getattr(config, name)!r}" for name in envs.parse_overrides(items, env))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="pusher")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--demos", type=int, default=20)
    parser.add_argument("--env-config", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="env-config fields beside sparse_reward=True, for the demos and "
                             "every learner, e.g. n_substeps=4 episode_length=75 (25 Hz)")
    parser.add_argument("--train-env-config", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="env-config fields for the learners' training envs alone (the "
                             "demos and every evaluation keep the task's values), e.g. "
                             "start_near_target=0.5")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=100_000)
    parser.add_argument("--bc-steps", type=int, default=5_000)
    parser.add_argument("--n-step", type=int, default=1,
                        help="RLPD/SAC/HIL TD targets over this many steps (also the "
                             "iteration's rollout length)")
    parser.add_argument("--init-temperature", type=float, default=RLPD.init_temperature)
    parser.add_argument("--hidden", type=int, nargs="+", default=list(RLPD.critic_hidden_sizes),
                        help="RLPD/SAC/HIL actor and critic widths")
    parser.add_argument("--num-envs", type=int, default=RLPD.num_envs,
                        help="RLPD/SAC/HIL envs; 8 updates per step of all of them, so fewer "
                             "envs means more updates per transition")
    parser.add_argument("--rlpd", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="RLPD/SAC/HIL: any other RLPDConfig field, e.g. "
                             "normalize_observations=False demo_fraction=0.25")
    parser.add_argument("--human", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="HIL/HG-DAgger: the simulated human's HumanConfig fields, e.g. "
                             "rule=stall progress_metric=reward/block_at_goal min_takeover=20")
    parser.add_argument("--learners", nargs="+", default=["rlpd", "sac", "bc", "hil", "dagger"],
                        choices=["rlpd", "sac", "bc", "hil", "dagger"])
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the demos and each learner's run here (RUN/rlpd, RUN/hil, "
                             "...), e.g. to continue one with `robojax train --resume`; "
                             "default: a temporary folder, removed at the end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp).absolute()  # the runs' configs name the demos by it
        out.mkdir(parents=True, exist_ok=True)
        demos = out / "demos.hdf5"
        collect_to_file(args.env, "solver", args.demos, demos, only_success=True,
                        env_config=envs.parse_overrides([*SPARSE, *args.env_config], args.env))
        rlpd = dataclasses.replace(RLPD, num_timesteps=args.timesteps, n_step=args.n_step,
                                   num_envs=args.num_envs,
                                   policy_hidden_sizes=tuple(args.hidden),
                                   critic_hidden_sizes=tuple(args.hidden),
                                   rollout_length=max(args.n_step, RLPD.rollout_length),
                                   init_temperature=args.init_temperature,
                                   **envs.parse_overrides(args.rlpd))
        human = dataclasses.replace(HUMAN, attention=max(1, args.num_envs // 4),
                                    **envs.parse_overrides(args.human))
        bc = BCConfig(num_grad_steps=args.bc_steps, num_evals=10, num_eval_envs=32)
        learners = {
            "rlpd": lambda: _run(args, "RLPD (demos)", out / "rlpd", algo="rlpd", rlpd=rlpd,
                                 dataset=demos),
            "sac": lambda: _run(args, "SAC-ensemble, no demos", out / "sac", algo="rlpd",
                                rlpd=rlpd),
            "bc": lambda: _run(args, "BC (Gaussian, same demos)", out / "bc", algo="bc",
                               policy="gaussian", dataset=demos, bc=bc),
            "hil": lambda: _run(args, "HIL (RLPD + simulated human)", out / "hil", algo="hil",
                                dataset=demos, hil=HILConfig(**{
                                    **{f.name: getattr(rlpd, f.name)
                                       for f in dataclasses.fields(rlpd)}, "human": human})),
            "dagger": lambda: _run(args, "HG-DAgger (Gaussian)", out / "dagger",
                                   algo="dagger", policy="gaussian", dataset=demos,
                                   dagger=HGDaggerConfig(**{**bc.__dict__, "human": human,
                                                            "num_envs": args.num_envs})),
        }
        results = [learners[name]() for name in args.learners]
    print(f"# sparse {args.env}: {args.demos} scripted-expert demos, {args.seeds} seeds x "
          f"{args.episodes} eval episodes, {time.strftime('%Y-%m-%d')}; RLPD/SAC "
          f"{args.timesteps:,} env steps, env config {[*SPARSE, *args.env_config]}, training "
          f"envs also {args.train_env_config}, config {rlpd}, human {human}")
    print("| learner | success per seed | pooled success [Wilson 95%] | steps to 90% "
          "(seed mean) | wall s to 90% | human-s to 90% | final intervention rate | "
          "train wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        pooled, lo, hi = pooled_success(r["rates"], args.episodes)
        reach = f"{r['reach']:,} {r['unit'].replace('_', ' ')}" if r["reach"] else "not reached"
        reach_wall = f"{r['reach_wall']:.0f}" if r["reach_wall"] else "—"
        human_s = f"{r['human_s']:.0f}" if r["human_s"] is not None else "—"
        final = f"{r['final_rate']:.3f}" if r["final_rate"] is not None else "—"
        print(f"| {r['name']} | {' / '.join(f'{x:.2f}' for x in r['rates'])} | {pooled:.2f} "
              f"[{lo:.2f}, {hi:.2f}] | {reach} | {reach_wall} | {human_s} | {final} | "
              f"{r['wall']:.0f} |")
    for r in results:
        if r["other"]:
            how, rates = r["other"]
            pooled, lo, hi = pooled_success(rates, args.episodes)
            print(f"{r['name']}, the same checkpoints acting with {how}: "
                  f"{' / '.join(f'{x:.2f}' for x in rates)}, pooled "
                  f"{pooled:.2f} [{lo:.2f}, {hi:.2f}]")
    for r in results:
        print(f"{r['name']}, seed-mean eval success by {r['unit'].replace('_', ' ')}: "
              + ", ".join(f"{x:.2f} at {step:,}" for step, x in r["curve"]))


if __name__ == "__main__":
    main()
