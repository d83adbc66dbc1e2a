"""Env throughput: robojax envs vs raw `jit(vmap(mjx.step))` vs MuJoCo C (`mujoco.rollout`).

Each (implementation, env, batch) runs in its own subprocess so peak RSS is its own, with the
persistent compilation cache off so compile times are cold. Every timed call starts from the same
reset state, so both sides integrate the same trajectories. robojax
steps are full training steps (time limit, NaN guard, autoreset, observation, reward terms);
raw MJX steps the same model with the same controls and nothing else. Physics steps per second
count substeps, so envs with n_substeps > 1 compare like for like.

    python experiments/bench/env_throughput.py                 # the full table
    python experiments/bench/env_throughput.py --batches 1024 --envs cartpole-balance
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

STEPS = 200  # control steps per timed call


def _measure(impl: str, name: str, batch: int, repeats: int) -> dict:
    import resource

    import jax
    import numpy as np

    import robojax  # noqa: F401
    from robojax import envs
    from robojax.core.wrappers import wrap_for_training

    env = envs.make(name)
    nsub = env.n_substeps
    key = jax.random.PRNGKey(0)
    actions = jax.random.uniform(key, (STEPS, batch, env.action_spec.size), minval=-1, maxval=1)

    if impl == "robojax":
        wrapped = wrap_for_training(env, batch)
        state = jax.jit(wrapped.reset)(key)

        @jax.jit
        def run(state, actions):
            def one(s, a):
                return wrapped.step(s, a), None
            return jax.lax.scan(one, state, actions)[0]
        get_out = lambda s: s.obs
    elif impl == "mjx":
        from mujoco import mjx

        model = env.mjx_model
        low, high = env._ctrl_low, env._ctrl_high
        state = jax.jit(jax.vmap(lambda k: env.reset(k).data))(jax.random.split(key, batch))
        step = jax.vmap(mjx.step, in_axes=(None, 0))

        @jax.jit
        def run(data, actions):
            def one(d, a):
                d = d.replace(ctrl=low + (a + 1) * 0.5 * (high - low))
                for _ in range(nsub):
                    d = step(model, d)
                return d, None
            return jax.lax.scan(one, data, actions)[0]
        get_out = lambda d: d.qpos
    else:  # MuJoCo C through mujoco.rollout, threads = cores
        import mujoco
        from mujoco import rollout

        model = env.mj_model
        data = [mujoco.MjData(model) for _ in range(os.cpu_count())]
        init = np.zeros((batch, mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS)))
        mujoco.mj_getState(model, data[0], init[0], mujoco.mjtState.mjSTATE_FULLPHYSICS)
        init[:] = init[0]
        ctrl = np.repeat(np.asarray(actions).transpose(1, 0, 2), nsub, axis=1)
        low, high = np.asarray(env._ctrl_low), np.asarray(env._ctrl_high)
        ctrl = low + (ctrl + 1) * 0.5 * (high - low)
        with rollout.Rollout(nthread=os.cpu_count()) as runner:
            t0 = time.perf_counter()
            runner.rollout(model, data, init, ctrl)
            compile_s = time.perf_counter() - t0
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                runner.rollout(model, data, init, ctrl)
                times.append(time.perf_counter() - t0)
        best = min(times)
        return {"compile_s": 0.0, "first_call_s": compile_s,
                "steps_per_s": STEPS * batch / best, "physics_steps_per_s": STEPS * batch * nsub
                / best, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}

    t0 = time.perf_counter()
    compiled = run.lower(state, actions).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(get_out(compiled(state, actions)))
    times = []
    for _ in range(repeats):  # every call from the same start: both sides see the same states
        t0 = time.perf_counter()
        out = compiled(state, actions)
        jax.block_until_ready(get_out(out))
        times.append(time.perf_counter() - t0)
    best = min(times)
    return {"compile_s": compile_s, "steps_per_s": STEPS * batch / best,
            "physics_steps_per_s": STEPS * batch * nsub / best,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["cartpole-balance", "hopper"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 128, 1024, 4096])
    parser.add_argument("--impls", nargs="+", default=["robojax", "mjx", "mujoco-c"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        impl, name, batch = args._child
        print(json.dumps(_measure(impl, name, int(batch), args.repeats)))
        return

    import jax

    print(f"# env throughput, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, jax {jax.__version__} on {jax.default_backend()}, "
          f"{time.strftime('%Y-%m-%d')}")
    print("| env | batch | impl | compile s | env steps/s | physics steps/s | vs raw MJX | "
          "peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    results = []
    for name in args.envs:
        for batch in args.batches:
            row = {}
            for impl in args.impls:
                cmd = [sys.executable, __file__, "--_child", impl, name, str(batch),
                       "--repeats", str(args.repeats)]
                # No persistent cache: compile times are cold compiles on both sides.
                out = subprocess.run(cmd, capture_output=True, text=True,
                                     env={**os.environ, "ROBOJAX_CACHE_DIR": "off"})
                if out.returncode != 0:
                    print(f"| {name} | {batch} | {impl} | failed: "
                          f"{out.stderr.strip().splitlines()[-1]} |||||")
                    continue
                row[impl] = json.loads(out.stdout.strip().splitlines()[-1])
            for impl, r in row.items():
                ratio = (r["physics_steps_per_s"] / row["mjx"]["physics_steps_per_s"]
                         if "mjx" in row else float("nan"))
                print(f"| {name} | {batch} | {impl} | {r['compile_s']:.1f} | "
                      f"{r['steps_per_s']:,.0f} | {r['physics_steps_per_s']:,.0f} | "
                      f"{ratio:.2f}x | {r['peak_rss_mb']:.0f} |", flush=True)
                results.append({"env": name, "batch": batch, "impl": impl, **r})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
