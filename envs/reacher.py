"""Reacher: a planar two-link arm must bring its fingertip to a random target."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
from mujoco import mjx
from robojax.envs._rewards import tolerance

from robojax.core.mjx_env import EnvConfig, MjxEnv

XML = Path(__file__).parent / "assets" / "reacher.xml"
"""The task's MJCF (shared pieces under assets/common/, included)."""

UPPER, LOWER = 0.12, 0.1


@dataclasses.dataclass(frozen=True)
class ReacherConfig(EnvConfig):
    target_size: float = 0.02
    """Radius within which the fingertip counts as on target."""
    reward_scales: dict = dataclasses.field(default_factory=lambda: {
        "near_target": 1.0, "control": -0.01})
    """Weight of each reward term."""


def default_config() -> ReacherConfig:
    return ReacherConfig()


class Reacher(MjxEnv):
    """Observation: cos/sin of both joints, joint velocities, fingertip-to-target vector."""

    def __init__(self, config: ReacherConfig | None = None):
        super().__init__(XML, config or default_config())

    def init_state(self, data: mjx.Data, key: jax.Array) -> mjx.Data:
        k_q, k_angle, k_radius = jax.random.split(key, 3)
        qpos = jax.random.uniform(k_q, (2,), minval=-jnp.pi, maxval=jnp.pi)
        qpos = qpos.at[1].set(qpos[1] * 0.8)  # inside the wrist's ±160° range
        angle = jax.random.uniform(k_angle, minval=-jnp.pi, maxval=jnp.pi)
        radius = jax.random.uniform(k_radius, minval=0.05, maxval=0.20)
        target = radius * jnp.array([jnp.cos(angle), jnp.sin(angle)])
        return data.replace(qpos=qpos, qvel=jnp.zeros(2),
                            mocap_pos=data.mocap_pos.at[0, :2].set(target))

    def _offset(self, data: mjx.Data) -> jax.Array:
        return data.mocap_pos[0, :2] - data.site_xpos[0, :2]

    def observation_layout(self) -> list[tuple[str, int, str]]:
        return [("joint_cos", 2, ""), ("joint_sin", 2, ""), ("joint_velocity", 2, "rad/s"),
                ("fingertip_to_target", 2, "m")]

    def observe(self, data: mjx.Data, key: jax.Array) -> jax.Array:
        return jnp.concatenate([jnp.cos(data.qpos), jnp.sin(data.qpos), data.qvel,
                                self._offset(data)])

    def reward_terms(self, prev: mjx.Data, data: mjx.Data, action: jax.Array) -> dict:
        distance = jnp.linalg.norm(self._offset(data))
        return {"near_target": tolerance(distance, bounds=(0, self.config.target_size),
                                         margin=0.1),
                "control": jnp.sum(action**2)}


def solve(env: Reacher, state) -> jax.Array:
    """Analytic inverse kinematics to the target, then joint-space PD (one env)."""
    cos_q, sin_q, qvel, offset = state.obs[:2], state.obs[2:4], state.obs[4:6], state.obs[6:8]
    q = jnp.arctan2(sin_q, cos_q)
    finger = jnp.array([UPPER * cos_q[0] + LOWER * jnp.cos(q[0] + q[1]),
                        UPPER * sin_q[0] + LOWER * jnp.sin(q[0] + q[1])])
    x, y = finger + offset
    cos_wrist = jnp.clip((x**2 + y**2 - UPPER**2 - LOWER**2) / (2 * UPPER * LOWER), -1.0, 1.0)
    # Pick the elbow branch that matches the current wrist sign, so the arm does not flip.
    wrist = jnp.where(q[1] >= 0, 1.0, -1.0) * jnp.arccos(cos_wrist)
    shoulder = jnp.arctan2(y, x) - jnp.arctan2(LOWER * jnp.sin(wrist),
                                               UPPER + LOWER * jnp.cos(wrist))
    error = jnp.array([shoulder, wrist]) - q
    error = jnp.arctan2(jnp.sin(error), jnp.cos(error))
    return jnp.clip(4.0 * error - 0.3 * qvel, -1.0, 1.0)
