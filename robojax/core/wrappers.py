"""Wrappers that turn one env into a training batch: time limits, vmap, NaN guard, autoreset,
domain randomization. Per-env wrappers sit inside `VmapWrapper`; batched ones outside it."""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from robojax.core.compiled import with_compiler_options
from robojax.core.env import Env, Wrapper
from robojax.core.types import State


def env_keys(key: jax.Array, num_envs: int) -> jax.Array:
    """One PRNG key per env: `key` split `num_envs` ways, or `key` itself if it is already a
    (num_envs, 2) batch."""
    return key if key.ndim == 2 else jax.random.split(key, num_envs)


def select_envs(mask: jax.Array, on_true, on_false):
    """Per-env `where` over two batched pytrees; `mask` has shape (batch,)."""

    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - mask.ndim)), a, b)

    return jax.tree.map(pick, on_true, on_false)


class EpisodeWrapper(Wrapper):
    """Ends episodes after `episode_length` steps with `truncated=True` (a single env)."""

    def __init__(self, env: Env, episode_length: int):
        super().__init__(env)
        if episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        self.episode_length = episode_length

    def step(self, state: State, action: jax.Array) -> State:
        state = self.env.step(state, action)
        out_of_time = state.step >= self.episode_length
        truncated = out_of_time & ~state.done
        return state.replace(done=state.done | out_of_time, truncated=truncated)


class VmapWrapper(Wrapper):
    """Steps `num_envs` copies of a single env at once."""

    def __init__(self, env: Env, num_envs: int):
        super().__init__(env)
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs

    @property
    def batch_size(self) -> int:
        return self.num_envs

    def reset(self, key: jax.Array) -> State:
        """Reset every env; `key` is one PRNG key (split per env) or a (num_envs, 2) batch."""
        return jax.vmap(self.env.reset)(env_keys(key, self.num_envs))

    def step(self, state: State, action: jax.Array) -> State:
        expected = (self.num_envs, *self.env.action_spec.shape)
        if action.shape != expected:
            raise ValueError(f"batched action has shape {action.shape}, expected {expected} "
                             "(num_envs, action_size). Reshape the action.")
        return jax.vmap(self.env.step)(state, action)


class DomainRandomizationWrapper(Wrapper):
    """Vmaps an MJX env over per-env models drawn by a pure `randomize(model, key) -> model`.

    Only the model fields that `randomize` changes are stored per env; the rest stay shared.
    Use in place of `VmapWrapper`.
    """

    def __init__(self, env: Env, num_envs: int, randomize: Callable, key: jax.Array):
        super().__init__(env)
        self.num_envs = num_envs
        base = env.unwrapped.mjx_model
        keys = jax.random.split(key, num_envs)
        leaves, self._treedef = jax.tree.flatten(base)
        probe = jax.tree.leaves(jax.vmap(randomize, in_axes=(None, 0))(base, keys[:2]))
        self._batched_ids = [
            i for i, (leaf, new) in enumerate(zip(leaves, probe, strict=True))
            if hasattr(leaf, "shape") and not bool(jnp.all(new == leaf))
        ]
        if not self._batched_ids:
            raise ValueError("randomize(model, key) changed no model field; return "
                             "model.replace(field=...) with key-dependent values.")
        ids = self._batched_ids

        @jax.jit
        def draw(keys):
            models = jax.vmap(randomize, in_axes=(None, 0))(base, keys)
            flat = jax.tree.leaves(models)
            return [flat[i] for i in ids]

        self._shared = leaves
        self.randomized_fields = draw(keys)

    @property
    def batch_size(self) -> int:
        return self.num_envs

    def _model(self, batched_fields):
        leaves = list(self._shared)
        for i, value in zip(self._batched_ids, batched_fields, strict=True):
            leaves[i] = value
        return jax.tree.unflatten(self._treedef, leaves)

    def _with_model(self, fields, fn, *args):
        env = self.env.unwrapped
        original = env._mjx_model
        env._mjx_model = self._model(fields)  # swapped only while tracing this env's step
        try:
            return fn(*args)
        finally:
            env._mjx_model = original

    def reset(self, key: jax.Array) -> State:
        return jax.vmap(lambda f, k: self._with_model(f, self.env.reset, k))(
            self.randomized_fields, env_keys(key, self.num_envs))

    def step(self, state: State, action: jax.Array) -> State:
        return jax.vmap(lambda f, s, a: self._with_model(f, self.env.step, s, a))(
            self.randomized_fields, state, action)


def randomize_physics(model, key: jax.Array, *, mass: tuple[float, float] = (0.8, 1.2),
                      friction: tuple[float, float] = (0.6, 1.4),
                      damping: tuple[float, float] = (0.8, 1.2),
                      gain: tuple[float, float] = (0.8, 1.2)):
    """Scale body masses, sliding friction, joint damping and actuator gains by uniform factors."""
    k_mass, k_friction, k_damping, k_gain = jax.random.split(key, 4)

    def scale(k, x, bounds):
        return x * jax.random.uniform(k, x.shape, minval=bounds[0], maxval=bounds[1])

    gainprm = model.actuator_gainprm
    biasprm = model.actuator_biasprm
    g = jax.random.uniform(k_gain, gainprm[:, :1].shape, minval=gain[0], maxval=gain[1])
    # Position/velocity servos carry their gain in both gainprm[0] and biasprm[1:3].
    return model.replace(
        body_mass=scale(k_mass, model.body_mass, mass),
        geom_friction=model.geom_friction.at[:, 0].set(
            scale(k_friction, model.geom_friction[:, 0], friction)),
        dof_damping=scale(k_damping, model.dof_damping, damping),
        actuator_gainprm=gainprm.at[:, :1].multiply(g),
        actuator_biasprm=biasprm.at[:, 1:3].multiply(g),
    )


def _physics_finite(env: Env, state: State) -> jax.Array:
    """Per-env flag: obs and physics state are all finite."""
    batch = state.obs.shape[:1]
    ok = jnp.all(jnp.isfinite(state.obs.reshape(batch + (-1,))), axis=-1)
    data = env.unwrapped.physics(state.data)
    for name in ("qpos", "qvel"):
        x = getattr(data, name, None)
        if x is not None:
            ok &= jnp.all(jnp.isfinite(x.reshape(batch + (-1,))), axis=-1)
    return ok


class NanGuardWrapper(Wrapper):
    """Ends the episode of any env whose simulation diverged (NaN/inf) so `AutoResetWrapper`
    resets it; counts them in `metrics["nan_resets"]`. Wraps a batched env.

    A diverged step is a termination with zero reward and a zero observation, so no NaN reaches
    the learner; every other env in the batch is left bit-identical.
    """

    def reset(self, key: jax.Array) -> State:
        state = self.env.reset(key)
        return state.replace(metrics={**state.metrics, "nan_resets": jnp.zeros_like(state.reward)})

    def step(self, state: State, action: jax.Array) -> State:
        nxt = self.env.step(state, action)
        bad = ~_physics_finite(self.env, nxt)
        zero = jnp.zeros_like(nxt.reward)
        metrics = {k: jnp.where(bad, zero, v) for k, v in nxt.metrics.items()}
        metrics["nan_resets"] = bad.astype(nxt.reward.dtype)
        return nxt.replace(
            obs=select_envs(bad, jnp.zeros_like(nxt.obs), nxt.obs),
            reward=jnp.where(bad, zero, nxt.reward), done=nxt.done | bad,
            truncated=nxt.truncated & ~bad, metrics=metrics)


class AutoResetWrapper(Wrapper):
    """Resets envs whose episode ended, keeping the pre-reset obs in `extras["final_obs"]`.

    The step's reward/done/truncated/metrics describe the finished transition; obs and physics
    are the new episode's. Wraps a batched env.

    A finished env starts from a freshly drawn initial state kept ready in
    `extras["reset_cache"]`; the whole cache is redrawn every `refresh_every` steps. So a step
    costs a select, not a reset, even when some env finishes on every step (as in locomotion),
    while episodes still start from fresh random states (an env that finishes twice between
    refreshes repeats its start). `refresh_every=1` redraws on every step; `refresh_every=0`
    never does, and the reset is not compiled into the step at all: each env restarts from
    `pool` initial states drawn for it at reset, in turn (with `pool=1`, from one, as Brax's
    AutoResetWrapper does). The pool is drawn by the reset's own program run `pool` more times
    (a scan): it costs memory, `pool` states per env, but no compile time.
    """

    def __init__(self, env: Env, refresh_every: int = 32, pool: int = 1):
        super().__init__(env)
        if refresh_every < 0:
            raise ValueError(f"refresh_every must be >= 0 (0: never redraw), got "
                             f"{refresh_every}")
        if pool < 1:
            raise ValueError(f"pool must be >= 1 (initial states per env), got {pool}")
        if pool > 1 and refresh_every:
            raise ValueError(f"a pool of {pool} starts per env stands in for the redraw: set "
                             f"refresh_every=0 (or pool=1 to redraw every {refresh_every} "
                             "steps)")
        self.refresh_every, self.pool = refresh_every, pool

    @staticmethod
    def _cache_keys(keys: jax.Array) -> jax.Array:
        # fold_in keeps the cache's keys apart from the episode keys the envs already hold.
        return jax.vmap(lambda k: jax.random.fold_in(k, 0x5EED))(keys)

    def _draw(self, keys: jax.Array) -> State:
        return self.env.reset(self._cache_keys(keys))

    def reset(self, key: jax.Array) -> State:
        """The envs' first states and the cache (or pool) drawn from their keys: resets one
        after the other, as a scan, so the program holds the env's reset once (two compile in
        about half the time of two resets written out)."""
        keys = env_keys(key, self.env.batch_size)

        def draw(keys, _):
            state = self.env.reset(keys)
            return self._cache_keys(state.key), state

        _, drawn = jax.lax.scan(draw, keys, length=1 + self.pool)
        state = jax.tree.map(lambda x: x[0], drawn)
        extras = {"final_obs": state.obs, "clock": jnp.zeros((), jnp.int32)}
        if self.pool == 1:
            extras["reset_cache"] = jax.tree.map(lambda x: x[1], drawn)
        else:  # env-major, (batch, pool, ...), so the pool splits over devices with its envs
            extras["reset_cache"] = jax.tree.map(lambda x: jnp.swapaxes(x[1:], 0, 1), drawn)
            extras["reset_slot"] = jnp.zeros(state.done.shape, jnp.int32)
        return state.replace(extras={**state.extras, **extras})

    def step(self, state: State, action: jax.Array) -> State:
        ours = ("final_obs", "reset_cache", "reset_slot", "clock")
        cache, clock = state.extras["reset_cache"], state.extras["clock"] + 1
        inner = state.replace(extras={k: v for k, v in state.extras.items() if k not in ours})
        nxt = self.env.step(inner, action)

        extras = {"final_obs": nxt.obs, "reset_cache": cache, "clock": clock}
        start = cache
        if self.pool > 1:  # each env's next start from its pool, in turn
            slot = state.extras["reset_slot"]
            start = jax.tree.map(lambda x: jax.vmap(lambda starts, i: starts[i])(x, slot), cache)
            extras["reset_slot"] = jnp.where(nxt.done, (slot + 1) % self.pool, slot)
        # A plain select: cheaper than a branch that would copy the whole state through.
        fresh = start.replace(reward=nxt.reward, done=nxt.done, truncated=nxt.truncated,
                              metrics=nxt.metrics)
        out = select_envs(nxt.done, fresh, nxt)
        if self.refresh_every:
            extras["reset_cache"] = jax.lax.cond(clock % self.refresh_every == 0,
                                                 lambda c: self._draw(c.key), lambda c: c, cache)
        return out.replace(extras={**out.extras, **extras})


FIRST_STATES_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}
"""XLA options of `first_states`' programs."""


def first_states(env: Env, key: jax.Array) -> State:
    """`env.reset(key)` as one program compiled at XLA's optimization level 0: the states a
    training run starts from. The program runs once per run, so its compile is all it costs,
    and level 0 roughly halves that (a training batch's reset on 2 CPU cores: cartpole 4.2 s to
    2.1 s, hopper 8.5 s to 4.0 s). The states are equally valid draws; they may differ from the
    default level's in the last bits (XLA's optimizations reorder float arithmetic). Called
    inside a trace (`jax.eval_shape`, a jitted caller), the reset becomes part of that
    program."""
    return with_compiler_options(env.reset, FIRST_STATES_COMPILER_OPTIONS)(key)


def wrap_for_training(env: Env, num_envs: int, *, episode_length: int | None = None,
                      randomize: Callable | None = None, randomize_key: jax.Array | None = None,
                      nan_guard: bool = True, reset_refresh: int = 32,
                      reset_pool: int = 1) -> Env:
    """The standard stack: time limit → vmap (or domain randomization) → NaN guard → autoreset.

    `nan_guard=False` drops the guard (a diverged env then stays NaN until its time limit);
    `reset_refresh` and `reset_pool` are the autoreset's `refresh_every` and `pool`.
    """
    if episode_length is None:
        episode_length = getattr(getattr(env, "config", None), "episode_length", 1000)
    env = EpisodeWrapper(env, episode_length)
    if randomize is not None:
        if randomize_key is None:
            raise ValueError("randomize needs randomize_key: pass a jax.random.PRNGKey.")
        env = DomainRandomizationWrapper(env, num_envs, randomize, randomize_key)
    else:
        env = VmapWrapper(env, num_envs)
    if nan_guard:
        env = NanGuardWrapper(env)
    return AutoResetWrapper(env, reset_refresh, reset_pool)
