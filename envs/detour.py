"""Detour: a planar puck must reach a goal behind a wall, passing it on the left or the right.

Touching the wall ends the episode as a failure, reaching the goal ends it as a success. The
start and goal sit on the wall's axis of symmetry, so both ways round are equally good and the
scripted expert picks one at random per episode: its demonstrations are genuinely bimodal, and a
policy that averages the two modes drives straight into the wall.
"""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from mujoco import mjx
from robojax.envs._rewards import tolerance

from robojax.core.mjx_env import EnvConfig, MjxEnv
from robojax.core.reflection import Reflection, with_last_actions

WALL_HALF = (0.1, 0.03)
PUCK_RADIUS = 0.02
START_Y, GOAL_Y = -0.25, 0.25

MIRROR = np.diag([-1.0, 1.0]).astype(np.float32)
"""Reflection across the wall's axis of symmetry, x -> -x: it maps the wall, the start and the
goal regions onto themselves, and the left way round onto the right."""

XML = Path(__file__).parent / "assets" / "detour.xml"
"""The task's MJCF (shared pieces under assets/common/, included)."""


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
        "progress": 10.0, "near_goal": 0.0, "collision": -1.0, "success": 1.0})
    """Weight of each reward term. `progress` (metres closer to the goal this step) sums to the
    distance covered, so waiting near the goal earns nothing and reaching it is what pays;
    `near_goal` (1 inside the goal, fading over 0.5 m) is logged only: weighted in, a learner
    hovers beside the goal for it rather than end the episode by reaching it. Success alone:
    `reward_scales={'progress': 0.0, 'collision': 0.0}`."""


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

    def observation_layout(self) -> list[tuple[str, int, str]]:
        return [("position", 2, "m"), ("velocity", 2, "m/s"), ("goal_offset", 2, "m")]

    def observe(self, data: mjx.Data, key: jax.Array) -> jax.Array:
        return jnp.concatenate([data.qpos, data.qvel, data.mocap_pos[0, :2] - data.qpos])

    def reflection(self) -> Reflection:
        """The task's mirror symmetry: reflection across the wall's axis (x -> -x)."""
        obs_map = np.kron(np.eye(3, dtype=np.float32), MIRROR)  # position, velocity, offset
        return with_last_actions(Reflection(obs_map, MIRROR), self.config.observe_last_actions)

    def _goal_distance(self, data: mjx.Data) -> jax.Array:
        return jnp.linalg.norm(data.mocap_pos[0, :2] - data.qpos)

    def reward_terms(self, prev: mjx.Data, data: mjx.Data, action: jax.Array) -> dict:
        distance = self._goal_distance(data)
        return {"progress": self._goal_distance(prev) - distance,
                "near_goal": tolerance(distance, bounds=(0, self.config.goal_radius), margin=0.5),
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
