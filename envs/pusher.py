"""Pusher: a round pusher on a table must push a free-sliding block onto a goal (contact-rich)."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
from mujoco import mjx
from robojax.envs._rewards import tolerance

from robojax.core.mjx_env import EnvConfig, MjxEnv

XML = Path(__file__).parent / "assets" / "pusher.xml"
"""The task's MJCF (shared pieces under assets/common/, included)."""


@dataclasses.dataclass(frozen=True)
class PusherConfig(EnvConfig):
    episode_length: int = 300
    """Control steps per episode (3 s)."""
    success_distance: float = 0.05
    """The block counts as on the goal within this distance (m)."""
    reward_scales: dict = dataclasses.field(default_factory=lambda: {
        "block_at_goal": 1.0, "pusher_near_block": 0.2, "control": -0.01, "success": 0.0})
    """Weight of each reward term (success is logged, not rewarded, by default)."""
    sparse_reward: bool = False
    """Reward 1 when the block reaches the goal and 0 otherwise, the episode ending there, in
    place of `reward_scales`: the sparse task of off-policy RL with demonstrations (RLPD)."""


def default_config() -> PusherConfig:
    return PusherConfig()


class Pusher(MjxEnv):
    """Observation: pusher position and velocity, block position, cos/sin yaw and velocity,
    goal minus block position."""

    def __init__(self, config: PusherConfig | None = None):
        super().__init__(XML, config or default_config())

    def init_state(self, data: mjx.Data, key: jax.Array) -> mjx.Data:
        k_pusher, k_block, k_yaw, k_goal = jax.random.split(key, 4)
        pusher = jnp.array([-0.3, 0.0]) + jax.random.uniform(k_pusher, (2,), minval=-0.05,
                                                             maxval=0.05)
        block = jax.random.uniform(k_block, (2,), minval=-0.1, maxval=0.1)
        yaw = jax.random.uniform(k_yaw, minval=-0.5, maxval=0.5)
        # Goals at 0.15-0.3 m from the block, anywhere around it.
        angle, radius = jax.random.uniform(k_goal, (2,), minval=jnp.array([-jnp.pi, 0.15]),
                                           maxval=jnp.array([jnp.pi, 0.3]))
        goal = block + radius * jnp.array([jnp.cos(angle), jnp.sin(angle)])
        qpos = jnp.concatenate([pusher, block, yaw[None]])
        return data.replace(qpos=qpos, qvel=jnp.zeros(5),
                            mocap_pos=data.mocap_pos.at[0, :2].set(goal))

    def observation_layout(self) -> list[tuple[str, int, str]]:
        return [("pusher_position", 2, "m"), ("pusher_velocity", 2, "m/s"),
                ("block_position", 2, "m"), ("block_yaw_cos_sin", 2, ""),
                ("block_velocity", 3, "m/s, m/s, rad/s"), ("block_to_goal", 2, "m")]

    def observe(self, data: mjx.Data, key: jax.Array) -> jax.Array:
        yaw = data.qpos[4]
        goal = data.mocap_pos[0, :2]
        return jnp.concatenate([data.qpos[:2], data.qvel[:2], data.qpos[2:4],
                                jnp.stack([jnp.cos(yaw), jnp.sin(yaw)]), data.qvel[2:5],
                                goal - data.qpos[2:4]])

    def reward_terms(self, prev: mjx.Data, data: mjx.Data, action: jax.Array) -> dict:
        block_to_goal = jnp.linalg.norm(data.mocap_pos[0, :2] - data.qpos[2:4])
        pusher_to_block = jnp.linalg.norm(data.qpos[2:4] - data.qpos[:2])
        return {
            "block_at_goal": tolerance(block_to_goal, bounds=(0, 0.02), margin=0.3),
            "pusher_near_block": tolerance(pusher_to_block, bounds=(0, 0.09), margin=0.3),
            "control": jnp.sum(action**2),
            "success": (block_to_goal < self.config.success_distance).astype(jnp.float32),
        }

    def combine_reward(self, terms: dict) -> jax.Array:
        return terms["success"] if self.config.sparse_reward else super().combine_reward(terms)

    def terminated(self, data: mjx.Data) -> jax.Array:
        if not self.config.sparse_reward:
            return jnp.array(False)
        block_to_goal = jnp.linalg.norm(data.mocap_pos[0, :2] - data.qpos[2:4])
        return block_to_goal < self.config.success_distance


def solve(env: Pusher, state) -> jax.Array:
    """Orbit the block to the side opposite the goal, then push it along the line (one env)."""
    obs = state.obs
    pusher, velocity, block, to_goal = obs[:2], obs[2:4], obs[4:6], obs[11:13]
    direction = to_goal / (jnp.linalg.norm(to_goal) + 1e-6)
    rel = pusher - block
    angle = jnp.arctan2(rel[1], rel[0])
    wanted = jnp.arctan2(-direction[1], -direction[0])
    error = jnp.arctan2(jnp.sin(wanted - angle), jnp.cos(wanted - angle))
    # Waypoints on a circle clear of the block's corners, stepping toward the far side.
    step = angle + jnp.clip(error, -0.7, 0.7)
    orbit = block + 0.13 * jnp.array([jnp.cos(step), jnp.sin(step)])
    lateral = rel - (rel @ direction) * direction
    aligned = (jnp.abs(error) < 0.35) & (jnp.linalg.norm(lateral) < 0.03)
    push = block + 0.05 * direction + 0.3 * to_goal
    target = jnp.where(aligned, push, jnp.where(jnp.abs(error) < 0.35, block - 0.1 * direction,
                                                 orbit))
    return jnp.clip(15.0 * (target - pusher) - 1.0 * velocity, -1.0, 1.0)
