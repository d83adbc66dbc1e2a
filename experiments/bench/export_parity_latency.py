"""Exported policies against the JAX ones: parity, latency at batch 1, and the fixed-rate loop.

    python experiments/bench/export_parity_latency.py [--num-obs 10000] [--calls 2000]

For PPO's per-step Gaussian policy and each BC family (Gaussian MLP; diffusion U-Net,
DDIM-10; flow U-Net, 10 and 1 Euler steps; energy MLP, descent) a policy program with random
weights (BC: To=2, Tp=16, Ta=8; push-t's sizes: 10-d observation, 2-d action) is exported to
ONNX and StableHLO.
- parity: max |JAX - format| of the executed actions over `--num-obs` random observation
  histories with the same noise;
- latency: one observation (batch 1) per call, ONNX Runtime (`--ort-threads`, default 1)
  beside the jitted JAX call in the same process, p50/p99 over `--calls` calls (five blocks
  of each, alternating, each after warm-up calls), and their ratio;
- loop: `robojax.deploy.run` at 500 Hz with the Gaussian policy and at 50 Hz with the
  diffusion policy (a chunk of Ta = 8 steps), planning each chunk synchronously and then
  asynchronously (in the background while the last one executes), counting deadline misses.
Export time (both formats) is printed per family; `--no-unroll` keeps ONNX sampler loops as
Loop nodes (see `robojax.export.formats.onnx`).
"""

import argparse
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from robojax.policies import DiffusionPolicy, EnergyPolicy, FlowPolicy, GaussianPolicy

from robojax.algos import bc
from robojax.core.program import step_program
from robojax.core.types import ArraySpec
from robojax.deploy import Policy, run
from robojax.deploy import contract as contract_io
from robojax.export import FORMATS, formats, io_spec, write_models
from robojax.export.graph import policy_function, signature

OBS, ACT, TO, TP, TA = 10, 2, 2, 16, 8
FAMILIES = {
    "PPO Gaussian MLP, per step": None,
    "BC gaussian MLP": dict(policy="gaussian", gaussian=GaussianPolicy(hidden_sizes=(256, 256))),
    "diffusion U-Net DDIM-10": dict(policy="diffusion", diffusion=DiffusionPolicy()),
    "flow U-Net 10 steps": dict(policy="flow", flow=FlowPolicy()),
    "flow U-Net 1 step": dict(policy="flow", flow=FlowPolicy(), inference_steps=1),
    "energy MLP descent": dict(policy="energy", energy=EnergyPolicy()),
}


def step_policy_program():
    """PPO's policy (a 32-32-32-32 MLP Gaussian, its mean played) behind a normalizer."""
    policy = GaussianPolicy(hidden_sizes=(32, 32, 32, 32))
    params = policy.init(jax.random.PRNGKey(0), ArraySpec((OBS,)), ArraySpec((ACT,)))
    mean, std = jnp.linspace(-1, 1, OBS), jnp.full(OBS, 2.0)
    return step_program(lambda obs: policy.mode(params, (obs - mean) / std))


def make_program(fields):
    return step_policy_program() if fields is None else bc_program(**fields)


def bc_program(**fields):
    cfg = bc.BCConfig(chunks=bc.ChunkConfig(TO, TP, TA), **fields)
    params = cfg.make_policy().init(jax.random.PRNGKey(0), ArraySpec((TO * OBS,)),
                                    ArraySpec((TP, ACT)))
    leaves, tree = jax.tree.flatten(params)  # zero-initialized output layers made non-trivial
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    params = jax.tree.unflatten(tree, [x + 0.05 * jax.random.normal(k, x.shape, x.dtype)
                                       for x, k in zip(leaves, keys, strict=True)])
    state = bc.TrainState(params, params, None, jnp.zeros(OBS), jnp.ones(OBS),
                          jax.random.PRNGKey(2), jnp.zeros((), jnp.int32), ACT)
    return bc.program(cfg, state)


def random_inputs(sig, program, batch, rng):
    inputs = {name: rng.standard_normal((batch, *shape), np.float32)
              for name, shape in sig.inputs.items()}
    for name, spec in program.noise.items():
        if spec.kind == "uniform":
            inputs["noise_" + name] = rng.uniform(-1, 1, (batch, *spec.shape)).astype(np.float32)
        if spec.kind == "gumbel":
            inputs["noise_" + name] = rng.gumbel(size=(batch, *spec.shape)).astype(np.float32)
    return inputs


def export_dir(program, directory: Path, unroll: bool) -> tuple[Path, float]:
    """Write both formats and a minimal contract, as `robojax export` does for a run."""
    sig = signature(program, OBS, ACT)
    policy = policy_function(program, -np.ones(ACT), np.ones(ACT))
    start = time.perf_counter()
    files = write_models(policy, sig, directory, FORMATS, unroll=unroll)
    seconds = time.perf_counter() - start
    contract_io.write(directory, {
        "version": contract_io.VERSION, "env": {"name": "bench"}, "files": files,
        "observation": {"size": OBS, "history": program.n_obs_steps},
        "action": {"size": ACT, "ctrl_low": [-1.0] * ACT, "ctrl_high": [1.0] * ACT,
                   "per_call": program.n_action_steps},
        "control_dt": 0.02, "sampler": program.sampler, **io_spec(program, sig)})
    return directory, seconds


def parity(program, directory: Path, num_obs: int, rng) -> tuple[float, float]:
    sig = signature(program, OBS, ACT)
    jitted = jax.jit(policy_function(program, -np.ones(ACT), np.ones(ACT)))
    onnx = Policy.load(directory, threads=2)
    hlo = formats.load_stablehlo(directory / "policy.stablehlo")
    worst_onnx = worst_hlo = 0.0
    for start in range(0, num_obs, 1000):
        inputs = random_inputs(sig, program, min(1000, num_obs - start), rng)
        expected = np.asarray(jitted(*inputs.values())[0])
        noise = {k: v for k, v in inputs.items() if k != "obs"}
        got = onnx.plan(inputs["obs"], noise)[0]
        worst_onnx = max(worst_onnx, float(np.abs(got - expected).max()))
        worst_hlo = max(worst_hlo, float(np.abs(np.asarray(hlo(*inputs.values())[0])
                                                - expected).max()))
    return worst_onnx, worst_hlo


def latency(program, directory: Path, calls: int, rng, threads: int
            ) -> tuple[np.ndarray, np.ndarray]:
    sig = signature(program, OBS, ACT)
    jitted = jax.jit(policy_function(program, -np.ones(ACT), np.ones(ACT)))
    onnx = Policy.load(directory, threads=threads)
    inputs = random_inputs(sig, program, 1, rng)
    noise = {k: v for k, v in inputs.items() if k != "obs"}
    device_inputs = [jnp.asarray(v) for v in inputs.values()]

    def time_calls(call, n):
        for _ in range(20):
            call()
        out = np.empty(n)
        for i in range(n):
            start = time.perf_counter()
            call()
            out[i] = time.perf_counter() - start
        return out * 1e3

    # Alternating blocks, so that neither side always runs just after the other's threads.
    blocks = [(time_calls(lambda: jax.block_until_ready(jitted(*device_inputs)), calls // 5),
               time_calls(lambda: onnx.plan(inputs["obs"], noise), calls // 5))
              for _ in range(5)]
    return tuple(np.concatenate(side) for side in zip(*blocks, strict=True))


def loop(directory: Path, rate_hz: float, steps: int, asynchronous: bool) -> dict:
    policy = Policy.load(directory, threads=1, asynchronous=asynchronous)
    rng = np.random.default_rng(0)
    observations = rng.standard_normal((256, OBS)).astype(np.float32)
    policy.act(observations[0])  # the first plan (and ONNX Runtime's warm-up) before the clock
    count = iter(range(1, 10**9))
    stats = run(policy, lambda: observations[next(count) % 256], lambda command: None,
                rate_hz, steps=steps)
    return {**stats.summary(), "starved": policy.starved, "lead": policy.lead,
            "plan_p99_ms": float(np.percentile(policy.plan_seconds, 99) * 1e3)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--num-obs", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--loop-steps", type=int, default=10_000)
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    parser.add_argument("--ort-threads", type=int, default=1,
                        help="ONNX Runtime's intra-op threads in the latency rows")
    parser.add_argument("--no-unroll", action="store_true",
                        help="keep the ONNX sampler a Loop node (fast conversion, slow runtime)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    root = Path(tempfile.mkdtemp())
    dirs = {}
    print(f"jax {jax.__version__}, backend {jax.default_backend()}")
    print("| family | export s | max abs ONNX | max abs StableHLO | JAX p50 / p99 ms "
          "| ONNX p50 / p99 ms | ONNX / JAX p50 |")
    print("|---|---|---|---|---|---|---|")
    for name in args.families:
        program = make_program(FAMILIES[name])
        directory = root / name.replace(" ", "_")
        directory.mkdir()
        _, export_s = export_dir(program, directory, unroll=not args.no_unroll)
        dirs[name] = directory
        worst_onnx, worst_hlo = parity(program, directory, args.num_obs, rng)
        jax_ms, onnx_ms = latency(program, directory, args.calls, rng, args.ort_threads)
        p = lambda x: f"{np.percentile(x, 50):.3f} / {np.percentile(x, 99):.3f}"  # noqa: E731
        print(f"| {name} | {export_s:.1f} | {worst_onnx:.1e} | {worst_hlo:.1e} | {p(jax_ms)} "
              f"| {p(onnx_ms)} | {np.median(onnx_ms) / np.median(jax_ms):.2f} |", flush=True)
    loops = (("PPO Gaussian MLP, per step", 500.0, False),
             ("diffusion U-Net DDIM-10", 50.0, False), ("diffusion U-Net DDIM-10", 50.0, True))
    for name, rate, asynchronous in loops:
        if name in dirs:
            mode = "asynchronous" if asynchronous else "synchronous"
            print(f"loop {name} at {rate:g} Hz, {mode} planning, {args.loop_steps} steps:",
                  loop(dirs[name], rate, args.loop_steps, asynchronous), flush=True)


if __name__ == "__main__":
    main()
