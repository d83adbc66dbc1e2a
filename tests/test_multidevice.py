"""Envs sharded over two (host) devices train in one SPMD program, compiled once."""

import os
import subprocess
import sys

import pytest

SCRIPT = """
import functools, jax, numpy as np
from robojax import envs
from robojax.algos import ppo
assert len(jax.devices()) == 2, jax.devices()
cfg = ppo.PPOConfig(num_envs=32, rollout_length=8, num_minibatches=4, num_epochs=1)
env = envs.make("cartpole-balance")
train_env = ppo.make_train_input(cfg, env)
state = ppo.init(cfg, env, train_env, jax.random.PRNGKey(0))
devices = {d for d in state.env_state.obs.sharding.device_set}
assert len(devices) == 2, devices
step = jax.jit(functools.partial(ppo.train_iteration, cfg, train_env))
for _ in range(3):
    state, metrics = step(state)
assert len(state.env_state.obs.sharding.device_set) == 2
assert step._cache_size() == 1, "the step compiled again: init placed the state otherwise"
assert np.isfinite(float(metrics["loss/value"])) and int(state.iteration) == 3
print("OK")
"""


@pytest.mark.slow
def test_ppo_shards_envs_across_two_devices():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "OK" in out.stdout
