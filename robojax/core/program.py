"""A trained policy as one pure function, the unit that `robojax export` compiles.

`PolicyProgram.fn(history, noise) -> actions` maps an observation history (B, To, obs_dim),
oldest first and unnormalized, and the noise tensors its sampler consumes ({name: (B, ...)})
to the actions executed before the next call (B, Ta, action_dim) in [-1, 1]. Everything the
policy does between the raw observation and the action is inside: the observation normalizer,
the sampler loop (DDIM/DDPM steps, Euler steps, energy descent, or the Gaussian mean) and the
chunk slicing. Randomness enters only through `noise`: a policy's keyed `sample` draws it from
a key, an exported graph takes it from the runtime.

A policy that also acts between its plans (a residual on a chunked base) carries a
`correction(obs, planned) -> action`: called on every control step with that step's raw
observation (B, obs_dim) and the planned action due at that step (B, action_dim, in
[-1, 1]), it returns the action executed instead (in [-1, 1]).
"""

import contextlib
import contextvars
import dataclasses
import functools
import operator
from collections.abc import Callable

import jax
import jax.numpy as jnp

NOISE_KINDS = ("normal", "uniform", "gumbel")
"""Standard normal, uniform on [-1, 1), standard Gumbel."""


@dataclasses.dataclass(frozen=True)
class NoiseSpec:
    shape: tuple[int, ...]
    """Per sample, without the batch dimension."""
    kind: str = "normal"
    """One of `NOISE_KINDS`."""

    def __post_init__(self):
        if self.kind not in NOISE_KINDS:
            raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {self.kind!r}")


@dataclasses.dataclass(frozen=True)
class PolicyProgram:
    fn: Callable[[jax.Array, dict], jax.Array]
    """(history (B, To, obs_dim), noise {name: (B, *shape)}) -> actions (B, Ta, action_dim)."""
    n_obs_steps: int = 1
    """To: observations per call, the current one last."""
    n_action_steps: int = 1
    """Ta: actions executed per call (a receding horizon for chunked policies)."""
    noise: dict[str, NoiseSpec] = dataclasses.field(default_factory=dict)
    """The noise inputs, by name."""
    sampler: dict = dataclasses.field(default_factory=dict)
    """What turns noise into actions, for the contract: family, sampler, steps."""
    correction: Callable[[jax.Array, jax.Array], jax.Array] | None = None
    """(obs (B, obs_dim), planned action (B, action_dim)) -> action (B, action_dim), applied on
    every step to the planned action due then; None for a policy that executes its plans."""


def step_program(act: Callable[[jax.Array], jax.Array]) -> PolicyProgram:
    """The program of a deterministic per-step policy `act(obs) -> action`: one observation
    in, one action out, no noise."""
    return PolicyProgram(lambda history, noise: jnp.clip(act(history[:, -1]), -1.0, 1.0)[:, None],
                         sampler={"family": "deterministic"})


_UNROLLED = contextvars.ContextVar("robojax_unrolled_sampler_loops", default=False)
_FOR_GRAPH = contextvars.ContextVar("robojax_graph_export", default=False)


@contextlib.contextmanager
def _switched_on(flag: contextvars.ContextVar):
    token = flag.set(True)
    try:
        yield
    finally:
        flag.reset(token)


def unrolled_sampler_loops():
    """Trace sampler loops (`sampler_scan`, `sampler_while`) as straight-line code while
    inside. ONNX Runtime runs a U-Net sampler ~8x faster as a flat graph than as the body of a
    Loop node, which it barely optimizes; a sampler has few steps, so the graph stays small."""
    return _switched_on(_UNROLLED)


def graph_export():
    """Trace for a graph runtime (ONNX) while inside: a layer with two spellings of one
    function takes the one ONNX Runtime runs fastest (`tracing_for_graph`)."""
    return _switched_on(_FOR_GRAPH)


def tracing_for_graph() -> bool:
    """Whether this trace is inside `graph_export()`."""
    return _FOR_GRAPH.get()


def sampler_scan(step: Callable, init, xs):
    """`jax.lax.scan(step, init, xs)` for a sampler loop whose outputs are discarded (None),
    unrolled inside `unrolled_sampler_loops()`."""
    if not _UNROLLED.get():
        return jax.lax.scan(step, init, xs)
    carry = init
    for i in range(jax.tree.leaves(xs)[0].shape[0]):
        carry, _ = step(carry, jax.tree.map(operator.itemgetter(i), xs))
    return carry, None


def sampler_while(cond: Callable, body: Callable, init, max_steps: int):
    """`jax.lax.while_loop(cond, body, init)` for a sampler loop that `cond` ends within
    `max_steps` iterations. Inside `unrolled_sampler_loops()` it is `max_steps` iterations of
    straight-line code, each keeping the carry as it was once `cond` is false: the same
    result."""
    if not _UNROLLED.get():
        return jax.lax.while_loop(cond, body, init)
    carry = init
    for _ in range(max_steps):
        carry = jax.tree.map(functools.partial(jnp.where, cond(carry)), body(carry), carry)
    return carry
