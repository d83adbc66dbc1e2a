"""Is ILD's gradient a descent direction? The loss along the gradient, both ways, at several steps.

A gradient through a contact solver can be huge, noisy or point the wrong way. This script
takes one ILD gradient g at the initial (behaviour-cloned) policy and evaluates the same
loss, same rollout keys, at params - eps * g/|g| and params + eps * g/|g|: a usable gradient
lowers the loss going against it, at least for small eps. It also recomputes the loss
unchanged in a second compiled program: on chaotic rollouts the two differ, and no step size
gives a reliable decrease.

    python experiments/diffsim/grad_direction.py --demo runs/hopper-demo.hdf5 --env hopper \
        --rollout-length 16 --contact-grad-scale 0 --step-grad-clip none
"""

import argparse
from pathlib import Path

import jax
import optax

from robojax import diffsim, envs
from robojax.algos import ild


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, required=True)
    parser.add_argument("--env", default="hopper")
    parser.add_argument("--horizon", type=int, default=256)
    parser.add_argument("--rollout-length", type=int, default=16)
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--contact-grad-scale", type=float, default=1.0)
    parser.add_argument("--step-grad-clip", default="none", help="a float, or none")
    parser.add_argument("--truncation-length", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eps", type=float, nargs="*", default=[1e-5, 1e-4, 1e-3, 1e-2])
    args = parser.parse_args()

    clip = None if args.step_grad_clip == "none" else float(args.step_grad_clip)
    gradients = diffsim.GradientConfig(truncation_length=args.truncation_length,
                                       contact_grad_scale=args.contact_grad_scale,
                                       step_grad_clip=clip)
    cfg = ild.ILDConfig(demo=args.demo, demo_length=args.horizon, episode_length=args.horizon,
                        rollout_length=args.rollout_length, num_envs=args.num_envs,
                        gradients=gradients)
    env = envs.make(args.env)
    train_env, expert = ild.make_train_input(cfg, env)
    state = ild.init(cfg, env, (train_env, expert), jax.random.PRNGKey(args.seed))
    key = jax.random.PRNGKey(args.seed + 1)

    def loss(params):
        return ild.loss_fn(params, cfg, train_env, expert, state, key)[0]

    loss0, grad = jax.jit(jax.value_and_grad(loss))(state.params)
    loss_at = jax.jit(loss)
    norm = optax.global_norm(grad)
    unit = jax.tree.map(lambda g: g / norm, grad)
    recomputed = float(loss_at(state.params))
    print(f"loss {float(loss0):.4f}, recomputed in another program {recomputed:.4f}, "
          f"gradient norm {float(norm):.3g}")
    print("| eps | loss at -g | loss at +g | first-order prediction at -g | descent |")
    print("|---|---|---|---|---|")

    def moved(step):
        return jax.tree.map(lambda p, u: p + step * u, state.params, unit)

    for eps in args.eps:
        down, up = float(loss_at(moved(-eps))), float(loss_at(moved(eps)))
        predicted = float(loss0 - eps * norm)
        print(f"| {eps:g} | {down:.4f} | {up:.4f} | {predicted:.4f} | "
              f"{'yes' if down < min(up, float(loss0)) else 'no'} |")


if __name__ == "__main__":
    main()
