"""Brax SAC on a Playground env, run inside the Brax peer venv (see setup_brax_peer.sh).

Prints one JSON line: eval points (env steps, wall seconds since train() was called, reward,
training/sps of the epoch before it). Stops early, by raising from the progress callback, once
`--target` reward is reached.
"""

import argparse
import functools
import json
import time


class _Reached(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="CartpoleSwingup")
    parser.add_argument("--config", required=True, help="JSON of brax sac.train kwargs")
    parser.add_argument("--network", default="{}", help="JSON of make_sac_networks kwargs")
    parser.add_argument("--target", type=float, default=None)
    args = parser.parse_args()

    import jax
    from brax.training.agents.sac import networks as sac_networks
    from brax.training.agents.sac import train as sac
    from mujoco_playground import registry, wrapper

    env = registry.load(args.env, config_overrides={"impl": "jax"})
    net = json.loads(args.network)
    if "hidden_layer_sizes" in net:
        net["hidden_layer_sizes"] = tuple(net["hidden_layer_sizes"])
    points, start = [], time.perf_counter()

    def progress(step, metrics):
        now = time.perf_counter() - start
        points.append({"env_steps": int(step), "wall_time_s": now,
                       "reward": float(metrics.get("eval/episode_reward", float("nan"))),
                       "sps": float(metrics.get("training/sps", float("nan")))})
        if args.target is not None and points[-1]["reward"] >= args.target and step > 0:
            raise _Reached

    try:
        sac.train(environment=env, wrap_env_fn=wrapper.wrap_for_brax_training,
                  network_factory=functools.partial(sac_networks.make_sac_networks, **net),
                  progress_fn=progress, **json.loads(args.config))
    except _Reached:
        pass
    print(json.dumps({"jax": jax.__version__, "points": points}))


if __name__ == "__main__":
    main()
