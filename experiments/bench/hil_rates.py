"""How much of a simulated human's time each takeover rule asks for, on a trained HIL (or
RLPD) run's policies: every seed's policy steps a batch of envs with the human's takeovers
executed, with the human's attention unlimited and at a quarter of the envs, and the share of
env steps the human holds is printed beside the episodes that succeeded.

    python experiments/bench/hil_rates.py runs/hil-pusher --envs 64 --steps 1000
    python experiments/bench/hil_rates.py runs/pusht-hil/hil --steps 600 \
        --rule smoothing=10 threshold=1.5 min_takeover=20 release_threshold=100.0 \
        --rule rule=stall progress_metric=reward/distance min_takeover=20 release_threshold=100.0

Each `--rule` is a set of `HumanConfig` fields over this person (reaction delay 3, noise 0.1);
without one, the rules tried on pusher are compared.

A rule that keeps the human busy while the policy succeeds cannot see the intervention rate
fall, whatever the learner does. The stall rule watches `--progress-metric` (pusher's shaped
closeness of the block to the goal by default).
"""

import argparse
import dataclasses

import jax
import numpy as np

from robojax import envs
from robojax.algos import sac
from robojax.core import normalize
from robojax.core.wrappers import wrap_for_training
from robojax.hil import human, intervene
from robojax.runs import load_run, read_args

PERSON = human.HumanConfig(reaction_delay=3, action_noise=0.1)


def rules(progress_metric: str) -> dict[str, human.HumanConfig]:
    return {
        "deviation 0.5, hand back when within 0.25": PERSON,
        "deviation 1.0 over ~10 steps, hand back after 20 steps": dataclasses.replace(
            PERSON, smoothing=10, threshold=1.0, min_takeover=20, release_threshold=100.0),
        "deviation 1.5 over ~10 steps, hand back after 20 steps": dataclasses.replace(
            PERSON, smoothing=10, threshold=1.5, min_takeover=20, release_threshold=100.0),
        f"stall 30 steps on {progress_metric}, hand back after 20 steps": dataclasses.replace(
            PERSON, rule="stall", progress_metric=progress_metric, min_takeover=20,
            release_threshold=100.0),
    }


def held_share(run, cfg: human.HumanConfig, num_envs: int, num_steps: int):
    """A compiled `(actor params, observation statistics, key) -> (share of env steps the human
    held, successes, episodes)` for the policies of `run`'s seeds."""
    env = wrap_for_training(run.env, num_envs)
    expert, actor = intervene.expert_policy(run.env), sac.make_actor(run.cfg)

    @jax.jit
    def rollout(params, obs_stats, key):
        def step(carry, key):
            state, person = carry
            obs = normalize.observations(run.cfg, obs_stats, state.obs)
            action = actor.sample(params, obs, key)
            person, held, executed, _ = intervene.takeover(
                cfg, expert, person, state, action, jax.random.fold_in(key, 1),
                run.env.unwrapped.dt)
            state = env.step(state, executed)
            return (state, person), (held, state.reward, state.done)

        start = (env.reset(key), human.init(num_envs, run.env.action_spec.size))
        _, (held, reward, done) = jax.lax.scan(step, start, jax.random.split(key, num_steps))
        return held.mean(), reward.sum(), done.sum()

    return rollout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--envs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--progress-metric", default="reward/block_at_goal")
    parser.add_argument("--rule", nargs="+", action="append", metavar="FIELD=VALUE",
                        help="a rule to measure, as HumanConfig fields (repeatable); replaces "
                             "the default rules")
    args = parser.parse_args()
    named = {" ".join(items): dataclasses.replace(PERSON, **envs.parse_overrides(items))
             for items in args.rule or []}
    runs = [load_run(args.run, seed) for seed in range(read_args(args.run).num_seeds)]
    print(f"| rule (reaction delay 3, noise 0.1) | held, attention unlimited | held, "
          f"{args.envs // 4} of {args.envs} | episodes succeeded |")
    print("|---|---|---|---|")
    for name, rule in (named or rules(args.progress_metric)).items():
        cells, episodes = [], []
        for attention in (None, args.envs // 4):
            rollout = held_share(runs[0], dataclasses.replace(rule, attention=attention),
                                 args.envs, args.steps)
            per_seed = [rollout(run.state.learner.actor, run.state.obs_stats,
                                jax.random.PRNGKey(7)) for run in runs]
            share, wins, ends = (np.array([float(x) for x in column])
                                 for column in zip(*per_seed, strict=True))
            cells.append(f"{share.mean():.3f}")
            episodes.append(f"{wins.sum():,.0f} of {ends.sum():,.0f}")
        print(f"| {name} | {cells[0]} | {cells[1]} | {' / '.join(episodes)} |", flush=True)


if __name__ == "__main__":
    main()
