"""A task's mirror symmetry: linear maps that take a state-action pair to its mirror image.

Many tasks look the same in a mirror: reflect the scene across a line (or plane) that maps the
goal onto itself, and every trajectory becomes another valid one. A task declares such a
symmetry with a `reflection()` method returning a `Reflection`; learners may use it
(`robojax.data.augment` reflects demonstrations).
"""

from typing import NamedTuple

import numpy as np

from robojax.core.env import display_name


class Reflection(NamedTuple):
    """Linear maps `obs -> obs @ obs_map.T`, `action -> action @ action_map.T` that take a
    state-action pair of a task to its mirror image (each map its own inverse)."""

    obs_map: np.ndarray
    action_map: np.ndarray


def check_reflection(reflection: Reflection, obs_size: int, action_size: int) -> None:
    """Raise if the maps have the wrong shapes or are not their own inverses."""
    for name, matrix, size in (("obs_map", reflection.obs_map, obs_size),
                               ("action_map", reflection.action_map, action_size)):
        matrix = np.asarray(matrix)
        if matrix.shape != (size, size):
            raise ValueError(f"reflection {name} must be ({size}, {size}) for this env, got "
                             f"{matrix.shape}.")
        if not np.allclose(matrix @ matrix, np.eye(size), atol=1e-6):
            raise ValueError(f"reflection {name} is not its own inverse (a mirror applied "
                             "twice must give back the original).")


def env_reflection(env, flag: str) -> Reflection:
    """`env`'s mirror symmetry, checked, for the option `flag` that needs it: an env without one
    is refused by name, with the envs that have one."""
    name = display_name(env)
    if not hasattr(env, "reflection"):
        from robojax import envs  # the registry sits above the core

        raise ValueError(f"{flag} needs an env with a mirror symmetry (a `reflection()` "
                         f"method); {name} has none. Envs with one: {envs.with_reflection()}; "
                         f"or drop {flag}.")
    found = env.reflection()
    check_reflection(found, env.observation_spec.size, env.action_spec.size)
    return found


def with_last_actions(reflection: Reflection, count: int) -> Reflection:
    """`reflection` for an observation that ends with the last `count` actions
    (`observe_last_actions`): those are reflected as actions are."""
    if not count:
        return reflection
    actions = np.kron(np.eye(count), reflection.action_map)
    size = len(reflection.obs_map)
    obs_map = np.zeros((size + len(actions),) * 2, np.float32)
    obs_map[:size, :size], obs_map[size:, size:] = reflection.obs_map, actions
    return Reflection(obs_map, reflection.action_map)
