"""Brax PPO on a Playground env, run inside the Brax peer venv (see setup_brax_peer.sh).

Prints one JSON line: eval points (env steps, wall seconds since train() was called, reward,
training/sps of the epoch before it). Stops early, by raising from the progress callback, once
`--target` reward is reached.
"""

import json

from _brax_peer import parse_args, train


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
    args = parse_args("CartpoleBalance", "ppo")
    import jax

    _shim_device_put_replicated(jax)
    from brax.training.agents.ppo import networks as ppo_networks
    from brax.training.agents.ppo import train as ppo

    network = json.loads(args.network)
    for key in ("policy_hidden_layer_sizes", "value_hidden_layer_sizes"):
        if key in network:
            network[key] = tuple(network[key])
    if network.pop("activation", None) == "tanh":
        import flax.linen as nn

        network["activation"] = nn.tanh
    train(args, ppo.train, ppo_networks.make_ppo_networks, network)


if __name__ == "__main__":
    main()
