"""robojax SAC vs Brax SAC on the same Playground env (impl "jax"), side by side.

(a) throughput: identical hyperparameters (Playground's `brax_sac_config`: 128 envs, batch 512,
    8 gradient updates per env step, learning rate 1e-3, discount 0.99, 256x256 networks with
    LayerNorm critics); training env steps/s and gradient steps/s at steady state, and compile
    time (Brax: first epoch minus a steady one; robojax: lowering + compiling its epoch).
(b) time to reward: wall seconds from the start of training (compilation included) to an eval
    reward >= --target, each side with its own configuration.
(c) robojax's epoch of (a) compiled with XLA's compile options instead of its defaults, each in
    a fresh process with the compile cache off, the defaults among them as the reference:
    compile s and steady env steps/s (no Brax side; its compile time is in (a)).
(d) where (a)'s compile time goes: the whole epoch, its env steps alone (robojax's wrappers
    around the env, random actions), the same steps of the bare env (vmapped, no wrappers:
    what Brax compiles), and the gradient updates alone; fresh processes, cache off.

Brax runs in its peer venv (experiments/bench/setup_brax_peer.sh), robojax in this process.

    ROBOJAX_CACHE_DIR=off python experiments/bench/sac_vs_brax.py --part a [--num-envs 1024]
    python experiments/bench/sac_vs_brax.py --part b --target 300
    python experiments/bench/sac_vs_brax.py --part c --repeats 2
    python experiments/bench/sac_vs_brax.py --part d --repeats 3
"""

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _brax_peer import run_peer

import robojax  # noqa: F401  (before jax starts its backends: it sets XLA's CPU flags)

HERE = Path(__file__).resolve().parent

SHARED = dict(num_envs=128, batch_size=512, grad_updates_per_step=8, learning_rate=1e-3,
              discount=0.99, tau=0.005, reward_scaling=1.0, min_replay=8192)
NETWORK = dict(hidden_layer_sizes=[256, 256], q_network_layer_norm=True)
STEPS_PER_EPOCH = 20
EPOCHS = 5
ROBOJAX_RESTARTS = {
    "default (16 starts per env, no redraw)": {},
    "fresh starts redrawn every 32 steps": {"reset_refresh": 32, "reset_pool": 1},
    "one start per env (Brax's restarts)": {"reset_refresh": 0, "reset_pool": 1},
}
"""robojax's ways of restarting finished envs, each measured beside Brax."""


def brax_kwargs(s: dict, num_timesteps: int, num_evals: int) -> dict:
    return dict(num_timesteps=num_timesteps, num_evals=num_evals, num_envs=s["num_envs"],
                batch_size=s["batch_size"], grad_updates_per_step=s["grad_updates_per_step"],
                learning_rate=s["learning_rate"], discounting=s["discount"], tau=s["tau"],
                reward_scaling=s["reward_scaling"], min_replay_size=s["min_replay"],
                max_replay_size=1_000_000, normalize_observations=True, episode_length=1000,
                num_eval_envs=16, deterministic_eval=True, seed=0)


def run_brax(env: str, kwargs: dict, network: dict, target: float | None = None) -> dict:
    return run_peer("brax_sac_peer.py", kwargs, network, env=env, target=target)


def robojax_config(s: dict):
    from robojax.algos import sac

    return sac.SACConfig(num_envs=s["num_envs"], batch_size=s["batch_size"],
                         grad_updates_per_step=s["grad_updates_per_step"],
                         learning_rate=s["learning_rate"], discount=s["discount"], tau=s["tau"],
                         reward_scaling=s["reward_scaling"], learning_starts=s["min_replay"],
                         buffer_capacity=1_000_000, critic_layer_norm=True,
                         policy_hidden_sizes=tuple(NETWORK["hidden_layer_sizes"]),
                         critic_hidden_sizes=tuple(NETWORK["hidden_layer_sizes"]),
                         episode_length=1000,
                         reset_refresh=s.get("reset_refresh", sac.SACConfig.reset_refresh),
                         reset_pool=s.get("reset_pool", sac.SACConfig.reset_pool))


def robojax_throughput(env_name: str, s: dict, compiler_options: dict | None = None
                       ) -> tuple[float, float, float]:
    """(steady env steps/s, compile s, init s) of robojax SAC, in epochs of STEPS_PER_EPOCH
    steps; init is `sac.init`'s wall time: networks, buffer and the first states (with the
    restart pool), compiled and run. `compiler_options` go to XLA with the epoch's compile."""
    import jax
    from robojax.envs import make as make_env

    from robojax.algos import sac

    cfg = robojax_config(s)
    env = make_env(env_name)
    train_input = sac.make_train_input(cfg, env)
    t0 = time.perf_counter()
    state = jax.block_until_ready(sac.init(cfg, env, train_input, jax.random.PRNGKey(0)))
    init_s = time.perf_counter() - t0

    def epoch(state):
        step = functools.partial(sac.train_iteration, cfg, train_input)
        return jax.lax.scan(lambda s, _: step(s), state, None, length=STEPS_PER_EPOCH)

    t0 = time.perf_counter()
    compiled = jax.jit(epoch, donate_argnums=0).lower(state).compile(compiler_options)
    compile_s = time.perf_counter() - t0
    while int(state.buffer.size) < cfg.learning_starts:  # prefill, as Brax does first
        state, _ = compiled(state)
    times = []
    for _ in range(EPOCHS):
        t0 = time.perf_counter()
        state, metrics = compiled(state)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    steady = sorted(times)[len(times) // 2]
    return cfg.num_envs * STEPS_PER_EPOCH / steady, compile_s, init_s


def part_a(env_name: str, num_envs: int) -> None:
    import jax

    s = {**SHARED, "num_envs": num_envs}
    grad = s["grad_updates_per_step"] / s["num_envs"]
    print(f"# (a) SAC throughput, Playground {env_name} (impl jax), {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}; robojax on jax {jax.__version__}, Brax 0.14.2 in its "
          f"peer venv, backend {jax.default_backend()}")
    print(f"# shared settings: {s}, networks {NETWORK}, {STEPS_PER_EPOCH} env steps per epoch")
    print("| side | training env steps/s | gradient steps/s | compile s | init s |")
    print("|---|---|---|---|---|", flush=True)
    ours = {}
    for label, restarts in ROBOJAX_RESTARTS.items():
        sps, compile_s, init_s = ours[label] = robojax_throughput(f"playground:{env_name}",
                                                                  {**s, **restarts})
        print(f"| robojax SAC, {label} | {sps:,.0f} | {sps * grad:,.0f} | {compile_s:.1f} | "
              f"{init_s:.1f} |", flush=True)
    env_steps_per_epoch = s["num_envs"] * STEPS_PER_EPOCH
    brax = run_brax(env_name, brax_kwargs(s, s["min_replay"] + EPOCHS * env_steps_per_epoch,
                                          EPOCHS + 1), NETWORK)
    sps = [p["sps"] for p in brax["points"][1:]]
    brax_sps = sorted(sps[1:])[len(sps[1:]) // 2]
    brax_compile = env_steps_per_epoch / sps[0] - env_steps_per_epoch / brax_sps
    print(f"| Brax SAC (jax {brax['jax']}) | {brax_sps:,.0f} | {brax_sps * grad:,.0f} | "
          f"{brax_compile:.1f} | - |")
    for label, (ours_sps, compile_s, _) in ours.items():
        print(f"| ratio robojax ({label}) / Brax | {ours_sps / brax_sps:.2f}x | "
              f"{ours_sps / brax_sps:.2f}x | {compile_s / brax_compile:.2f}x | |", flush=True)


def first_reaching(points: list[dict], target: float) -> dict | None:
    return next((p for p in points if p["env_steps"] > 0 and p["reward"] >= target), None)


def _robojax_to_target(env_name: str, flags: list[str], target: float, budget: int,
                       seed: int) -> dict:
    """A robojax SAC CLI run (cold compile cache), its first eval at or above `target`."""
    import tempfile

    from robojax.io.metrics import read_metrics

    with tempfile.TemporaryDirectory() as tmp:
        env_vars = {**os.environ, "ROBOJAX_CACHE_DIR": "off"}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "robojax.cli", "train", "--algo", "sac", "--env",
                        f"playground:{env_name}", "--run-dir", f"{tmp}/run", "--seed",
                        str(seed), "--num-timesteps", str(budget), "--no-video",
                        "--no-progress", *flags], check=True, env=env_vars,
                       capture_output=True)
        total = time.perf_counter() - start
        rows = read_metrics(Path(tmp) / "run" / "metrics.csv")
    points = [{"env_steps": r["env_steps"], "wall_time_s": r["wall_time_s"],
               "reward": r["eval/episode_reward"]} for r in rows]
    return {"points": points, "total_s": total}


ROBOJAX_B = ["--num-envs", "16", "--sac.batch-size", "128", "--sac.grad-updates-per-step", "8",
             "--sac.learning-starts", "2000", "--sac.policy-hidden-sizes", "64", "64",
             "--sac.critic-hidden-sizes", "64", "64", "--sac.num-evals", "20",
             "--sac.num-eval-envs", "16"]


def part_b(env_name: str, target: float, budget: int, seeds: int) -> None:
    print(f"# (b) SAC time to eval reward >= {target}, Playground {env_name}, "
          f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, budget {budget:,} env steps")
    print("| side | config | seed | env steps to target | wall s to target | final reward |")
    print("|---|---|---|---|---|---|")
    for seed in range(seeds):
        ours = _robojax_to_target(env_name, ROBOJAX_B, target, budget, seed)
        hit = first_reaching(ours["points"], target)
        print(f"| robojax | {' '.join(ROBOJAX_B[:10])} | {seed} | "
              f"{hit['env_steps'] if hit else 'not reached'} | "
              f"{hit['wall_time_s']:.0f} | {ours['points'][-1]['reward']:.0f} |"
              if hit else
              f"| robojax | {' '.join(ROBOJAX_B[:10])} | {seed} | not reached | — | "
              f"{ours['points'][-1]['reward']:.0f} |", flush=True)
        kwargs = {**brax_kwargs(SHARED, budget, 20), "seed": seed}
        brax = run_brax(env_name, kwargs, NETWORK, target)
        hit = first_reaching(brax["points"], target)
        last = brax["points"][-1]["reward"]
        print(f"| Brax | Playground brax_sac_config | {seed} | "
              + (f"{hit['env_steps']} | {hit['wall_time_s']:.0f} | {last:.0f} |" if hit
                 else f"not reached | — | {last:.0f} |"), flush=True)


COMPILE_OPTIONS = {
    "XLA's defaults": {},
    "expensive LLVM passes off": {"xla_llvm_disable_expensive_passes": True},
    "backend optimization level 1": {"xla_backend_optimization_level": 1},
    "legacy CPU emitters (the test suite's)": {"xla_cpu_use_fusion_emitters": False},
    "codegen in one piece": {"xla_cpu_parallel_codegen_split_count": 1},
    "codegen in four pieces": {"xla_cpu_parallel_codegen_split_count": 4},
    "copy insertion without region analysis": {"xla_cpu_copy_insertion_use_region_analysis":
                                               False},
    "concurrency-optimized scheduler off": {"xla_cpu_enable_concurrency_optimized_scheduler":
                                            False},
}


def part_c(env_name: str, repeats: int) -> None:
    print(f"# (c) robojax SAC epoch under XLA compile options, Playground {env_name}, "
          f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}; (a)'s settings, "
          f"{repeats} fresh processes per row (option sets alternating), medians")
    runs = {label: [] for label in COMPILE_OPTIONS}
    for _ in range(repeats):
        for label, options in COMPILE_OPTIONS.items():
            out = subprocess.run(
                [sys.executable, __file__, "--env", env_name, "--child-options",
                 json.dumps(options)], check=True, capture_output=True, text=True,
                env={**os.environ, "ROBOJAX_CACHE_DIR": "off"}).stdout
            runs[label].append(json.loads(out.strip().splitlines()[-1]))
    medians = {label: {k: statistics.median(r[k] for r in rows) for k in ("compile_s", "sps")}
               for label, rows in runs.items()}
    base = medians["XLA's defaults"]
    print("| options | compile s (each run) | steady env steps/s (each run) | compile / defaults "
          "| throughput / defaults |")
    print("|---|---|---|---|---|")
    for label, rows in runs.items():
        each_compile = " / ".join(f"{r['compile_s']:.1f}" for r in rows)
        each_sps = " / ".join(f"{r['sps']:,.0f}" for r in rows)
        ratio = {k: medians[label][k] / base[k] for k in base}
        print(f"| {label} | {each_compile} | {each_sps} | {ratio['compile_s']:.2f} | "
              f"{ratio['sps']:.2f} |", flush=True)


def compile_split(env_name: str) -> dict[str, float]:
    """Lowering plus compile seconds of (a)'s epoch and of its parts, in this process."""
    import jax
    from robojax.envs import make as make_env

    from robojax.algos import sac

    cfg = robojax_config(SHARED)
    env = make_env(f"playground:{env_name}")
    train_input = sac.make_train_input(cfg, env)
    state = jax.block_until_ready(sac.init(cfg, env, train_input, jax.random.PRNGKey(0)))
    keys = jax.random.split(jax.random.PRNGKey(1), STEPS_PER_EPOCH)
    random_action = lambda key: jax.random.uniform(  # noqa: E731
        key, (cfg.num_envs, env.action_spec.size), minval=-1.0, maxval=1.0)

    def epoch(state):
        step = functools.partial(sac.train_iteration, cfg, train_input)
        return jax.lax.scan(lambda s, _: step(s), state, None, length=STEPS_PER_EPOCH)

    def wrapped_steps(env_state):
        return jax.lax.scan(lambda s, k: (train_input.env.step(s, random_action(k)), None),
                            env_state, keys)[0]

    bare = env.unwrapped
    bare_state = jax.vmap(bare.reset)(jax.random.split(jax.random.PRNGKey(0), cfg.num_envs))

    def bare_steps(env_state):
        return jax.lax.scan(lambda s, k: (jax.vmap(bare.step)(s, random_action(k)), None),
                            env_state, keys)[0]

    def updates(state):
        return sac.update(cfg, train_input, state, env.action_spec.size, state.key)

    programs = {"epoch": (epoch, state), "env steps, wrapped": (wrapped_steps, state.env_state),
                "env steps, bare": (bare_steps, bare_state), "updates": (updates, state)}
    seconds = {}
    for name, (fn, arg) in programs.items():
        t0 = time.perf_counter()
        jax.jit(fn).lower(arg).compile()
        seconds[name] = time.perf_counter() - t0
    return seconds


def part_d(env_name: str, repeats: int) -> None:
    print(f"# (d) where robojax SAC's compile goes, Playground {env_name}, {os.cpu_count()} "
          f"cores, {time.strftime('%Y-%m-%d')}; (a)'s settings; the epoch and the env steps "
          f"scan {STEPS_PER_EPOCH} steps, the updates are one iteration's; {repeats} fresh "
          "processes, medians")
    runs = [json.loads(subprocess.run(
        [sys.executable, __file__, "--env", env_name, "--child-split"], check=True,
        capture_output=True, text=True, env={**os.environ, "ROBOJAX_CACHE_DIR": "off"}
    ).stdout.strip().splitlines()[-1]) for _ in range(repeats)]
    print("| program | compile s (each run) | median | share of the epoch |")
    print("|---|---|---|---|")
    epoch = statistics.median(r["epoch"] for r in runs)
    for name in runs[0]:
        median = statistics.median(r[name] for r in runs)
        print(f"| {name} | {' / '.join(f'{r[name]:.1f}' for r in runs)} | {median:.1f} | "
              f"{median / epoch:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["a", "b", "c", "d"], default="a")
    parser.add_argument("--env", default="CartpoleSwingup")
    parser.add_argument("--target", type=float, default=300.0)
    parser.add_argument("--budget", type=int, default=300_000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--num-envs", nargs="+", type=int, default=[SHARED["num_envs"]],
                        help="(a) env counts to measure, each side by side with Brax")
    parser.add_argument("--repeats", type=int, default=2,
                        help="(c) processes per option set, (d) processes")
    parser.add_argument("--child-options", help=argparse.SUPPRESS)  # (c): one measurement
    parser.add_argument("--child-split", action="store_true", help=argparse.SUPPRESS)  # (d)
    args = parser.parse_args()
    if args.child_split:
        print(json.dumps(compile_split(args.env)))
        return
    if args.child_options is not None:
        sps, compile_s, _ = robojax_throughput(f"playground:{args.env}", dict(SHARED),
                                               json.loads(args.child_options))
        print(json.dumps({"compile_s": compile_s, "sps": sps}))
    elif args.part == "a":
        for num_envs in args.num_envs:
            part_a(args.env, num_envs)
    elif args.part == "b":
        part_b(args.env, args.target, args.budget, args.seeds)
    elif args.part == "c":
        part_c(args.env, args.repeats)
    else:
        part_d(args.env, args.repeats)


if __name__ == "__main__":
    main()
