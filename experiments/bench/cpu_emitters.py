"""XLA's CPU fusion emitters against its legacy ones: compile time and steady-state speed.

    python experiments/bench/cpu_emitters.py [--repeats 2] [--workloads ppo-cartpole sac ...]

jaxlib 0.10's XLA:CPU generates fused loops with its newer "fusion emitters" by default;
`--xla_cpu_use_fusion_emitters=false` selects the legacy ones. Each workload (one compiled
training iteration or env step, as robojax runs them) is built in a fresh process with an
empty compile cache under each setting, alternating within every repeat so a change in
machine load falls on both. Printed per workload and setting: the seconds to trace and lower
the program, to compile it, and the steady-state throughput (median of timed calls after a
warm-up call), then the ratios legacy / default. Robojax's own runtime flag (the scheduler
switch of `robojax._xla`) applies to both sides; flags a user set in `XLA_FLAGS` are
dropped for the measurement.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

SETTINGS = {"default emitters": "--xla_cpu_use_fusion_emitters=true",
            "legacy emitters": "--xla_cpu_use_fusion_emitters=false"}

WORKLOADS = {
    "ppo-cartpole": "PPO iteration, cartpole-balance, 256 envs x 32 steps",
    "ppo-hopper": "PPO iteration, hopper (contacts), 128 envs x 16 steps",
    "sac": "SAC iteration, cartpole-swingup, 128 envs, batch 512, 8 updates, 256x256 networks",
    "step-hopper": "env step only, hopper, jit(vmap(step)) over 1024 envs",
    "step-pusher": "env step only, pusher (contacts), jit(vmap(step)) over 1024 envs",
}

_CHILD = r"""
import functools, json, statistics, sys, time
import jax
import jax.numpy as jnp
from robojax import algos, envs
from robojax.algos import ppo, sac

name, calls = sys.argv[1], int(sys.argv[2])
key = jax.random.PRNGKey(0)
if name.startswith("step-"):
    env = envs.make(name.removeprefix("step-"))
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(key, 1024))
    actions = jnp.zeros((1024, *env.action_spec.shape))
    program, args, per_call = jax.jit(jax.vmap(env.step)), (states, actions), 1024
    advance = lambda out, args: (out, args[1])
else:
    if name == "sac":
        cfg = sac.SACConfig(num_envs=128, learning_starts=128, buffer_capacity=100_000)
        env_name = "cartpole-swingup"
    else:
        size = (256, 32) if name == "ppo-cartpole" else (128, 16)
        cfg = ppo.PPOConfig(num_envs=size[0], rollout_length=size[1])
        env_name = "cartpole-balance" if name == "ppo-cartpole" else "hopper"
    algo = algos.get(name.split("-")[0])
    env = envs.make(env_name)
    train_input = algo.make_train_input(cfg, env)
    state = algo.init(cfg, env, train_input, key)
    program = jax.jit(functools.partial(algo.train_iteration, cfg, train_input))
    args, per_call = (state,), cfg.num_envs * cfg.rollout_length
    advance = lambda out, args: (out[0],)
start = time.perf_counter()
lowered = program.lower(*args)
lowered_at = time.perf_counter()
compiled = lowered.compile()
compiled_at = time.perf_counter()
args = advance(jax.block_until_ready(compiled(*args)), args)  # the warm-up call
seconds = []
for _ in range(calls):
    tic = time.perf_counter()
    args = advance(jax.block_until_ready(compiled(*args)), args)
    seconds.append(time.perf_counter() - tic)
print("RESULT", json.dumps({"lower": lowered_at - start, "compile": compiled_at - lowered_at,
                            "per_s": per_call / statistics.median(seconds)}))
"""


def one_run(workload: str, flags: str, calls: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "XLA_FLAGS": flags, "ROBOJAX_CACHE_DIR": f"{tmp}/cache",
               "JAX_PLATFORMS": "cpu"}
        out = subprocess.run([sys.executable, "-c", _CHILD, workload, str(calls)], env=env,
                             capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"{workload} under {flags!r} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--calls", type=int, default=10, help="timed calls per run")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    args = parser.parse_args()
    runs = {(w, s): [] for w in args.workloads for s in SETTINGS}
    for _ in range(args.repeats):
        for workload in args.workloads:
            for setting, flags in SETTINGS.items():
                runs[workload, setting].append(one_run(workload, flags, args.calls))
                print(workload, setting, runs[workload, setting][-1], flush=True)
    median = lambda workload, setting, field: statistics.median(  # noqa: E731
        r[field] for r in runs[workload, setting])
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d')}, median of {args.repeats} fresh processes each\n")
    print("| workload | emitters | trace + lower s | compile s | steady state per s |")
    print("|---|---|---|---|---|")
    for workload in args.workloads:
        for setting in SETTINGS:
            print(f"| {WORKLOADS[workload]} | {setting.split()[0]} | "
                  f"{median(workload, setting, 'lower'):.1f} | "
                  f"{median(workload, setting, 'compile'):.1f} | "
                  f"{median(workload, setting, 'per_s'):,.0f} |")
    print("\n| workload | compile legacy / default | throughput legacy / default |\n|---|---|---|")
    for workload in args.workloads:
        compile_s, per_s = (median(workload, "legacy emitters", field)
                            / median(workload, "default emitters", field)
                            for field in ("compile", "per_s"))
        print(f"| {WORKLOADS[workload]} | {compile_s:.2f} | {per_s:.2f} |")


if __name__ == "__main__":
    main()
