"""Hopper: a planar one-legged robot must hop forward without falling (contacts with a floor)."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
from mujoco import mjx

from robojax.core.mjx_env import EnvConfig, MjxEnv

XML = Path(__file__).parent / "assets" / "hopper.xml"
"""The task's MJCF (shared pieces under assets/common/, included)."""


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

    def observation_layout(self) -> list[tuple[str, int, str]]:
        return [("torso_height", 1, "m"), ("torso_pitch", 1, "rad"), ("joint_angles", 3, "rad"),
                ("torso_velocity", 2, "m/s"), ("torso_pitch_rate", 1, "rad/s"),
                ("joint_velocities", 3, "rad/s")]

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
