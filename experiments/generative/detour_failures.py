"""Where a detour policy's failed episodes end: into the wall, or timed out, and then where.

Rolls a trained run's policy out in `--episodes` parallel episodes and splits them into
successes, collisions and time-outs; for the time-outs it prints where the puck ended (its
height, distance to the goal and sideways offset) and how often it switched sides beside the
wall, which tells an imprecise approach (passing the goal) from dithering between the two ways
round.

    python experiments/generative/detour_failures.py runs/detour-table/energy-seeds3 --steps 8
    python experiments/generative/detour_failures.py runs/detour-table/energy-0 --descent-starts 1
"""

import argparse
import dataclasses

import jax
import numpy as np

from robojax.rollout import rollout_states
from robojax.runs import load_run


def rollout(run_dir: str, seed_index: int, steps: int | None, episodes: int, seed: int,
            descent_starts: int | None = None):
    """(positions (T, N, 2), offsets to the goal (T, N, 2), done, success, collision)."""
    _, algo, cfg, env, state, _ = load_run(run_dir, seed_index)
    if descent_starts is not None:  # an energy policy's
        cfg = dataclasses.replace(cfg, energy=dataclasses.replace(
            cfg.energy, descent_starts=descent_starts))
    states, _ = rollout_states(env, algo.controller(cfg, state, steps=steps),
                               jax.random.PRNGKey(seed), env.config.episode_length, episodes)
    return [np.asarray(x) for x in (states.obs[..., :2], states.obs[..., 4:6], states.done,
                                    states.metrics["reward/success"],
                                    states.metrics["reward/collision"])]


def side_switches(x: np.ndarray, y: np.ndarray) -> int:
    """Sign changes of the sideways position while level with the wall."""
    side = np.sign(x[np.abs(y) < 0.1])
    return int(np.sum(side[1:] != side[:-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--steps", type=int, default=None, help="inference steps")
    parser.add_argument("--descent-starts", type=int, default=None,
                        help="an energy policy's descent starts (default: the run's)")
    parser.add_argument("--seed-index", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=512)
    parser.add_argument("--seed", type=int, default=10_000)
    args = parser.parse_args()
    position, to_goal, done, success, collision = rollout(
        args.run_dir, args.seed_index, args.steps, args.episodes, args.seed, args.descent_starts)
    last = np.where(done.any(0), done.argmax(0), len(done) - 1)
    episodes = np.arange(args.episodes)
    alive = np.arange(len(done))[:, None] <= last  # steps up to each episode's end
    won, crashed = (alive * success).max(0) > 0, (alive * collision).max(0) > 0
    timeout = ~won & ~crashed
    print(f"success {won.mean():.3f}  into the wall {crashed.mean():.3f}  "
          f"timed out {timeout.mean():.3f}")
    if won.any():
        left = [np.mean(position[:last[i] + 1, i, 0][np.abs(position[:last[i] + 1, i, 1]) < 0.1])
                < 0 for i in np.flatnonzero(won)]
        print(f"steps to success (median) {np.median(last[won]):.0f}, passed the wall on the "
              f"left {np.mean(left):.3f} of them (the demos: either side at random)")
    if timeout.any():
        end, offset = position[last, episodes][timeout], to_goal[last, episodes][timeout]
        quartiles = lambda v: " / ".join(f"{q:.3f}" for q in np.quantile(v, [0.25, 0.5, 0.75]))
        print(f"timed out, quartiles of the final height {quartiles(end[:, 1])} (goal at "
              f"0.25, arena edge 0.33), distance to the goal "
              f"{quartiles(np.linalg.norm(offset, axis=-1))}, sideways offset from it "
              f"{quartiles(np.abs(offset[:, 0]))}")
        switches = [side_switches(position[:last[i] + 1, i, 0], position[:last[i] + 1, i, 1])
                    for i in np.flatnonzero(timeout)]
        print(f"timed out, side switches beside the wall: mean {np.mean(switches):.2f}")


if __name__ == "__main__":
    main()
