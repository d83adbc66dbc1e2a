"""Brax PPO on a Playground env, run inside the Brax peer venv (see setup_brax_peer.sh).

Prints one JSON line: eval points (env steps, wall seconds since train() was called, reward,
training/sps of the epoch before it). Stops early, by raising from the progress callback, once
`--target` reward is reached.
"""

import json

from _brax_peer import parse_args, train


def main() -> None:
    args = parse_args("CartpoleBalance", "ppo")
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
