"""Push-T: a round pusher must slide a T-shaped block onto a fixed target pose.

As in Diffusion Policy's Push-T, the action is the pusher's target position (a PD controller
tracks it), the block slides on the table with viscous resistance, and an episode succeeds when
the block covers at least 95% of the target's area. Coverage is measured on a 2.5 mm grid of
equal-area cells inside the T, so it is exact to within a cell and cheap to compute in batch.
"""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from mujoco import mjx

from robojax.core.mjx_env import EnvConfig, MjxEnv
from robojax.core.reflection import Reflection, with_last_actions
from robojax.core.teleop import TeleopMap, default_map

# The T in its body frame (origin at the centroid): a bar over a stem, (centre, half-size).
BAR = ((0.0, 0.03), (0.07, 0.0175))
STEM = ((0.0, -0.04), (0.0175, 0.0525))
PUSHER_RADIUS = 0.015
TARGET = (0.0, 0.0, np.pi / 4)
"""Target pose of the block: x, y (m), yaw (rad)."""
REACH = 0.3
"""The pusher's target positions span [-REACH, REACH] on each axis."""

XML = Path(__file__).parent / "assets" / "push_t.xml"
"""The task's MJCF (shared pieces under assets/common/, included)."""


def _cells(box, spacing: float = 0.0025) -> np.ndarray:
    (cx, cy), (hx, hy) = box
    xs = np.arange(-hx + spacing / 2, hx, spacing) + cx
    ys = np.arange(-hy + spacing / 2, hy, spacing) + cy
    return np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)


KEYPOINTS = np.array([[-0.07, 0.03], [0.07, 0.03], [0.0, 0.0475], [0.0, -0.0925]], np.float32)
"""Body-frame points of the T seen by "keypoints" observations: the bar's ends, its top and the
stem's foot."""

CELLS = np.concatenate([_cells(BAR), _cells(STEM)]).astype(np.float32)
"""Centres of 2.5 mm equal-area cells tiling the T in its body frame (1372 of them)."""


@dataclasses.dataclass(frozen=True)
class PushTConfig(EnvConfig):
    episode_length: int = 300
    """Control steps per episode (30 s at 10 Hz; the expert needs about 100)."""
    n_substeps: int = 10
    """Physics steps per control step."""
    success_coverage: float = 0.95
    """The episode succeeds (and ends) when the block covers this share of the target."""
    block_range: float = 0.12
    """Half-width of the square the block's start position is drawn from (m)."""
    start_near_target: float = 0.0
    """Share of episodes whose block starts part of the way from its random pose to the
    target: pose = target + u (random pose - target), u uniform in [0, 1], yaw along the
    shorter turn. A training curriculum (evaluate with 0): episodes that begin near success
    show a learner what finishing pays before it can push the T across the table."""
    observation: str = "keypoints"
    """What policies see: "keypoints" (positions only, as Diffusion Policy's low-dimensional
    Push-T: the pusher and the world positions of the T's KEYPOINTS; 10 numbers) or "pose"
    (pusher position and velocity, block position, cos/sin of its yaw, block velocity; 11).
    Behaviour cloning learns far better from keypoints (RESULTS.md, section 3b)."""
    action_mode: str = "position"
    """What an action is: "position", the pusher's target position (Diffusion Policy's
    convention; [-1, 1] spans [-REACH, REACH]), or "delta", the target as an offset of up to
    `action_step` per axis from where the pusher is, which explores by small moves instead of
    jumps across the table."""
    action_step: float = 0.05
    """The largest offset (m, per axis) of a "delta" action."""
    reward_scales: dict = dataclasses.field(default_factory=lambda: {
        "progress": 10.0, "reach": 0.0, "coverage": 0.0, "overlap": 0.0, "success": 1.0,
        "distance": 0.0, "approach": 0.0, "uncovered": 0.0})
    """Weight of each reward term. `progress` (metres the block's KEYPOINTS came closer to
    their places in the target pose this step, averaged over the keypoints) sums to the
    distance covered, so holding the block half on target earns nothing and finishing is what
    pays; `success` is 1 on the step that reaches `success_coverage` (the episode ends there).
    `coverage`, clip(overlap / success_coverage, 0, 1) per step, is Diffusion Policy's reward:
    logged only, since weighted in, a learner holds partial coverage for it rather than end the
    episode (`reward_scales={'coverage': 1.0, 'progress': 0.0, 'success': 0.0}` restores it).
    `reach` (metres the pusher came closer to the block's centroid this step) is logged at
    weight 0: weighted 2 it did not help PPO find the push (RESULTS.md 10.3). `distance` and
    `approach` are costs paid every step, minus the keypoints' mean distance to their places
    and minus the pusher's distance to the block's centroid (m): an episode ends only by
    success, so they pay to finish soon, never to linger. `uncovered`, coverage - 1 (`coverage`
    as above), is a cost that vanishes at success: the coverage of a T aligned with the target
    drops by ~8% for each 2.5 mm it is off, where `distance` changes by 2.5 mm, so it pays for
    the last few millimetres."""
    sparse_reward: bool = False
    """Reward 1 on the step that succeeds and 0 otherwise (the episode ends there), in place
    of `reward_scales`: the sparse task of off-policy RL with demonstrations (RLPD)."""


def default_config() -> PushTConfig:
    return PushTConfig()


def rotation(yaw: jax.Array) -> jax.Array:
    c, s = jnp.cos(yaw), jnp.sin(yaw)
    return jnp.array([[c, -s], [s, c]])


def keypoints(position: jax.Array, yaw: jax.Array) -> jax.Array:
    """World positions (4, 2) of the KEYPOINTS of a T at `position`, `yaw`."""
    return position + KEYPOINTS @ rotation(yaw).T


def inside_t(points: jax.Array, margin: float = 0.0) -> jax.Array:
    """Whether body-frame `points` (..., 2) lie inside the T, each box grown by `margin`."""
    def in_box(box):
        (cx, cy), (hx, hy) = box
        return (jnp.abs(points[..., 0] - cx) <= hx + margin) & (
            jnp.abs(points[..., 1] - cy) <= hy + margin)
    return in_box(BAR) | in_box(STEM)


def coverage(position: jax.Array, yaw: jax.Array) -> jax.Array:
    """Share of the target T covered by a T at `position`, `yaw` (cell-exact)."""
    world = CELLS @ rotation(yaw).T + position
    in_target = (world - jnp.array(TARGET[:2])) @ rotation(TARGET[2])
    return jnp.mean(inside_t(in_target).astype(jnp.float32))


class PushT(MjxEnv):
    """Push a T-shaped block to a fixed target pose with a round pusher whose position targets
    are the actions; observations as `PushTConfig.observation` says."""

    def __init__(self, config: PushTConfig | None = None):
        config = config or default_config()
        if config.observation not in ("pose", "keypoints"):
            raise ValueError(f"push-t observation must be 'pose' or 'keypoints', got "
                             f"{config.observation!r}.")
        if config.action_mode not in ("position", "delta"):
            raise ValueError(f"push-t action_mode must be 'position' or 'delta', got "
                             f"{config.action_mode!r}.")
        if not 0.0 <= config.start_near_target <= 1.0:
            raise ValueError(f"push-t start_near_target is a share of episodes in [0, 1], got "
                             f"{config.start_near_target}.")
        if not 0.0 < config.action_step <= REACH:
            raise ValueError(f"push-t action_step must be in (0, {REACH}] m, got "
                             f"{config.action_step}.")
        super().__init__(XML, config)

    def init_state(self, data: mjx.Data, key: jax.Array) -> mjx.Data:
        k_block, k_yaw, k_pusher = jax.random.split(key, 3)
        r = self.config.block_range
        block = jax.random.uniform(k_block, (2,), minval=-r, maxval=r)
        yaw = jax.random.uniform(k_yaw, minval=-jnp.pi, maxval=jnp.pi)
        if self.config.start_near_target > 0.0:
            block, yaw = self._toward_target(block, yaw, jax.random.fold_in(key, 1))
        # The pusher starts 0.18 m from the block's centre (clear of the T, which reaches 0.1).
        angle = jax.random.uniform(k_pusher, minval=-jnp.pi, maxval=jnp.pi)
        pusher = block + 0.18 * jnp.array([jnp.cos(angle), jnp.sin(angle)])
        qpos = jnp.concatenate([pusher, block, yaw[None]])
        return data.replace(qpos=qpos, qvel=jnp.zeros(5), ctrl=pusher)

    def _toward_target(self, block: jax.Array, yaw: jax.Array, key: jax.Array):
        """In a `start_near_target` share of episodes, `block`, `yaw` moved a uniform
        fraction of the way to TARGET."""
        k_near, k_u = jax.random.split(key)
        near = jax.random.bernoulli(k_near, self.config.start_near_target)
        u = jax.random.uniform(k_u)
        target = jnp.array(TARGET[:2])
        yaw_offset = jnp.arctan2(jnp.sin(yaw - TARGET[2]), jnp.cos(yaw - TARGET[2]))
        return (jnp.where(near, target + u * (block - target), block),
                jnp.where(near, TARGET[2] + u * yaw_offset, yaw))

    def observation_layout(self) -> list[tuple[str, int, str]]:
        if self.config.observation == "keypoints":
            return [("agent_position", 2, "m"), ("block_keypoints", KEYPOINTS.size, "m")]
        return [("agent_position", 2, "m"), ("agent_velocity", 2, "m/s"),
                ("block_position", 2, "m"), ("block_yaw_cos_sin", 2, ""),
                ("block_velocity", 3, "m/s, m/s, rad/s")]

    def observe(self, data: mjx.Data, key: jax.Array) -> jax.Array:
        yaw = data.qpos[4]
        if self.config.observation == "keypoints":
            points = keypoints(data.qpos[2:4], yaw)
            return jnp.concatenate([data.qpos[:2], points.reshape(-1)])
        return jnp.concatenate([data.qpos[:2], data.qvel[:2], data.qpos[2:4],
                                jnp.stack([jnp.cos(yaw), jnp.sin(yaw)]), data.qvel[2:5]])

    def coverage(self, data: mjx.Data) -> jax.Array:
        return coverage(data.qpos[2:4], data.qpos[4])

    def keypoint_distance(self, data: mjx.Data) -> jax.Array:
        """Mean distance (m) from the block's KEYPOINTS to their places in the target pose."""
        offsets = keypoints(data.qpos[2:4], data.qpos[4]) - keypoints(jnp.array(TARGET[:2]),
                                                                       TARGET[2])
        return jnp.mean(jnp.linalg.norm(offsets, axis=-1))

    def pusher_distance(self, data: mjx.Data) -> jax.Array:
        """Distance (m) from the pusher to the block's centroid."""
        return jnp.linalg.norm(data.qpos[:2] - data.qpos[2:4])

    @property
    def actions_are_commands(self) -> bool:
        return self.config.action_mode == "position"

    def action_to_ctrl(self, data: mjx.Data, action: jax.Array) -> jax.Array:
        if self.config.action_mode == "position":
            return super().action_to_ctrl(data, action)
        return jnp.clip(data.qpos[:2] + self.config.action_step * action, self._ctrl_low,
                        self._ctrl_high)

    def teleop_map(self) -> TeleopMap:
        """Arrow keys (or the left stick) move the pusher's target, 1.5 cm per step (with
        "delta" actions, the pusher itself, by up to `action_step`)."""
        if self.config.action_mode == "delta":
            return default_map(2)
        return dataclasses.replace(default_map(2, integrate=True), rate=0.05)

    def reflection(self) -> Reflection:
        """The task's mirror symmetry: reflection across the target T's axis of symmetry."""
        return with_last_actions(Reflection(_mirror_observation(self.config.observation), MIRROR),
                                 self.config.observe_last_actions)

    def reward_terms(self, prev: mjx.Data, data: mjx.Data, action: jax.Array) -> dict:
        covered = self.coverage(data)
        threshold = self.config.success_coverage
        paid = jnp.clip(covered / threshold, 0.0, 1.0)
        distance, pusher = self.keypoint_distance(data), self.pusher_distance(data)
        return {"progress": self.keypoint_distance(prev) - distance,
                "reach": self.pusher_distance(prev) - pusher,
                "coverage": paid, "overlap": covered, "uncovered": paid - 1.0,
                "success": (covered >= threshold).astype(jnp.float32),
                "distance": -distance, "approach": -pusher}

    def combine_reward(self, terms: dict) -> jax.Array:
        return terms["success"] if self.config.sparse_reward else super().combine_reward(terms)

    def terminated(self, data: mjx.Data) -> jax.Array:
        return self.coverage(data) >= self.config.success_coverage


MIRROR = np.array([[0.0, -1.0], [-1.0, 0.0]], np.float32)
"""Reflection across the line through the target along its stem, (x, y) -> (-y, -x): it maps
the target onto itself (the T is symmetric about its stem) and the reach square onto itself. A
block at yaw q maps to yaw pi/2 - q, with its body-frame x mirrored."""


def _mirror_observation(observation: str) -> np.ndarray:
    """The observation map of MIRROR, for "keypoints" or "pose" observations."""
    # (output slot, input slot, map) per observation piece
    if observation == "keypoints":
        # Mirroring swaps the bar's two ends (keypoints 0 and 1); the others map to themselves.
        sources = [0, 2, 1, 3, 4]  # pusher, then keypoints 0..3, in 2-number slots
        blocks = [(2 * out, 2 * src, MIRROR) for out, src in enumerate(sources)]
    else:  # pusher pos, pusher vel, block pos, (cos, sin) yaw, block vel, yaw rate
        swap = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)  # yaw -> pi/2 - yaw
        blocks = [(0, 0, MIRROR), (2, 2, MIRROR), (4, 4, MIRROR), (6, 6, swap),
                  (8, 8, MIRROR), (10, 10, -np.ones((1, 1), np.float32))]
    size = sum(len(m) for _, _, m in blocks)
    matrix = np.zeros((size, size), np.float32)
    for out, src, m in blocks:
        matrix[out:out + len(m), src:src + len(m)] = m
    return matrix


def _contacts() -> tuple[np.ndarray, np.ndarray]:
    """Candidate pushing points on the T's outline (body frame) and their outward normals."""
    (bx, by), (bhx, bhy) = BAR
    (sx, sy), (shx, shy) = STEM
    top, under, stem_bottom = by + bhy, by - bhy, sy - shy
    points, normals = [], []
    def edge(pts, normal):
        points.extend(pts)
        normals.extend([normal] * len(pts))
    edge([(x, top) for x in (-0.06, -0.03, 0.0, 0.03, 0.06)], (0, 1))
    edge([(x, under) for x in (-0.062, -0.045, 0.045, 0.062)], (0, -1))
    edge([(-bhx, by)], (-1, 0))
    edge([(bhx, by)], (1, 0))
    edge([(-shx, y) for y in (-0.08, -0.05, -0.02)], (-1, 0))
    edge([(shx, y) for y in (-0.08, -0.05, -0.02)], (1, 0))
    edge([(x, stem_bottom) for x in (-0.008, 0.008)], (0, -1))
    return np.array(points, np.float32), np.array(normals, np.float32)


CONTACT_POINTS, CONTACT_NORMALS = _contacts()


def _blocked(start: jax.Array, end: jax.Array, block: jax.Array, yaw: jax.Array) -> jax.Array:
    """Whether the pusher moving straight from `start` to `end` would touch the T."""
    path = start + jnp.linspace(0.0, 1.0, 12)[:, None] * (end - start)
    return jnp.any(inside_t((path - block) @ rotation(yaw), margin=PUSHER_RADIUS + 0.004))


def solve(env: PushT, state) -> jax.Array:
    """A pushing expert (one env): pick the point on the T's outline where a push best reduces
    the pose error under the block's viscous (quasi-static) dynamics, go round the block to
    it, and push by an amount that shrinks with the error."""
    qpos = state.data.qpos  # the true pose, whatever the observation
    pusher, block, yaw = qpos[:2], qpos[2:4], qpos[4]
    to_target = jnp.array(TARGET[:2]) - block
    yaw_error = jnp.arctan2(jnp.sin(TARGET[2] - yaw), jnp.cos(TARGET[2] - yaw))
    frame = rotation(yaw)
    points = block + CONTACT_POINTS @ frame.T
    pushes = -CONTACT_NORMALS @ frame.T  # world directions a push moves each point
    lever = points - block
    turning = lever[:, 0] * pushes[:, 1] - lever[:, 1] * pushes[:, 0]
    # Rate of decrease of |position error|^2 / 2 + w * yaw_error^2 / 2 per newton of push, with
    # the block's linear and yaw damping (4 N s/m, 0.012 N m s/rad) and w = (7 cm)^2.
    score = pushes @ to_target / 4.0 + 0.0049 * yaw_error * turning / 0.012
    approach = points - pushes * (PUSHER_RADIUS + 0.012)
    near = jnp.linalg.norm(approach - pusher, axis=-1) < 0.02
    k = jnp.argmax(score * jnp.where(near, 1.5, 1.0))
    push, point = pushes[k], points[k]
    # Pushing: the pusher sits behind the chosen point; press in by a depth set by the error.
    rel = pusher - point
    behind = -rel @ push
    lateral = jnp.abs(rel @ jnp.array([-push[1], push[0]]))
    pushing = (lateral < 0.012) & (behind < PUSHER_RADIUS + 0.025) & (behind > 0.0)
    depth = jnp.clip(0.6 * jnp.linalg.norm(to_target) + 0.06 * jnp.abs(yaw_error), 0.004, 0.03)
    press = point + push * (depth - PUSHER_RADIUS)
    # Travelling: straight to the approach point when the way is clear, else round the block on
    # a circle clear of it, stepping towards the approach point's side.
    goal = approach[k]
    angle = jnp.arctan2(*(pusher - block)[::-1])
    wanted = jnp.arctan2(*(goal - block)[::-1])
    turn = jnp.arctan2(jnp.sin(wanted - angle), jnp.cos(wanted - angle))
    orbit = block + 0.15 * jnp.array([jnp.cos(angle + jnp.clip(turn, -0.6, 0.6)),
                                      jnp.sin(angle + jnp.clip(turn, -0.6, 0.6))])
    travel = jnp.where(_blocked(pusher, goal, block, yaw), orbit, goal)
    target = jnp.where(pushing, press, travel)
    if env.config.action_mode == "delta":
        return jnp.clip((target - pusher) / env.config.action_step, -1.0, 1.0)
    return jnp.clip(target / REACH, -1.0, 1.0)
