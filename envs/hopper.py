"""Hopper: a planar one-legged robot must hop forward without falling (contacts with a floor)."""

import dataclasses

import jax
import jax.numpy as jnp
from mujoco import mjx

from robojax.core.mjx_env import EnvConfig, MjxEnv

XML = """
<mujoco model="hopper">
  <option timestep="0.002" iterations="2" ls_iterations="6"/>
  <visual><global offwidth="640" offheight="480"/></visual>
  <default>
    <joint limited="true" armature="1" damping="1"/>
    <geom contype="1" conaffinity="0" condim="3" friction="0.9" rgba="0.8 0.6 0.4 1"/>
    <motor ctrllimited="true" ctrlrange="-1 1" gear="200"/>
  </default>
  <worldbody>
    <light pos="0 -2 4" dir="0 0.5 -1" directional="true"/>
    <geom name="floor" type="plane" size="40 40 0.1" contype="0" conaffinity="1"
          rgba="0.35 0.4 0.45 1"/>
    <body name="torso" pos="0 0 1.25">
      <camera name="track" mode="trackcom" pos="0 -3 -0.25" xyaxes="1 0 0 0 0 1"/>
      <joint name="rootx" type="slide" axis="1 0 0" limited="false" armature="0" damping="0"/>
      <joint name="rootz" type="slide" axis="0 0 1" limited="false" armature="0" damping="0"/>
      <joint name="rooty" type="hinge" axis="0 1 0" limited="false" armature="0" damping="0"/>
      <geom name="torso" type="capsule" fromto="0 0 0.2 0 0 -0.2" size="0.05"/>
      <body name="thigh" pos="0 0 -0.2">
        <joint name="thigh" type="hinge" axis="0 -1 0" range="-150 0"/>
        <geom name="thigh" type="capsule" fromto="0 0 0 0 0 -0.45" size="0.05"/>
        <body name="leg" pos="0 0 -0.45">
          <joint name="leg" type="hinge" axis="0 -1 0" range="-150 0"/>
          <geom name="leg" type="capsule" fromto="0 0 0 0 0 -0.5" size="0.04"/>
          <body name="foot" pos="0 0 -0.5">
            <joint name="foot" type="hinge" axis="0 -1 0" range="-45 45"/>
            <geom name="foot" type="capsule" fromto="-0.13 0 0 0.26 0 0" size="0.06"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="thigh" joint="thigh"/>
    <motor name="leg" joint="leg"/>
    <motor name="foot" joint="foot"/>
  </actuator>
</mujoco>
"""


@dataclasses.dataclass(frozen=True)
class HopperConfig(EnvConfig):
    n_substeps: int = 4
    """Physics steps per control step (control at 125 Hz)."""
    healthy_z: float = 0.7
    """The torso must stay above this height (m) ..."""
    healthy_angle: float = 0.2
    """... and within this pitch (rad), or the episode terminates."""
    reset_noise: float = 5e-3
    """Uniform noise added to the initial joint positions and velocities."""
    reward_scales: dict = dataclasses.field(default_factory=lambda: {
        "forward_velocity": 1.0, "healthy": 1.0, "control": -1e-3})
    """Weight of each reward term."""


def default_config() -> HopperConfig:
    return HopperConfig()


class Hopper(MjxEnv):
    """Observation: joint positions without the forward coordinate, clipped joint velocities."""

    def __init__(self, config: HopperConfig | None = None):
        super().__init__(XML, config or default_config())

    def init_state(self, data: mjx.Data, key: jax.Array) -> mjx.Data:
        k_pos, k_vel = jax.random.split(key)
        noise = self.config.reset_noise
        nq, nv = self.mj_model.nq, self.mj_model.nv
        qpos = self.mjx_model.qpos0 + jax.random.uniform(k_pos, (nq,), minval=-noise, maxval=noise)
        qvel = jax.random.uniform(k_vel, (nv,), minval=-noise, maxval=noise)
        return data.replace(qpos=qpos, qvel=qvel)

    def observe(self, data: mjx.Data, key: jax.Array) -> jax.Array:
        return jnp.concatenate([data.qpos[1:], jnp.clip(data.qvel, -10, 10)])

    def _healthy(self, data: mjx.Data) -> jax.Array:
        height = data.qpos[1] + 1.25
        angle = data.qpos[2]
        finite = jnp.all(jnp.abs(data.qpos[2:]) < 100) & jnp.all(jnp.abs(data.qvel) < 100)
        return (height > self.config.healthy_z) & (jnp.abs(angle) < self.config.healthy_angle) \
            & finite

    def reward_terms(self, prev: mjx.Data, data: mjx.Data, action: jax.Array) -> dict:
        return {"forward_velocity": (data.qpos[0] - prev.qpos[0]) / self.dt,
                "healthy": self._healthy(data).astype(jnp.float32),
                "control": jnp.sum(action**2)}

    def terminated(self, data: mjx.Data) -> jax.Array:
        return ~self._healthy(data)
