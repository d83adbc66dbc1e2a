"""Brax PPO on a Playground env, run inside the Brax peer venv (see setup_brax_peer.sh).

Prints one JSON line: eval points (env steps, wall seconds since train() was called, reward),
per-epoch wall times, and the time of the first training epoch (which includes compilation).
Stops early, by raising from the progress callback, once `--target` reward is reached.
"""

import argparse
import functools
import json
import time


class _Reached(Exception):
    pass


def _shim_device_put_replicated(jax) -> None:
    """Brax 0.14.2's PPO calls `jax.device_put_replicated`, which jax 0.8 removed. On newer jax
    (the GPU machine's), stand in for it: stack one copy per device and let pmap shard them."""
    if hasattr(jax, "device_put_replicated"):
        return
    import jax.numpy as jnp

    def device_put_replicated(tree, devices):
        return jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * len(devices)), tree)

    jax.device_put_replicated = device_put_replicated


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="CartpoleBalance")
    parser.add_argument("--config", required=True, help="JSON of brax ppo.train kwargs")
    parser.add_argument("--network", default="{}", help="JSON of make_ppo_networks kwargs")
    parser.add_argument("--target", type=float, default=None)
    args = parser.parse_args()

    import jax

    _shim_device_put_replicated(jax)
    from brax.training.agents.ppo import networks as ppo_networks
    from brax.training.agents.ppo import train as ppo
    from mujoco_playground import registry, wrapper

    env = registry.load(args.env, config_overrides={"impl": "jax"})
    kwargs = json.loads(args.config)
    net = json.loads(args.network)
    for key in ("policy_hidden_layer_sizes", "value_hidden_layer_sizes"):
        if key in net:
            net[key] = tuple(net[key])
    if net.pop("activation", None) == "tanh":
        import flax.linen as nn

        net["activation"] = nn.tanh
    points, start = [], time.perf_counter()

    def progress(step, metrics):
        now = time.perf_counter() - start
        points.append({"env_steps": int(step), "wall_time_s": now,
                       "reward": float(metrics.get("eval/episode_reward", float("nan"))),
                       "sps": float(metrics.get("training/sps", float("nan")))})
        if args.target is not None and points[-1]["reward"] >= args.target and step > 0:
            raise _Reached

    try:
        ppo.train(environment=env, wrap_env_fn=wrapper.wrap_for_brax_training,
                  network_factory=functools.partial(ppo_networks.make_ppo_networks, **net),
                  progress_fn=progress, **kwargs)
    except _Reached:
        pass
    print(json.dumps({"jax": jax.__version__, "points": points}))


if __name__ == "__main__":
    main()
