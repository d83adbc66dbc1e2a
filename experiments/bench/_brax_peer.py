"""What the Brax peer scripts (brax_ppo_peer.py, brax_sac_peer.py) share: inside the Brax peer
venv, their flags, the Playground env, and training with a progress callback that records the
learning curve and stops once `--target` reward is reached (one JSON line out); on the robojax
side, `run_peer`, which launches one and reads that line. Standard library only."""

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path


class _Reached(Exception):
    pass


def parse_args(default_env: str, algo: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default=default_env)
    parser.add_argument("--config", required=True, help=f"JSON of brax {algo}.train kwargs")
    parser.add_argument("--network", default="{}",
                        help=f"JSON of make_{algo}_networks kwargs")
    parser.add_argument("--target", type=float, default=None)
    return parser.parse_args()


def _shim_device_put_replicated(jax) -> None:
    """Brax 0.14.2's PPO and SAC call `jax.device_put_replicated`, which jax 0.8 removed. On
    newer jax (the GPU machine's), stand in for it: stack one copy per device and let pmap shard
    them."""
    if hasattr(jax, "device_put_replicated"):
        return
    import jax.numpy as jnp

    def device_put_replicated(tree, devices):
        return jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * len(devices)), tree)

    jax.device_put_replicated = device_put_replicated


def train(args: argparse.Namespace, train_fn, make_networks, network: dict) -> None:
    """Run `train_fn` (brax's `ppo.train` or `sac.train`) on `args.env`; print the eval points
    (env steps, wall seconds since the call, reward, training/sps) as JSON."""
    import jax
    from mujoco_playground import registry, wrapper

    _shim_device_put_replicated(jax)

    env = registry.load(args.env, config_overrides={"impl": "jax"})
    points, start = [], time.perf_counter()

    def progress(step, metrics):
        now = time.perf_counter() - start
        points.append({"env_steps": int(step), "wall_time_s": now,
                       "reward": float(metrics.get("eval/episode_reward", float("nan"))),
                       "sps": float(metrics.get("training/sps", float("nan")))})
        if args.target is not None and points[-1]["reward"] >= args.target and step > 0:
            raise _Reached

    try:
        train_fn(environment=env, wrap_env_fn=wrapper.wrap_for_brax_training,
                 network_factory=functools.partial(make_networks, **network),
                 progress_fn=progress, **json.loads(args.config))
    except _Reached:
        pass
    print(json.dumps({"jax": jax.__version__, "points": points}))


PEER = Path(os.environ.get("BRAX_PEER_VENV", Path(__file__).resolve().parent / ".brax-venv")) \
    / "bin" / "python"
"""The peer venv's interpreter (setup_brax_peer.sh builds it)."""


def run_peer(script: str, kwargs: dict, network: dict, *, env: str | None = None,
             target: float | None = None) -> dict:
    """Run peer `script` (brax_ppo_peer.py or brax_sac_peer.py) in the peer venv, from the
    robojax side; returns its JSON result."""
    here = Path(__file__).resolve().parent
    if not PEER.exists():
        sys.exit(f"Brax peer venv missing: run {here / 'setup_brax_peer.sh'} first.")
    cmd = [str(PEER), str(here / script), "--config", json.dumps(kwargs),
           "--network", json.dumps(network)]
    cmd += ["--env", env] if env is not None else []
    cmd += ["--target", str(target)] if target is not None else []
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=clean)
    if out.returncode != 0:
        sys.exit(f"Brax peer failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
