"""Point mass: a planar puck driven by two motors must reach a random target."""

import dataclasses

import jax
import jax.numpy as jnp
from mujoco import mjx
from robojax.envs._rewards import tolerance

from robojax.core.mjx_env import EnvConfig, MjxEnv

XML = """
<mujoco model="point_mass">
  <option timestep="0.02"/>
  <visual><global offwidth="640" offheight="480"/></visual>
  <default><geom contype="0" conaffinity="0"/></default>
  <worldbody>
    <light pos="0 0 2"/>
    <camera name="top" pos="0 0 1" xyaxes="1 0 0 0 1 0"/>
    <geom name="floor" type="plane" size="0.35 0.35 0.1" rgba="0.3 0.35 0.4 1"/>
    <body name="target" mocap="true" pos="0 0 0.01">
      <geom name="target" type="cylinder" size="0.015 0.001" rgba="0.2 0.8 0.2 1"/>
    </body>
    <body name="pointmass" pos="0 0 0.01">
      <joint name="root_x" type="slide" axis="1 0 0" limited="true" range="-0.3 0.3" damping="1"/>
      <joint name="root_y" type="slide" axis="0 1 0" limited="true" range="-0.3 0.3" damping="1"/>
      <geom name="pointmass" type="sphere" size="0.01" mass="0.3" rgba="0.8 0.5 0.2 1"/>
    </body>
  </worldbody>
  <actuator>
    <motor name="x" joint="root_x" gear="1" ctrllimited="true" ctrlrange="-1 1"/>
    <motor name="y" joint="root_y" gear="1" ctrllimited="true" ctrlrange="-1 1"/>
  </actuator>
</mujoco>
"""


@dataclasses.dataclass(frozen=True)
class PointMassConfig(EnvConfig):
    target_radius: float = 0.25
    """Targets are drawn uniformly in a square of this half-width."""
    reward_scales: dict = dataclasses.field(default_factory=lambda: {
        "near_target": 1.0, "control": -0.1})
    """Weight of each reward term."""


def default_config() -> PointMassConfig:
    return PointMassConfig()


class PointMass(MjxEnv):
    """Observation: position, velocity, target minus position."""

    def __init__(self, config: PointMassConfig | None = None):
        super().__init__(XML, config or default_config())

    def init_state(self, data: mjx.Data, key: jax.Array) -> mjx.Data:
        k_pos, k_target = jax.random.split(key)
        r = self.config.target_radius
        qpos = jax.random.uniform(k_pos, (2,), minval=-r, maxval=r)
        target = jax.random.uniform(k_target, (2,), minval=-r, maxval=r)
        mocap = data.mocap_pos.at[0, :2].set(target)
        return data.replace(qpos=qpos, qvel=jnp.zeros(2), mocap_pos=mocap)

    def observe(self, data: mjx.Data, key: jax.Array) -> jax.Array:
        return jnp.concatenate([data.qpos, data.qvel, data.mocap_pos[0, :2] - data.qpos])

    def reward_terms(self, prev: mjx.Data, data: mjx.Data, action: jax.Array) -> dict:
        distance = jnp.linalg.norm(data.mocap_pos[0, :2] - data.qpos)
        return {"near_target": tolerance(distance, bounds=(0, 0.02), margin=0.25),
                "control": jnp.sum(action**2)}


def solve(env: PointMass, state) -> jax.Array:
    """PD control toward the target (one env)."""
    velocity, offset = state.obs[2:4], state.obs[4:6]
    return jnp.clip(20.0 * offset - 2.0 * velocity, -1.0, 1.0)
