"""What the reliability checks cost: checkpoint write and restore with the CRC-32s, digest
and identity against orbax alone on the same state, and the memory bound taken before a run.

    .venv/bin/python experiments/bench/reliability.py [--num-envs 512] [--buffer 1000000]
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from robojax import envs
from robojax.algos import ppo, sac
from robojax.core import memory
from robojax.io import checkpoint


def _best(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _orbax_alone(directory: Path, leaves: dict) -> tuple[float, float]:
    """Write and restore the same arrays with a plain orbax StandardCheckpointer."""
    ckpt = ocp.StandardCheckpointer()
    path = directory / "plain"

    def write():
        shutil.rmtree(path, ignore_errors=True)
        ckpt.save(path.absolute(), leaves)
        ckpt.wait_until_finished()

    write_s = _best(write)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, leaves)
    restore_s = _best(lambda: ckpt.restore(path.absolute(), abstract))
    return write_s, restore_s


def _robojax(directory: Path, state, identity: dict) -> tuple[float, float]:
    path = directory / "checked"

    def write():
        shutil.rmtree(path, ignore_errors=True)
        checkpoint.save(path, 1, state, identity=identity)

    write_s = _best(write)
    restore_s = _best(lambda: checkpoint.restore(path, state, identity=identity))
    return write_s, restore_s


def bench(name: str, state, identity: dict) -> None:
    leaves = checkpoint._stored_leaves(state)
    size = memory.tree_bytes(leaves)
    crc_s = _best(lambda: [checkpoint._crc32(x) for x in leaves.values()])
    with tempfile.TemporaryDirectory() as tmp:
        plain_w, plain_r = _orbax_alone(Path(tmp), leaves)
        ours_w, ours_r = _robojax(Path(tmp), state, identity)
    print(f"{name}: {size / 2**20:.1f} MiB in {len(leaves)} arrays; CRC-32 of all "
          f"{crc_s * 1e3:.1f} ms ({size / crc_s / 2**30:.2f} GiB/s)")
    print(f"  write   orbax {plain_w * 1e3:7.1f} ms  robojax {ours_w * 1e3:7.1f} ms  "
          f"ratio {ours_w / plain_w:.2f}")
    print(f"  restore orbax {plain_r * 1e3:7.1f} ms  robojax {ours_r * 1e3:7.1f} ms  "
          f"ratio {ours_r / plain_r:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num-envs", type=int, default=512)
    parser.add_argument("--buffer", type=int, default=1_000_000)
    args = parser.parse_args()
    env = envs.make("cartpole-balance")
    identity = {"env": "cartpole-balance", "algo": "bench"}
    cfg = ppo.PPOConfig(num_envs=args.num_envs)
    ppo_state = ppo.init(cfg, env, ppo.make_train_input(cfg, env), jax.random.PRNGKey(0))
    bench(f"PPO cartpole-balance, {args.num_envs} envs", ppo_state, identity)
    scfg = sac.SACConfig(buffer_capacity=args.buffer)
    sac_state = sac.init(scfg, env, sac.make_train_input(scfg, env), jax.random.PRNGKey(0))
    bench(f"SAC cartpole-balance, buffer {args.buffer:,}", sac_state, identity)
    start = time.perf_counter()
    memory.check(cfg, env, 1)
    check_s = time.perf_counter() - start
    bound = memory.estimate(cfg, env, 1).total(cfg.num_envs)
    print(f"memory bound before a PPO run: {check_s * 1e3:.0f} ms; bound {bound / 2**20:.1f} "
          f"MiB, the PPO state itself {memory.tree_bytes(ppo_state) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
