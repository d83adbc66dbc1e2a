"""Policy inference latency and training speed: robojax (JAX) vs a PyTorch reference of the same
networks and samplers, one run, same machine.

Per action chunk: latency at batch 1 (p50 / p99 over --repeats calls) and throughput at
--big-batch, for DDPM-100, DDIM-10, flow-10, flow-1 (U-Net denoisers), energy descent 2 steps
and energy DFO (energy MLP); and DDPM training gradient steps/s of the U-Net. JAX compile time
is reported apart from the steady state. The PyTorch side runs in its peer venv
(experiments/bench/setup_torch_peer.sh).

    python experiments/bench/policy_latency.py
"""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from robojax.policies.diffusion import DenoiserConfig

from robojax import policies
from robojax.core.types import ArraySpec

HERE = Path(__file__).resolve().parent
PEER = Path(os.environ.get("TORCH_PEER_VENV", HERE / ".torch-venv")) / "bin" / "python"
METHODS = ["DDPM-100", "DDIM-10", "flow-10", "flow-1", "energy descent-2", "energy DFO"]


def jax_samplers(cfg: dict) -> dict:
    den = DenoiserConfig(down_dims=tuple(cfg["down_dims"]))
    obs, chunk = ArraySpec((cfg["cond_dim"],)), ArraySpec((cfg["horizon"], cfg["action_dim"]))
    diffusion = policies.DiffusionPolicy(denoiser=den, num_train_steps=100)
    flow = policies.FlowPolicy(denoiser=den)
    energy = policies.EnergyPolicy()
    dfo = dataclasses.replace(energy, inference="dfo")
    key = jax.random.PRNGKey(0)
    p_diff, p_flow = diffusion.init(key, obs, chunk), flow.init(key, obs, chunk)
    p_energy = energy.init(key, obs, chunk)
    return {
        "DDPM-100": lambda o, k: diffusion.sample(p_diff, o, k, steps=100, sampler="ddpm"),
        "DDIM-10": lambda o, k: diffusion.sample(p_diff, o, k, steps=10, sampler="ddim"),
        "flow-10": lambda o, k: flow.sample(p_flow, o, k, steps=10),
        "flow-1": lambda o, k: flow.sample(p_flow, o, k, steps=1),
        "energy descent-2": lambda o, k: energy.sample(p_energy, o, k, steps=2),
        "energy DFO": lambda o, k: dfo.sample(p_energy, o, k, steps=3),
    }


def time_calls(fn, args_fn, repeats: int) -> tuple[float, list[float]]:
    start = time.perf_counter()
    jax.block_until_ready(fn(*args_fn(0)))
    compile_s = time.perf_counter() - start
    times = []
    for i in range(repeats):
        args = args_fn(i + 1)
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return compile_s, times


def jax_train_steps_per_s(cfg: dict) -> tuple[float, float]:
    den = DenoiserConfig(down_dims=tuple(cfg["down_dims"]))
    policy = policies.DiffusionPolicy(denoiser=den, num_train_steps=100)
    params = policy.init(jax.random.PRNGKey(0), ArraySpec((cfg["cond_dim"],)),
                         ArraySpec((cfg["horizon"], cfg["action_dim"])))
    opt = optax.adamw(1e-4)
    bs = cfg["train_batch"]
    batch = {"obs": jax.random.normal(jax.random.PRNGKey(1), (bs, cfg["cond_dim"])),
             "actions": jax.random.uniform(jax.random.PRNGKey(2), (bs, cfg["horizon"],
                                                                   cfg["action_dim"]), minval=-1)}

    def step(state, key):
        params, opt_state = state
        grads = jax.grad(lambda p: policy.loss(p, batch, key)[0])(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    # Steps run inside a scan, as the trainer runs them (robojax.algos.bc.train_iteration):
    # XLA:CPU compiles loop bodies differently from a lone call.
    per_call = cfg["train_steps_per_call"]

    @jax.jit
    def steps(params, opt_state, key):
        return jax.lax.scan(step, (params, opt_state), jax.random.split(key, per_call))[0]

    state = (params, opt.init(params))
    compile_s, times = time_calls(steps, lambda i: (*state, jax.random.PRNGKey(i)),
                                  max(1, cfg["train_repeats"] // per_call))
    return per_call / float(np.median(times)), compile_s


def torch_peer(cfg: dict) -> dict:
    """The PyTorch side's measurements (its own venv and process)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([str(PEER), str(HERE / "torch_policy_peer.py"), "--config",
                           json.dumps(cfg)], capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.exit(f"PyTorch peer failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--big-batch", type=int, default=4096)
    parser.add_argument("--big-repeats", type=int, default=2)
    parser.add_argument("--methods", nargs="*", default=METHODS)
    parser.add_argument("--down-dims", nargs="+", type=int, default=[64, 128, 256])
    parser.add_argument("--train-rounds", type=int, default=3,
                        help="training speed is measured this many times, the two sides "
                             "alternating, and the median ratio reported (a shared host's "
                             "speed drifts between the two processes)")
    parser.add_argument("--torch-device", default=None,
                        help="cpu or cuda; default: cuda when jax runs on a GPU")
    args = parser.parse_args()
    device = args.torch_device or ("cuda" if jax.default_backend() == "gpu" else "cpu")
    cfg = {"horizon": 16, "action_dim": 2, "cond_dim": 2 * 10, "down_dims": args.down_dims,
           "repeats": args.repeats, "big_batch": args.big_batch, "big_repeats": args.big_repeats,
           "methods": args.methods, "train_batch": 256, "train_repeats": 20,
           "train_steps_per_call": 5,
           "threads": os.cpu_count(), "device": device}
    if not PEER.exists():
        sys.exit(f"PyTorch peer venv missing: run {HERE / 'setup_torch_peer.sh'} first.")
    torch_out = torch_peer(cfg)

    samplers = jax_samplers(cfg)
    rows = []
    for name in args.methods:
        fn = jax.jit(samplers[name])
        obs1, big = jnp.zeros((1, cfg["cond_dim"])), jnp.zeros((args.big_batch, cfg["cond_dim"]))
        compile_s, times = time_calls(fn, lambda i, o=obs1: (o, jax.random.PRNGKey(i)),
                                      args.repeats)
        _, big_times = time_calls(fn, lambda i, o=big: (o, jax.random.PRNGKey(i)),
                                  args.big_repeats)
        t_lat = np.array(torch_out["latency"][name]) * 1e3
        j_lat = np.array(times) * 1e3
        rows.append((name, np.median(j_lat), np.percentile(j_lat, 99), np.median(t_lat),
                     np.percentile(t_lat, 99), compile_s,
                     args.big_batch / float(np.median(big_times)),
                     torch_out["throughput"][name]))
    jax_train, jax_train_compile = jax_train_steps_per_s(cfg)

    print(f"# policy inference, chunk {cfg['horizon']}x{cfg['action_dim']}, cond "
          f"{cfg['cond_dim']}, U-Net {tuple(args.down_dims)}; jax {jax.__version__} "
          f"({jax.default_backend()}), torch {torch_out['torch']} ({torch_out['device']}), "
          f"{os.cpu_count()} threads")
    print("| method | robojax p50 ms | p99 ms | torch p50 ms | p99 ms | torch/robojax (p50) | "
          f"robojax compile s | robojax chunks/s @{args.big_batch} | torch chunks/s | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, jp50, jp99, tp50, tp99, comp, jthr, tthr in rows:
        print(f"| {name} | {jp50:.2f} | {jp99:.2f} | {tp50:.2f} | {tp99:.2f} | "
              f"{tp50 / jp50:.1f}x | {comp:.1f} | {jthr:,.0f} | {tthr:,.0f} | "
              f"{jthr / tthr:.2f}x |")
    rounds = [(jax_train, torch_out["train_steps_per_s"])]
    for _ in range(args.train_rounds - 1):
        torch_train = torch_peer({**cfg, "methods": []})["train_steps_per_s"]
        rounds.append((jax_train_steps_per_s(cfg)[0], torch_train))
    print(f"\nDDPM training, U-Net, batch {cfg['train_batch']} (robojax compile "
          f"{jax_train_compile:.1f} s), grad steps/s per round, robojax vs torch:")
    for i, (jax_rate, torch_rate) in enumerate(rounds):
        print(f"  round {i + 1}: {jax_rate:.2f} vs {torch_rate:.2f} ({jax_rate / torch_rate:.2f}x)")
    ratios = [j / t for j, t in rounds]
    print(f"median ratio {np.median(ratios):.2f}x over {len(rounds)} rounds")


if __name__ == "__main__":
    main()
