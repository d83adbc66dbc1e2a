"""Do XLA CPU flags shorten the compile of a training run? The test suite is compile-bound.

    python experiments/bench/compile_flags.py [--env hopper] [--repeats 2]

Each flag set runs the same small PPO run (16 envs, 32,768 steps, two evaluations) in a fresh
process with an empty compile cache, on top of the suite's flags (`tests/conftest.py`: XLA's
legacy CPU emitters). Printed per flag set: the seconds jax spent compiling (all programs) and
the run's wall seconds, each the median over `--repeats` runs, and the ratio of the compile to
the suite's flags alone. Flag sets alternate within each repeat, so a change in machine load
falls on all of them; the suite's flags run twice, and the two rows' spread is the noise.
(robojax itself turns XLA's concurrency-optimized CPU scheduler off on jaxlib 0.10,
`robojax._xla`, so that flag is not among the sets.) A flag this jaxlib does not know aborts
its process; it is reported as such.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

SUITE = "--xla_cpu_use_fusion_emitters=false"
FLAG_SETS = {
    "suite flags": "",
    "disable expensive LLVM passes": "--xla_llvm_disable_expensive_passes=true",
    "no region analysis in copy insertion":
        "--xla_cpu_copy_insertion_use_region_analysis=false",
    "no thunk runtime": "--xla_cpu_use_thunk_runtime=false",
    "suite flags, again": "",
    "AVX2 at most": "--xla_cpu_max_isa=AVX2",
    "one codegen split": "--xla_cpu_parallel_codegen_split_count=1",
    "optimization level 1": "--xla_backend_optimization_level=1",
}

_CHILD = """
import json, sys, time
import jax
seconds = [0.0]
def listen(event, duration, **_):
    if event == "/jax/core/compile/backend_compile_duration":
        seconds[0] += duration
jax.monitoring.register_event_duration_secs_listener(listen)
from robojax import cli
start = time.perf_counter()
cli.main(sys.argv[1:])
print("RESULT", json.dumps({"compile": seconds[0], "wall": time.perf_counter() - start}))
"""


def one_run(env: str, flags: str) -> dict | None:
    """Compile and wall seconds of the small run under `flags`; None if the process failed."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["train", "--env", env, "--num-envs", "16", "--num-timesteps", "32768",
                "--ppo.num-evals", "2", "--no-video", "--no-progress", "--run-dir",
                f"{tmp}/run"]
        env_vars = {**os.environ, "XLA_FLAGS": f"{SUITE} {flags}".strip(),
                    "ROBOJAX_CACHE_DIR": f"{tmp}/cache", "JAX_PLATFORMS": "cpu"}
        out = subprocess.run([sys.executable, "-c", _CHILD, *argv], env=env_vars,
                             capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(lines[-1].removeprefix("RESULT ")) if lines else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="hopper")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    runs = {name: [] for name in FLAG_SETS}
    for _ in range(args.repeats):
        for name, flags in FLAG_SETS.items():
            runs[name].append(one_run(args.env, flags))
    base = statistics.median(r["compile"] for r in runs["suite flags"] if r)
    print(f"PPO on {args.env}, 16 envs, 32,768 steps, empty cache, median of {args.repeats}")
    print("| flags | compile s | wall s | compile / suite flags |\n|---|---|---|---|")
    for name, results in runs.items():
        if not all(results):
            print(f"| {name} | - | - | this jaxlib refuses the flag |")
            continue
        compile_s = statistics.median(r["compile"] for r in results)
        wall = statistics.median(r["wall"] for r in results)
        print(f"| {name} | {compile_s:.1f} | {wall:.1f} | {compile_s / base:.2f} |")


if __name__ == "__main__":
    main()
