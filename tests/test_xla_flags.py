import os
import subprocess
import sys

import jaxlib
import pytest

from robojax._xla import cpu_runtime_flags

FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"


def test_cpu_scheduler_flag_is_added_on_stalling_jaxlib_only():
    assert cpu_runtime_flags("0.10.2", "") == f"{FLAG}=false"
    kept = "--xla_force_host_platform_device_count=2"
    assert cpu_runtime_flags("0.10.2", kept) == f"{kept} {FLAG}=false"
    assert cpu_runtime_flags("0.10.2", f"{FLAG}=true") == f"{FLAG}=true"  # the user's wins
    assert cpu_runtime_flags("0.11.0", kept) == kept  # unknown there: never added


# 4096 hopper states through jit(vmap(mjx.step)) stalled within a few calls on jaxlib 0.10.2
# with XLA:CPU's default scheduler (6 runs of 7); the child must finish all its calls.
_STEPS_4096_HOPPERS = """
import os
import robojax
import jax
from mujoco import mjx
from robojax import envs
print(os.environ["XLA_FLAGS"])
env = envs.make("hopper")
keys = jax.random.split(jax.random.PRNGKey(0), 4096)
data = jax.jit(jax.vmap(lambda k: env.reset(k).data))(keys)
step = jax.jit(jax.vmap(mjx.step, in_axes=(None, 0)))
for _ in range(10):
    data = jax.block_until_ready(step(env.mjx_model, data))
print("finished", bool(jax.numpy.isfinite(data.qpos).all()))
"""


@pytest.mark.skipif(cpu_runtime_flags(jaxlib.__version__, "") == "",
                    reason="the stall and its flag belong to jaxlib 0.10")
@pytest.mark.slow
def test_large_cpu_mjx_batch_does_not_stall():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    result = subprocess.run([sys.executable, "-c", _STEPS_4096_HOPPERS], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{FLAG}=false" in result.stdout
    assert "finished True" in result.stdout
