"""Running an exported policy on a robot: numpy and onnxruntime only, no jax.

    from robojax.deploy import Policy, run
    policy = Policy.load("exported/cartpole")
    stats = run(policy, read_obs, write_command, rate_hz=50, steps=10_000)
    print(stats.summary())

Install on the robot with `pip install --no-deps robojax && pip install numpy onnxruntime`
(or copy this package: it imports nothing else from robojax).
"""

from robojax.deploy.contract import ContractError
from robojax.deploy.loop import LoopStats, SimulatedClock, run
from robojax.deploy.policy import Policy, check_observation

__all__ = ["ContractError", "LoopStats", "Policy", "SimulatedClock", "check_observation",
           "run"]
