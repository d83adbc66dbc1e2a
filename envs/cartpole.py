"""Cartpole: a cart on a rail balancing a hinged pole (balance), or swinging it up (swingup)."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
from mujoco import mjx
from robojax.envs._rewards import balance, tolerance, upright_energy

from robojax.core.mjx_env import EnvConfig, MjxEnv

XML = Path(__file__).parent / "assets" / "cartpole.xml"
"""The task's MJCF (shared pieces under assets/common/, included)."""


POLE_INERTIA_RATIO = 0.068
"""The pole's moment of inertia about the hinge over m g l (l: hinge to centre of mass), s^2."""


def pole_energy(cos: jax.Array, vel: jax.Array) -> jax.Array:
    """The pole's energy relative to resting upright, in units of m g l."""
    return POLE_INERTIA_RATIO / 2 * vel**2 + cos - 1


@dataclasses.dataclass(frozen=True)
class CartpoleConfig(EnvConfig):
    swing_up: bool = False
    """Start hanging down (swingup) instead of near upright (balance)."""
    random_start: float = 0.0
    """Probability that an episode starts instead from a random state: cart anywhere within
    +-1.5, pole at any angle, velocities ~ N(0, 0.5) and N(0, 2). A training aid for learners
    that see few catches per episode (SHAC): every reset is then a chance to practise catching
    and leaving the rail end. Evaluate with 0 (`--eval-env-config "random_start=0.0"`)."""
    reward_scales: dict = dataclasses.field(default_factory=lambda: {
        "upright": 1.0, "centered": 1.0, "small_control": 1.0, "small_velocity": 1.0,
        "energy": 0.0, "balance": 0.0})
    """Exponent of each factor in the reward product (dm_control's smooth cartpole reward; a
    factor with exponent 0 is left out). Two shaping factors are logged but left out, for
    learners that follow the reward's gradient (APG, SHAC): `energy`, 1 - |E| / 2mgl with E the
    pole's energy relative to resting upright, which leads to pumping rather than spinning, and
    `balance`, (1 + exp(-(1 - cos) / 0.05)) / 2, sharply peaked at upright where `upright` is
    flat, which favours catching the pole over swinging it through the top. Give them an
    exponent, e.g. `--env-config "reward_scales={'energy': 1.0, 'balance': 1.0}"` (overrides
    merge into these defaults), then evaluate with the task's reward: `robojax eval RUN
    --env-config "reward_scales={'energy': 0.0, 'balance': 0.0}"`."""


def default_config() -> CartpoleConfig:
    return CartpoleConfig()


def default_swingup_config() -> CartpoleConfig:
    return CartpoleConfig(swing_up=True)


class Cartpole(MjxEnv):
    """Observation: cart position, cos/sin pole angle, cart and pole velocities.

    The reward is the product upright × centered × small_control × small_velocity, in [0, 1].
    """

    def __init__(self, config: CartpoleConfig | None = None):
        config = config or default_config()
        if not 0 <= config.random_start <= 1:
            raise ValueError(f"random_start is a probability, got {config.random_start}; "
                             "give a value in [0, 1], e.g. --env-config random_start=0.5")
        super().__init__(XML, config)

    def init_state(self, data: mjx.Data, key: jax.Array) -> mjx.Data:
        k_pos, k_angle, k_vel = jax.random.split(key, 3)
        if self.config.swing_up:
            slider = 0.01 * jax.random.normal(k_pos)
            hinge = jnp.pi + 0.01 * jax.random.normal(k_angle)
        else:
            slider = jax.random.uniform(k_pos, minval=-0.25, maxval=0.25)
            hinge = jax.random.uniform(k_angle, minval=-0.034, maxval=0.034)
        qpos, qvel = jnp.stack([slider, hinge]), 0.01 * jax.random.normal(k_vel, (2,))
        if self.config.random_start > 0:
            qpos, qvel = self._maybe_random_start(qpos, qvel, jax.random.fold_in(key, 1))
        return data.replace(qpos=qpos, qvel=qvel)

    def _maybe_random_start(self, qpos, qvel, key):
        k_use, k_pos, k_vel = jax.random.split(key, 3)
        random_qpos = jax.random.uniform(k_pos, (2,), minval=jnp.array([-1.5, -jnp.pi]),
                                         maxval=jnp.array([1.5, jnp.pi]))
        random_qvel = jnp.array([0.5, 2.0]) * jax.random.normal(k_vel, (2,))
        use = jax.random.bernoulli(k_use, self.config.random_start)
        return jnp.where(use, random_qpos, qpos), jnp.where(use, random_qvel, qvel)

    def observation_layout(self) -> list[tuple[str, int, str]]:
        return [("cart_position", 1, "m"), ("pole_cos", 1, ""), ("pole_sin", 1, ""),
                ("cart_velocity", 1, "m/s"), ("pole_angular_velocity", 1, "rad/s")]

    def observe(self, data: mjx.Data, key: jax.Array) -> jax.Array:
        angle = data.qpos[1]
        return jnp.stack([data.qpos[0], jnp.cos(angle), jnp.sin(angle), data.qvel[0],
                          data.qvel[1]])

    def reward_terms(self, prev: mjx.Data, data: mjx.Data, action: jax.Array) -> dict:
        upright = (jnp.cos(data.qpos[1]) + 1) / 2
        centered = (1 + tolerance(data.qpos[0], margin=2)) / 2
        small_control = (4 + tolerance(action[0], margin=1, value_at_margin=0,
                                       sigmoid="quadratic")) / 5
        small_velocity = (1 + tolerance(data.qvel[1], margin=5)) / 2
        cos = jnp.cos(data.qpos[1])
        return {"upright": upright, "centered": centered, "small_control": small_control,
                "small_velocity": small_velocity,
                "energy": upright_energy(pole_energy(cos, data.qvel[1])),
                "balance": (1 + balance(cos)) / 2}

    def combine_reward(self, terms: dict) -> jax.Array:
        scales = self.config.reward_scales
        exponents = {n: scales.get(n, 1.0) for n in terms}
        return jnp.prod(jnp.stack([terms[n] ** e for n, e in exponents.items() if e != 0]))


def solve(env: Cartpole, state) -> jax.Array:
    """Energy-pumping swing-up, then linear balance feedback near upright (one env).

    Scores about 999 on cartpole-balance and 850 on cartpole-swingup.
    """
    x, cos_a, sin_a, x_dot, a_dot = state.obs
    angle = jnp.arctan2(sin_a, cos_a)
    balance = 1.0 * x + 1.5 * x_dot + 12.0 * angle + 2.5 * a_dot
    pump = pole_energy(cos_a, a_dot) * jnp.sign(a_dot * cos_a + 1e-6) - 0.1 * (x + x_dot)
    return jnp.clip(jnp.where(cos_a > 0.8, balance, pump), -1.0, 1.0)[None]
