"""Brax SAC on a Playground env, run inside the Brax peer venv (see setup_brax_peer.sh).

Prints one JSON line: eval points (env steps, wall seconds since train() was called, reward,
training/sps of the epoch before it). Stops early, by raising from the progress callback, once
`--target` reward is reached.
"""

import json

from _brax_peer import parse_args, train


def main() -> None:
    args = parse_args("CartpoleSwingup", "sac")
    from brax.training.agents.sac import networks as sac_networks
    from brax.training.agents.sac import train as sac

    network = json.loads(args.network)
    if "hidden_layer_sizes" in network:
        network["hidden_layer_sizes"] = tuple(network["hidden_layer_sizes"])
    train(args, sac.train, sac_networks.make_sac_networks, network)


if __name__ == "__main__":
    main()
