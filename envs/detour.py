"""Detour: a planar puck must reach a goal behind a wall, passing it on the left or the right.

Touching the wall ends the episode as a failure, reaching the goal ends it as a success. The
start and goal sit on the wall's axis of symmetry, so both ways round are equally good and the
scripted expert picks one at random per episode: its demonstrations are genuinely bimodal, and a
policy that averages the two modes drives straight into the wall.
"""

import dataclasses

import jax
import jax.numpy as jnp
from mujoco import mjx
from robojax.envs._rewards import tolerance

from robojax.core.mjx_env import EnvConfig, MjxEnv

WALL_HALF = (0.1, 0.03)
PUCK_RADIUS = 0.02
START_Y, GOAL_Y = -0.25, 0.25

XML = f"""
<mujoco model="detour">
  <option timestep="0.01"/>
  <visual><global offwidth="640" offheight="480"/></visual>
  <default><geom contype="0" conaffinity="0"/></default>
  <worldbody>
    <light pos="0 0 2"/>
    <camera name="top" pos="0 0 1.1" xyaxes="1 0 0 0 1 0"/>
    <geom name="floor" type="plane" size="0.35 0.35 0.1" rgba="0.3 0.35 0.4 1"/>
    <geom name="wall" type="box" pos="0 0 0.02" size="{WALL_HALF[0]} {WALL_HALF[1]} 0.02"
          rgba="0.7 0.3 0.3 1"/>
    <body name="goal" mocap="true" pos="0 {GOAL_Y} 0.01">
      <geom name="goal" type="cylinder" size="0.03 0.001" rgba="0.2 0.8 0.2 1"/>
    </body>
    <body name="puck" pos="0 0 0.02">
      <joint name="x" type="slide" axis="1 0 0" limited="true" range="-0.33 0.33" damping="1"/>
      <joint name="y" type="slide" axis="0 1 0" limited="true" range="-0.33 0.33" damping="1"/>
      <geom name="puck" type="sphere" size="{PUCK_RADIUS}" mass="0.3" rgba="0.9 0.6 0.2 1"/>
    </body>
  </worldbody>
  <actuator>
    <motor name="x" joint="x" gear="1" ctrllimited="true" ctrlrange="-1 1"/>
    <motor name="y" joint="y" gear="1" ctrllimited="true" ctrlrange="-1 1"/>
  </actuator>
</mujoco>
"""


@dataclasses.dataclass(frozen=True)
class DetourConfig(EnvConfig):
    episode_length: int = 150
    """Control steps per episode (3 s)."""
    n_substeps: int = 2
    """Physics steps per control step."""
    goal_radius: float = 0.03
    """Reaching within this distance of the goal is a success."""
    start_noise: float = 0.02
    """Half-width of the uniform jitter of the start and goal x positions."""
    reward_scales: dict = dataclasses.field(default_factory=lambda: {
        "near_goal": 1.0, "collision": -1.0, "success": 1.0})
    """Weight of each reward term."""


def default_config() -> DetourConfig:
    return DetourConfig()


class Detour(MjxEnv):
    """Observation: position, velocity, goal minus position."""

    def __init__(self, config: DetourConfig | None = None):
        super().__init__(XML, config or default_config())

    def init_state(self, data: mjx.Data, key: jax.Array) -> mjx.Data:
        k_start, k_goal = jax.random.split(key)
        noise = self.config.start_noise
        x0 = jax.random.uniform(k_start, minval=-noise, maxval=noise)
        goal_x = jax.random.uniform(k_goal, minval=-noise, maxval=noise)
        return data.replace(qpos=jnp.array([x0, START_Y]), qvel=jnp.zeros(2),
                            mocap_pos=data.mocap_pos.at[0, :2].set(jnp.stack([goal_x, GOAL_Y])))

    def observe(self, data: mjx.Data, key: jax.Array) -> jax.Array:
        return jnp.concatenate([data.qpos, data.qvel, data.mocap_pos[0, :2] - data.qpos])

    def _goal_distance(self, data: mjx.Data) -> jax.Array:
        return jnp.linalg.norm(data.mocap_pos[0, :2] - data.qpos)

    def reward_terms(self, prev: mjx.Data, data: mjx.Data, action: jax.Array) -> dict:
        distance = self._goal_distance(data)
        return {"near_goal": tolerance(distance, bounds=(0, self.config.goal_radius), margin=0.5),
                "collision": touches_wall(data.qpos).astype(jnp.float32),
                "success": (distance < self.config.goal_radius).astype(jnp.float32)}

    def terminated(self, data: mjx.Data) -> jax.Array:
        return touches_wall(data.qpos) | (self._goal_distance(data) < self.config.goal_radius)


def touches_wall(position: jax.Array) -> jax.Array:
    """Whether a puck centred at `position` overlaps the wall (rounded-box distance test)."""
    excess = jnp.maximum(jnp.abs(position) - jnp.array(WALL_HALF), 0.0)
    return jnp.linalg.norm(excess) < PUCK_RADIUS


def solve(env: Detour, state) -> jax.Array:
    """Go round the wall on a side drawn from the episode key, then to the goal (one env)."""
    side = jnp.where(jax.random.bernoulli(jax.random.fold_in(state.key, 7)), 1.0, -1.0)
    position, velocity, to_goal = state.obs[:2], state.obs[2:4], state.obs[4:6]
    beside_wall = jnp.array([side * (WALL_HALF[0] + 0.09), 0.0])
    target = jnp.where(position[1] < -0.01, beside_wall, position + to_goal)
    return jnp.clip(12.0 * (target - position) - 2.5 * velocity, -1.0, 1.0)
