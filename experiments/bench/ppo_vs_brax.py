"""robojax PPO vs Brax PPO on the same Playground env (CartpoleBalance, impl "jax"), one run.

(a) throughput: identical hyperparameters and network sizes on both sides; training env steps/s
    at steady state and compile time (first epoch minus a steady epoch, measured the same way).
(b) time to reward: wall seconds from the start of training (compilation included) to eval
    reward >= 800, robojax's defaults vs Brax with Playground's published config scaled down.

Brax runs in its peer venv (experiments/bench/setup_brax_peer.sh), robojax in this process.

    python experiments/bench/ppo_vs_brax.py --part a
    python experiments/bench/ppo_vs_brax.py --part b --brax-envs 1024
"""

import argparse
import dataclasses
import functools
import os
import subprocess
import sys
import time
from pathlib import Path

from _brax_peer import run_peer

HERE = Path(__file__).resolve().parent

# (a): the same PPO on both sides. One unroll per env per iteration (Brax: batch_size *
# num_minibatches == num_envs), so an "iteration" means the same work in both.
SHARED = dict(num_envs=512, unroll_length=30, num_minibatches=8, num_epochs=4,
              learning_rate=1e-3, entropy_cost=1e-2, discount=0.995, reward_scaling=10.0,
              gae_lambda=0.95, clip_epsilon=0.3, max_grad_norm=1.0)
NETWORK = dict(policy_hidden_layer_sizes=[64, 64], value_hidden_layer_sizes=[128, 128],
               activation="tanh")
ITERS_PER_EPOCH = 8
EPOCHS = 5


def brax_kwargs_shared(s: dict) -> dict:
    steps_per_epoch = s["num_envs"] * s["unroll_length"] * ITERS_PER_EPOCH
    return dict(num_timesteps=steps_per_epoch * EPOCHS, num_evals=EPOCHS + 1,
                num_envs=s["num_envs"], batch_size=s["num_envs"] // s["num_minibatches"],
                num_minibatches=s["num_minibatches"], unroll_length=s["unroll_length"],
                num_updates_per_batch=s["num_epochs"], learning_rate=s["learning_rate"],
                entropy_cost=s["entropy_cost"], discounting=s["discount"],
                reward_scaling=s["reward_scaling"], gae_lambda=s["gae_lambda"],
                clipping_epsilon=s["clip_epsilon"], max_grad_norm=s["max_grad_norm"],
                normalize_observations=True, episode_length=1000, num_eval_envs=128,
                deterministic_eval=True, seed=0)


def run_brax(kwargs: dict, network: dict, target: float | None = None) -> dict:
    return run_peer("brax_ppo_peer.py", kwargs, network, target=target)


def brax_epoch_figures(result: dict, steps_per_epoch: int) -> tuple[float, float]:
    """(steady steps/s, compile s) from Brax's per-epoch training/sps."""
    sps = [p["sps"] for p in result["points"][1:]]
    steady = sorted(sps[1:])[len(sps[1:]) // 2]
    compile_s = steps_per_epoch / sps[0] - steps_per_epoch / steady
    return steady, compile_s


def robojax_throughput(shared: dict) -> tuple[float, float]:
    """(steady steps/s, compile s) of robojax PPO with `shared` settings, epochs as Brax runs."""
    import jax
    from robojax.envs import make as make_env

    from robojax.algos import ppo

    cfg = ppo.PPOConfig(**{k: v for k, v in shared.items() if k != "unroll_length"},
                        rollout_length=shared["unroll_length"],
                        policy_hidden_sizes=tuple(NETWORK["policy_hidden_layer_sizes"]),
                        value_hidden_sizes=tuple(NETWORK["value_hidden_layer_sizes"]),
                        activation=NETWORK["activation"], episode_length=1000)
    env = make_env("playground:CartpoleBalance")
    train_env = ppo.make_train_input(cfg, env)
    state = ppo.init(cfg, env, train_env, jax.random.PRNGKey(0))

    @functools.partial(jax.jit, donate_argnums=0)
    def epoch(state):
        step = functools.partial(ppo.train_iteration, cfg, train_env)
        return jax.lax.scan(lambda s, _: step(s), state, None, length=ITERS_PER_EPOCH)

    times = []
    for _ in range(EPOCHS):
        t0 = time.perf_counter()
        state, metrics = epoch(state)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    steps_per_epoch = cfg.steps_per_iteration() * ITERS_PER_EPOCH
    steady_time = sorted(times[1:])[len(times[1:]) // 2]
    return steps_per_epoch / steady_time, times[0] - steady_time


def part_a(num_envs: int) -> None:
    import jax

    shared = {**SHARED, "num_envs": num_envs}
    steps_per_epoch = num_envs * shared["unroll_length"] * ITERS_PER_EPOCH
    ours_sps, ours_compile = robojax_throughput(shared)
    # Brax restarts each env from its first state; robojax by default from fresh random ones.
    same_sps, same_compile = robojax_throughput({**shared, "reset_refresh": 0})
    brax = run_brax(brax_kwargs_shared(shared), NETWORK)
    brax_sps, brax_compile = brax_epoch_figures(brax, steps_per_epoch)
    print(f"# (a) PPO throughput, Playground CartpoleBalance (impl jax), {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}; robojax on jax {jax.__version__}, Brax 0.14.2 on jax "
          f"{brax['jax']}, backend {jax.default_backend()}")
    print(f"# shared settings: {shared}, networks {NETWORK}, {ITERS_PER_EPOCH} iterations/epoch")
    print("| side | training env steps/s | compile s |")
    print("|---|---|---|")
    print(f"| robojax (fresh random restarts, default) | {ours_sps:,.0f} | {ours_compile:.1f} |")
    print(f"| robojax (reset_refresh=0: Brax's restarts) | {same_sps:,.0f} | "
          f"{same_compile:.1f} |")
    print(f"| Brax PPO | {brax_sps:,.0f} | {brax_compile:.1f} |")
    print(f"| ratio robojax default/Brax | {ours_sps / brax_sps:.2f}x | "
          f"{ours_compile / brax_compile:.2f}x |")
    print(f"| ratio robojax reset_refresh=0/Brax | {same_sps / brax_sps:.2f}x | "
          f"{same_compile / brax_compile:.2f}x |")


def first_reaching(points: list[dict], target: float) -> dict | None:
    return next((p for p in points if p["env_steps"] > 0 and p["reward"] >= target), None)


def _robojax_to_target(target: float, cache_dir: Path,
                       run_dir: Path) -> tuple[dict | None, dict, float]:
    """One `robojax train` with defaults, its compile cache in `cache_dir`: (first eval row at
    the target, last row, whole-run seconds)."""
    from robojax.io.metrics import read_metrics

    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "robojax.cli", "train", "--env",
                          "playground:CartpoleBalance", "--run-dir", str(run_dir), "--no-video",
                          "--no-progress", "--ppo.num-evals", "20"], capture_output=True,
                         text=True, env={**os.environ, "ROBOJAX_CACHE_DIR": str(cache_dir)})
    total = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"robojax train failed:\n{out.stderr[-3000:]}")
    rows = [{"env_steps": r["env_steps"], "wall_time_s": r["wall_time_s"],
             "reward": r["eval/episode_reward"]} for r in read_metrics(run_dir / "metrics.csv")]
    return first_reaching(rows, target), rows[-1], total


def part_b(brax_envs: list[int], target: float, budget: int, cold_only: bool) -> None:
    import tempfile

    # Cold: an empty compile cache, as on a first run; warm: the same run again, as users get
    # every run after the first (robojax keeps its compile cache on by default).
    tmp = Path(tempfile.mkdtemp())
    print(f"# (b) wall time to eval reward >= {target:.0f}, Playground CartpoleBalance, "
          f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print("| side | config | env steps | wall s to target | final reward |")
    print("|---|---|---|---|---|")
    envs = dataclasses.asdict(_default_cfg())["num_envs"]
    for cache in ("cold",) if cold_only else ("cold", "warm"):
        hit, last, total = _robojax_to_target(target, tmp / "cache", tmp / cache)
        print(f"| robojax, {cache} compile cache | defaults ({envs} envs) | "
              f"{hit['env_steps'] if hit else '-'} | "
              f"{hit['wall_time_s'] if hit else float('nan'):.1f} | "
              f"{last['reward']:.1f} (run {total:.0f} s) |", flush=True)
    for n in brax_envs:
        kwargs = dict(num_timesteps=budget, num_evals=max(2, budget // 250_000),
                      reward_scaling=10.0,
                      episode_length=1000, normalize_observations=True, action_repeat=1,
                      unroll_length=30, num_minibatches=32, num_updates_per_batch=16,
                      discounting=0.995, learning_rate=1e-3, entropy_cost=1e-2, num_envs=n,
                      batch_size=n // 2, num_resets_per_eval=10, seed=0)
        result = run_brax(kwargs, {}, target=target)
        hit = first_reaching(result["points"], target)
        last = result["points"][-1]
        print(f"| Brax PPO | Playground config, {n} envs, batch {n // 2} | "
              f"{hit['env_steps'] if hit else '-'} | "
              f"{hit['wall_time_s'] if hit else float('nan'):.1f} | {last['reward']:.1f} |",
              flush=True)


def _default_cfg():
    from robojax.algos.ppo import PPOConfig

    return PPOConfig()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["a", "b", "both"], default="both")
    parser.add_argument("--brax-envs", nargs="+", type=int, default=[1024, 256])
    parser.add_argument("--num-envs", type=int, default=SHARED["num_envs"],
                        help="envs on both sides in (a)")
    parser.add_argument("--target", type=float, default=800.0)
    parser.add_argument("--budget", type=int, default=10_000_000,
                        help="Brax's env-step budget in (b); it stops early at the target")
    parser.add_argument("--cold-only", action="store_true",
                        help="(b) robojax from an empty compile cache only, not again warm")
    args = parser.parse_args()
    if args.part in ("a", "both"):
        part_a(args.num_envs)
    if args.part in ("b", "both"):
        part_b(args.brax_envs, args.target, args.budget, args.cold_only)


if __name__ == "__main__":
    main()
