"""Does caching every program, however quick to compile, make a warm start faster?

    python experiments/bench/cache_threshold.py [--repeats 3] [--thresholds 0 0.5 1]

Per threshold (`ROBOJAX_CACHE_MIN_COMPILE_SECS`): a small PPO run (cartpole-balance, 64 envs,
65,536 steps) fills an empty cache, then the same run starts again from it `--repeats` times.
Printed per threshold: the cache's entries and size, the filling run's wall seconds, the warm
runs' median wall and CPU seconds (process start to exit: import, tracing, reading or
compiling, training), and the warm wall's ratio to the first threshold's. Thresholds alternate
within each repeat, so a change in machine load falls on all of them.
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = ["train", "--env", "cartpole-balance", "--num-envs", "64", "--num-timesteps", "65536",
       "--no-video", "--no-progress"]


def _run(cache: Path, threshold: float, run_dir: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one `robojax train` process."""
    shutil.rmtree(run_dir, ignore_errors=True)
    env = {**os.environ, "ROBOJAX_CACHE_DIR": str(cache),
           "ROBOJAX_CACHE_MIN_COMPILE_SECS": str(threshold)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "robojax.cli", *RUN, "--run-dir", str(run_dir)],
                   env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cache-threshold-"))
    caches = {t: work / f"cache-{t}" for t in args.thresholds}
    cold = {t: _run(caches[t], t, work / "run")[0] for t in args.thresholds}
    warm = {t: [] for t in args.thresholds}
    for _ in range(args.repeats):
        for t in args.thresholds:
            warm[t].append(_run(caches[t], t, work / "run"))
    base = statistics.median(w for w, _ in warm[args.thresholds[0]])
    print("| min compile s | entries | MB | filling run s | warm start s | warm CPU s | "
          f"warm / {args.thresholds[0]:g} |")
    print("|---|---|---|---|---|---|---|")
    for t in args.thresholds:
        files = list(caches[t].iterdir())
        wall = statistics.median(w for w, _ in warm[t])
        cpu = statistics.median(c for _, c in warm[t])
        print(f"| {t:g} | {len(files)} | {sum(f.stat().st_size for f in files) / 1e6:.1f} | "
              f"{cold[t]:.1f} | {wall:.1f} | {cpu:.1f} | {wall / base:.2f} |")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
