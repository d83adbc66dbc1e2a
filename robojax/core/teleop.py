"""How a person's keyboard and gamepad drive a task's action: the map each task declares for
`robojax teleop` (`MjxEnv.teleop_map`).

    keymap = TeleopMap(keys=(("ArrowLeft", 0, -1.0), ("ArrowRight", 0, 1.0)), integrate=True)
    action = keymap.action(pressed={"ArrowLeft"}, axes=(), previous=last_action)

Actions are normalized to [-1, 1], as every policy's. A force-like action is the sum of what the
pressed keys (and the gamepad's sticks) ask for; a position-like one (`integrate`) is a held
target that they move by `rate` per control step, starting from the action last executed, so a
takeover starts where the policy left the robot.
"""

import dataclasses

import numpy as np

KEY_PAIRS = (("ArrowLeft", "ArrowRight"), ("ArrowDown", "ArrowUp"), ("a", "d"), ("s", "w"),
             ("j", "l"), ("k", "i"), ("f", "h"), ("g", "t"))
"""Default keys, (minus, plus) per action component, in order."""


@dataclasses.dataclass(frozen=True)
class TeleopMap:
    keys: tuple[tuple[str, int, float], ...]
    """(KeyboardEvent.key, action component, amount) per key."""
    axes: tuple[tuple[int, int, float], ...] = ()
    """(gamepad axis, action component, scale) per stick axis (the browser's standard layout:
    0/1 the left stick's x/y, y pointing down, 2/3 the right stick's)."""
    integrate: bool = False
    """Whether the keys move a held target (position-like actions) instead of setting the
    action (force-like ones)."""
    rate: float = 0.05
    """With `integrate`: how far a held key moves the target per control step."""
    dead_zone: float = 0.15
    """Stick deflections below this are read as 0."""

    def describe(self) -> list[dict]:
        """The keys and what they do, for the page's legend (with `integrate`, the amount is
        how far the target moves per control step)."""
        scale = self.rate if self.integrate else 1.0
        return [{"key": key, "component": i, "amount": amount * scale}
                for key, i, amount in self.keys]

    def action(self, pressed: set[str] | frozenset[str], axes: tuple[float, ...] | list[float],
               previous: np.ndarray) -> np.ndarray:
        """The action for the keys now `pressed` and the gamepad's `axes`, given the action
        `previous`ly executed (what an integrated target starts from)."""
        push = np.zeros_like(np.asarray(previous, np.float32))
        for key, component, amount in self.keys:
            if key in pressed and component < push.size:
                push[component] += amount
        for axis, component, scale in self.axes:
            if axis < len(axes) and component < push.size and abs(axes[axis]) >= self.dead_zone:
                push[component] += scale * axes[axis]
        if self.integrate:
            push = np.asarray(previous, np.float32) + self.rate * push
        return np.clip(push, -1.0, 1.0)


def default_map(action_size: int, *, integrate: bool = False) -> TeleopMap:
    """Arrow keys for the first two components, then a/d, s/w, j/l, k/i, f/h, g/t; the left
    stick for the first two, the right stick for the next two."""
    if action_size > len(KEY_PAIRS):
        raise ValueError(f"the default teleop map covers {len(KEY_PAIRS)} action components, "
                         f"the task has {action_size}: declare the task's own `teleop_map`.")
    keys = tuple((key, i, sign) for i, pair in enumerate(KEY_PAIRS[:action_size])
                 for key, sign in zip(pair, (-1.0, 1.0), strict=True))
    # A stick's y points down in the browser; up on the stick is + on the action.
    axes = tuple((axis, axis, -1.0 if axis % 2 else 1.0) for axis in range(min(action_size, 4)))
    return TeleopMap(keys=keys, axes=axes, integrate=integrate)
