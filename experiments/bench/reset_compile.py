"""What a built-in task's reset costs to compile: its initial poses only (the default, where the
task reads nothing more) against MJX's whole forward pass (what it ran before, and still runs
for a task whose observation or first reward reads forces, contacts or sensors).

    python experiments/bench/reset_compile.py [--num-envs 64] [--repeats 3] [--tasks hopper ...]

Per task, in one process with the persistent compile cache off: the seconds to lower and
compile `jit(vmap(env.reset))` over `--num-envs` envs each way (median of `--repeats`, the two
ways alternating), the steady run time of one call, the ratio, and whether the two ways give
the same episode to the last bit (observations, rewards, qpos and qvel over 6 steps of random
actions from the same keys). Where a reset is compiled:
at the start of every training run (`core.wrappers.first_states`), inside every training step
(the autoreset redraws its restart states) and in every evaluation program.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("ROBOJAX_CACHE_DIR", "off")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from robojax import envs  # noqa: E402


def _measure(env, num_envs: int, forward: bool) -> tuple[float, float]:
    """(compile s, run ms) of a batched reset, with or without the whole forward pass."""
    env._reset_forward = forward
    keys = jax.random.split(jax.random.PRNGKey(0), num_envs)
    start = time.perf_counter()
    program = jax.jit(jax.vmap(env._reset)).lower(keys).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(program(keys))
    start = time.perf_counter()
    for _ in range(10):
        jax.block_until_ready(program(keys))
    return compile_s, (time.perf_counter() - start) * 100


def _episode(env, num_envs: int, forward: bool) -> list[np.ndarray]:
    """The reset's observations, then each step's observations, rewards, qpos and qvel."""
    env._reset_forward = forward
    keys = jax.random.split(jax.random.PRNGKey(1), num_envs)
    actions = jax.random.uniform(jax.random.PRNGKey(2), (6, num_envs, env.action_spec.size),
                                 minval=-1.0, maxval=1.0)

    def run(keys, actions):
        state = jax.vmap(env._reset)(keys)

        def step(state, action):
            state = jax.vmap(env._step)(state, action)
            return state, (state.obs, state.reward, state.data.qpos, state.data.qvel)

        return state.obs, jax.lax.scan(step, state, actions)[1]

    return [np.asarray(x) for x in jax.tree.leaves(jax.jit(run)(keys, actions))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tasks", nargs="+", default=envs.names())
    args = parser.parse_args()
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}, {args.num_envs} envs, "
          f"median of {args.repeats}")
    print("| task | reads | poses: compile s | forward: compile s | compile poses / forward "
          "| run ms poses / forward | same episode |")
    print("|---|---|---|---|---|---|---|")
    for name in args.tasks:
        env = envs.make(name)
        reads = ", ".join(sorted(env._reset_reads(jax.eval_shape(env._zero_data))))
        runs = {True: [], False: []}
        for _ in range(args.repeats):
            for forward in (False, True):
                runs[forward].append(_measure(env, args.num_envs, forward))
        (poses_c, poses_r), (full_c, full_r) = (
            tuple(statistics.median(x) for x in zip(*runs[f], strict=True)) for f in (False, True))
        same = all(np.array_equal(a, b) for a, b in zip(
            _episode(env, args.num_envs, False), _episode(env, args.num_envs, True), strict=True))
        print(f"| {name} | {reads} | {poses_c:.2f} | {full_c:.2f} | {poses_c / full_c:.2f} | "
              f"{poses_r:.2f} / {full_r:.2f} | {'yes' if same else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
