"""Gradient through an H-step MJX rollout: robojax's differentiable rollout vs a plain
`jax.grad` through `lax.scan(mjx.step)`, side by side in one process.

Both differentiate the same loss of a linear tanh policy's weights, on the same model with the
same one-iteration constraint solver. Reports compile time, steady-state gradient steps/s, the
ratio, and the compiled program's temporary memory with and without remat for several H.

    python experiments/bench/diffsim_overhead.py --env cartpole-swingup --batch 64 256
    python experiments/bench/diffsim_overhead.py --memory --horizons 32 128 512
"""

import argparse
import time

import jax
import jax.numpy as jnp
from mujoco import mjx

from robojax import diffsim, envs
from robojax.core.differentiable import differentiable, fixed_step_linesearch
from robojax.core.wrappers import VmapWrapper


def robojax_loss(env, batch: int, horizon: int, cfg: diffsim.GradientConfig):
    batched = VmapWrapper(differentiable(env), batch)
    first = jax.jit(batched.reset)(jax.random.PRNGKey(0))

    def loss(w):
        act = lambda obs, key: jnp.tanh(obs @ w)  # noqa: E731
        _, steps = diffsim.rollout(cfg, batched, act, first, jax.random.PRNGKey(1), horizon)
        return jnp.mean(steps.final_obs**2)

    return loss


def raw_loss(env, batch: int, horizon: int):
    """The reference: vmap(mjx.step) in a lax.scan, observations computed by the task."""
    twin = differentiable(env)
    model = twin.mjx_model
    first = jax.jit(VmapWrapper(twin, batch).reset)(jax.random.PRNGKey(0))
    low, high = twin._ctrl_low, twin._ctrl_high
    observe = jax.vmap(lambda d: twin.observe(d, jax.random.PRNGKey(0)))

    def loss(w):
        def step(data, _):
            action = jnp.tanh(observe(data) @ w)
            ctrl = low + (action + 1.0) * 0.5 * (high - low)
            for _ in range(twin.n_substeps):
                data = jax.vmap(lambda d, c: mjx.step(model, d.replace(ctrl=c)))(data, ctrl)
            return data, observe(data)

        with fixed_step_linesearch():
            _, obs = jax.lax.scan(step, first.data, None, length=horizon)
        return jnp.mean(obs**2)

    return loss


def time_grad(loss, w, repeats: int) -> tuple[float, float]:
    grad = jax.jit(jax.grad(loss))
    start = time.perf_counter()
    jax.block_until_ready(grad(w))
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(grad(w))
    return compile_s, repeats / (time.perf_counter() - start)


def temp_bytes(loss, w) -> int:
    compiled = jax.jit(jax.grad(loss)).lower(w).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="cartpole-swingup")
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--horizon", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory", action="store_true", help="report remat memory instead")
    parser.add_argument("--horizons", type=int, nargs="+", default=[32, 128, 512])
    args = parser.parse_args()
    env = envs.make(args.env)
    w = jnp.full((env.observation_spec.size, env.action_spec.size), 0.1)
    print(f"{args.env} on {jax.devices()[0].platform}, horizon {args.horizon}")
    if args.memory:
        print(f"{'H':>5} {'no remat MiB':>13} {'remat MiB':>10} {'ratio':>6}")
        for horizon in args.horizons:
            plain = temp_bytes(robojax_loss(env, 64, horizon, diffsim.GradientConfig(
                remat=False)), w)
            remat = temp_bytes(robojax_loss(env, 64, horizon, diffsim.GradientConfig()), w)
            print(f"{horizon:>5} {plain / 2**20:>13.1f} {remat / 2**20:>10.1f} "
                  f"{remat / plain:>6.2f}", flush=True)
        return
    print(f"{'batch':>6} {'side':>8} {'compile s':>10} {'grad/s':>8} {'env steps/s':>12}")
    for batch in args.batch:
        results = {}
        for side, loss in (("raw", raw_loss(env, batch, args.horizon)),
                           ("robojax", robojax_loss(env, batch, args.horizon,
                                                    diffsim.GradientConfig(remat=False)))):
            compile_s, rate = time_grad(loss, w, args.repeats)
            results[side] = rate
            print(f"{batch:>6} {side:>8} {compile_s:>10.1f} {rate:>8.2f} "
                  f"{rate * batch * args.horizon:>12,.0f}", flush=True)
        print(f"{batch:>6} {'ratio':>8} {'':>10} {results['robojax'] / results['raw']:>8.2f}")


if __name__ == "__main__":
    main()
