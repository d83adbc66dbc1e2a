"""What acts in a rollout: a `Controller` is `init(state) -> carry` and
`step(carry, state, key) -> (action, carry)` over a batched env state.

The carry holds what a policy remembers between steps (an observation history, the rest of an
action chunk); plain `act(obs) -> action` functions become controllers with `stateless`.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax


class Controller(NamedTuple):
    init: Callable[[Any], Any]
    step: Callable[[Any, Any, jax.Array], tuple[jax.Array, Any]]


def stateless(act: Callable[[jax.Array], jax.Array]) -> Controller:
    """A controller from `act(obs) -> action` (batched obs in, batched actions out)."""
    return Controller(init=lambda state: (), step=lambda carry, state, key: (act(state.obs), carry))


def as_controller(policy: Controller | Callable) -> Controller:
    return policy if isinstance(policy, Controller) else stateless(policy)
