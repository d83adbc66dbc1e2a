"""Smooth reward shaping shared by tasks (the `tolerance` of the dm_control suite, in jnp)."""

import jax.numpy as jnp


def tolerance(x, bounds=(0.0, 0.0), margin: float = 0.0, sigmoid: str = "gaussian",
              value_at_margin: float = 0.1):
    """1 inside `bounds`, decaying outside to `value_at_margin` at distance `margin`."""
    lower, upper = bounds
    in_bounds = (lower <= x) & (x <= upper)
    if margin == 0:
        return jnp.where(in_bounds, 1.0, 0.0)
    d = jnp.where(x < lower, lower - x, x - upper) / margin
    if sigmoid == "gaussian":
        scale = jnp.sqrt(-2 * jnp.log(value_at_margin))
        value = jnp.exp(-0.5 * (d * scale) ** 2)
    elif sigmoid == "quadratic":
        scale = jnp.sqrt(1 - value_at_margin)
        value = jnp.where(jnp.abs(d * scale) < 1, 1 - (d * scale) ** 2, 0.0)
    elif sigmoid == "linear":
        scale = 1 - value_at_margin
        value = jnp.where(jnp.abs(d * scale) < 1, 1 - d * scale, 0.0)
    else:
        raise ValueError(f"unknown sigmoid {sigmoid!r}; use gaussian, quadratic or linear")
    return jnp.where(in_bounds, 1.0, value)


def upright_energy(energy):
    """1 at the energy of a pole resting upright, falling linearly to 0 at that of one hanging
    at rest: `energy` in units of m g l (0 upright, -2 hanging). A spinning pole (energy > 0)
    scores below one at rest upright; the gradient of this term is the pumping law."""
    return jnp.clip(1 - jnp.abs(energy) / 2, 0.0, 1.0)


def balance(cos, width: float = 0.05):
    """exp(-(1 - cos) / width) of a pole's angle from upright: 1 upright, 0.4 at 18 degrees
    (width 0.05), ~0 below horizontal. Sharply peaked where (1 + cos)/2 and the energy are flat,
    so its gradient favours stopping at the top over passing through it (the catch)."""
    return jnp.exp(-(1.0 - cos) / width)
