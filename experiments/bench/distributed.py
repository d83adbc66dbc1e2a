"""Scaling over processes: PPO or SAC on cartpole-balance as 1 process x 1 device, 1 process x 2
devices (`--xla_force_host_platform_device_count=2`) and 2 processes x 1 device
(`jax.distributed` on 127.0.0.1, gloo all-reduces), side by side on this machine.

Each layout runs in fresh processes with the persistent compilation cache off, so compile times
are cold. Per layout: compile time of one chunk of iterations, steady-state env steps/s (median
of the timed chunks), and the time of one all-reduce of a vector the size of the PPO parameters
(what each gradient step sums across devices), from which the all-reduce share of an iteration
follows: PPO runs num_epochs x num_minibatches gradient steps per iteration, each one all-reduce
of the gradients (the statistics and metrics add a few small ones). SAC (`--algo sac`, its
defaults but learning from the first iteration) runs its step per device, each device
sampling its batch share from its own replay block: grad_updates_per_step critic all-reduces
and as many actor ones per iteration.

    python experiments/bench/distributed.py                      # 512 and 2048 envs
    python experiments/bench/distributed.py --num-envs 1024 --iterations 8 --repeats 5
    python experiments/bench/distributed.py --algo sac --num-envs 128 512 --iterations 16
"""

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time

# processes x devices per process; "pinned": each process on its own core (sched_setaffinity),
# so XLA sizes each process's thread pool to one core instead of every process using all.
LAYOUTS = {"1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1), "2x1-pinned": (2, 1)}
ALL_REDUCE_CALLS = 200


def _setup(algo_name: str, num_envs: int):
    """(algorithm, config, train input, initial state, the parameters each gradient step
    all-reduces, all-reduces per iteration)."""
    import jax

    from robojax import algos, envs

    algo = algos.get(algo_name)
    if algo_name == "ppo":
        cfg = algo.Config(num_envs=num_envs)
    else:  # learning from the first iteration, so every timed one updates
        cfg = algo.Config(num_envs=num_envs, learning_starts=num_envs)
    env = envs.make("cartpole-balance")
    train_input = algo.make_train_input(cfg, env)
    state = algo.init(cfg, env, train_input, jax.random.PRNGKey(0))
    if algo_name == "ppo":
        return algo, cfg, train_input, state, state.params, cfg.num_epochs * cfg.num_minibatches
    updates = cfg.updates_per_iteration()
    return (algo, cfg, train_input, state, state.learner.critic,
            updates + updates // cfg.critic_updates_per_actor)


def _measure(algo_name: str, num_envs: int, iterations: int, repeats: int) -> dict:
    """Compile and steady-state time of training iterations on every device of every
    process, and of one all-reduce of the (critic) parameter vector."""
    import jax
    import numpy as np

    algo, cfg, train_input, state, params, reduces = _setup(algo_name, num_envs)
    state, _ = jax.jit(lambda s: algo.train_iteration(cfg, train_input, s))(state)

    def run(state):
        step = lambda s, _: algo.train_iteration(cfg, train_input, s)
        return jax.lax.scan(step, state, None, length=iterations)

    start = time.perf_counter()
    compiled = jax.jit(run, donate_argnums=0).lower(state).compile()
    compile_s = time.perf_counter() - start
    state, _ = compiled(state)
    jax.block_until_ready(state)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state, metrics = compiled(state)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))

    size = sum(np.size(x) for x in jax.tree.leaves(params))
    all_reduce_s = _all_reduce_seconds(size)
    return {"algo": algo_name, "num_envs": num_envs, "processes": jax.process_count(),
            "devices": len(jax.devices()),
            "compile_s": compile_s, "iteration_s": seconds / iterations,
            "env_steps_per_s": iterations * cfg.steps_per_iteration() / seconds,
            "params": int(size), "all_reduce_us": all_reduce_s * 1e6,
            "all_reduces_per_iteration": reduces,
            "all_reduce_share": reduces * all_reduce_s / (seconds / iterations),
            "reward": float(np.asarray(metrics["train/reward"]).mean())}


def _all_reduce_seconds(size: int) -> float:
    """Seconds per all-reduce of `size` floats across every device, inside one compiled loop of
    ALL_REDUCE_CALLS of them (as the gradient all-reduces run inside the train step)."""
    import jax
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec

    from robojax.core import sharding

    mesh = sharding.batch_mesh()
    spec = PartitionSpec("batch")
    parts = jax.device_put(np.ones((len(jax.devices()), size), np.float32),
                           NamedSharding(mesh, spec))

    def loop(x):
        body = lambda _, y: jax.lax.psum(y, "batch") * 0.5
        return jax.lax.fori_loop(0, ALL_REDUCE_CALLS, body, x)

    reduce_many = jax.jit(jax.shard_map(loop, mesh=mesh, in_specs=spec, out_specs=spec,
                                          check_vma=False))
    jax.block_until_ready(reduce_many(parts))
    start = time.perf_counter()
    jax.block_until_ready(reduce_many(parts))
    return (time.perf_counter() - start) / ALL_REDUCE_CALLS


def _worker(args) -> None:
    if args.pinned:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[args.process_id]})
    if args.processes > 1:
        import robojax  # noqa: F401  (XLA flags before the backend starts)
        from robojax.core import distributed

        distributed.initialize(f"127.0.0.1:{args.port}", args.processes, args.process_id, 120)
    result = _measure(args.algo, args.num_envs, args.iterations, args.repeats)
    if args.process_id == 0:
        print("RESULT " + json.dumps(result), flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_layout(algo: str, layout: str, num_envs: int, iterations: int, repeats: int) -> dict:
    processes, devices = LAYOUTS[layout]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "ROBOJAX_CACHE_DIR": "off",
           "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} "
                        f"--xla_force_host_platform_device_count={devices}".strip()}
    port = _free_port()
    procs = [subprocess.Popen(
        [sys.executable, __file__, "--worker", "--algo", algo, "--processes", str(processes),
         "--process-id", str(i), "--port", str(port), "--num-envs", str(num_envs), "--iterations",
         str(iterations), "--repeats", str(repeats), *(["--pinned"] * layout.endswith("pinned"))],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(processes)]
    outputs = [p.communicate(timeout=1800) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        if proc.returncode:
            raise RuntimeError(f"layout {layout} failed:\n{err[-3000:]}")
    line = next(x for x in outputs[0][0].splitlines() if x.startswith("RESULT "))
    return {"layout": layout, **json.loads(line.removeprefix("RESULT "))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=["ppo", "sac"], default="ppo")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--iterations", type=int, default=4, help="iterations per chunk")
    parser.add_argument("--repeats", type=int, default=3, help="timed chunks per layout")
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=list(LAYOUTS))
    parser.add_argument("--json", help="write the rows here too")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--pinned", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.num_envs = args.num_envs[0]
        return _worker(args)

    print(f"# {platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, {args.algo}")
    print("| envs | processes x devices | compile s | iteration ms | env steps/s | "
          "vs first layout | all-reduce of the params µs | all-reduces per iteration | "
          "all-reduce share |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for num_envs in args.num_envs:
        base = None
        for layout in args.layouts:
            row = _run_layout(args.algo, layout, num_envs, args.iterations, args.repeats)
            rows.append(row)
            base = base or row["env_steps_per_s"]
            print(f"| {num_envs} | {layout} | "
                  f"{row['compile_s']:.1f} | {row['iteration_s'] * 1e3:.1f} | "
                  f"{row['env_steps_per_s']:,.0f} | {row['env_steps_per_s'] / base:.2f}x | "
                  f"{row['all_reduce_us']:.0f} ({row['params']:,} floats) | "
                  f"{row['all_reduces_per_iteration']} | {row['all_reduce_share']:.1%} |",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
