"""Point mass: a planar puck driven by two motors must reach a random target."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
from mujoco import mjx
from robojax.envs._rewards import tolerance

from robojax.core.mjx_env import EnvConfig, MjxEnv

XML = Path(__file__).parent / "assets" / "point_mass.xml"
"""The task's MJCF (shared pieces under assets/common/, included)."""


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

    def observation_layout(self) -> list[tuple[str, int, str]]:
        return [("position", 2, "m"), ("velocity", 2, "m/s"), ("target_offset", 2, "m")]

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
