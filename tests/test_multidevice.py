"""Envs sharded over two (host) devices train in one SPMD program, compiled once."""

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
def test_ppo_shards_envs_across_two_devices(two_cpu_devices):
    _run_on_two_devices(SCRIPT, two_cpu_devices)


SAC_SCRIPT = """
import functools, jax, numpy as np
from robojax import envs
from robojax.algos import sac
from robojax.hil import human
assert len(jax.devices()) == 2, jax.devices()

def shards_equal(tree):  # a replicated leaf holds the same value on both devices
    return all(all(np.array_equal(np.asarray(leaf.addressable_shards[0].data),
                                  np.asarray(s.data)) for s in leaf.addressable_shards)
               for leaf in jax.tree.leaves(tree))

# One simulated human watches both devices' envs: with attention for one env, at most one of
# all 8 is taken over at a time.
cfg = sac.HILConfig(num_envs=8, batch_size=16, learning_starts=16, buffer_capacity=256,
                    intervention_capacity=256, grad_updates_per_step=2,
                    critic_updates_per_actor=2, num_critics=2, policy_hidden_sizes=(8,),
                    critic_hidden_sizes=(8,), episode_length=20,
                    human=human.HumanConfig(threshold=0.3, reaction_delay=1, min_takeover=3,
                                            attention=1))
env = envs.make("point-mass")
train_input = sac.make_train_input(cfg, env)
assert train_input.devices.count == 2 and train_input.env.batch_size == 4
state = sac.init(cfg, env, train_input, jax.random.PRNGKey(0))
step = jax.jit(functools.partial(sac.train_iteration, cfg, train_input), donate_argnums=0)
taken = 0
for _ in range(12):
    state, metrics = step(state)
    taken += int(metrics["hil/intervention_steps"])
assert step._cache_size() == 1, "the step compiled again: init placed the state otherwise"
buffer = state.buffer
assert buffer.data["obs"].sharding.spec == jax.sharding.PartitionSpec("batch")
assert int(buffer.size) == 96
blocks = [np.asarray(s.data) for s in buffer.data["intervened"].addressable_shards]
# Each device wrote its own 4 envs x 12 steps into the first 48 slots of its block of 128.
filled = [np.abs(np.asarray(s.data)).sum(-1) > 0 for s in buffer.data["obs"].addressable_shards]
assert [f[:48].all() and not f[48:].any() for f in filled] == [True, True], filled
per_step = blocks[0][:48].reshape(12, 4).sum(1) + blocks[1][:48].reshape(12, 4).sum(1)
assert 0 < taken == per_step.sum() == int(state.human.used) == int(state.interventions.size)
assert per_step.max() == 1, per_step  # the attention is shared by every device's envs
assert shards_equal((state.learner, state.obs_stats, state.human, state.interventions))
assert all(np.isfinite(float(v)) for v in metrics.values())
print("OK")
"""


@pytest.mark.slow
def test_sac_keeps_each_devices_transitions_on_it_with_one_human_over_all(two_cpu_devices):
    _run_on_two_devices(SAC_SCRIPT, two_cpu_devices)


def _run_on_two_devices(script: str, env: dict) -> None:
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "OK" in out.stdout
