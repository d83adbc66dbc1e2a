import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robojax import envs
from robojax.core.env import Wrapper
from robojax.core.wrappers import (
    AutoResetWrapper,
    DomainRandomizationWrapper,
    EpisodeWrapper,
    NanGuardWrapper,
    VmapWrapper,
    randomize_physics,
    wrap_for_training,
)

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)


@pytest.fixture(scope="module")
def cartpole():
    return envs.make("cartpole-balance", episode_length=3)


def test_episode_wrapper_truncates_and_autoreset_keeps_final_obs(cartpole):
    env = wrap_for_training(cartpole, 2, episode_length=3)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    zeros = jnp.zeros((2, 1))
    for _ in range(2):
        state = step(state, zeros)
        assert not state.done.any() and not state.truncated.any()
    before = state
    state = step(state, zeros)
    assert state.done.all() and state.truncated.all()  # time limit: truncated, not terminated
    assert not state.terminated.any()
    assert state.step.tolist() == [0, 0]  # new episodes began
    # final_obs is the last observation of the old episode, obs the new episode's first.
    assert not np.allclose(state.extras["final_obs"], state.obs)
    np.testing.assert_allclose(state.extras["final_obs"][:, 0], before.obs[:, 0], atol=0.05)


@pytest.mark.slow
def test_autoreset_restarts_from_fresh_states_or_from_the_first_one(cartpole):
    zeros = jnp.zeros((2, 1))

    def starts(refresh: int, pool: int = 1) -> list[np.ndarray]:  # each episode's first obs
        env = wrap_for_training(cartpole, 2, episode_length=3, reset_refresh=refresh,
                                reset_pool=pool)
        state, step = jax.jit(env.reset)(jax.random.PRNGKey(0)), jax.jit(env.step)
        firsts = [state.obs]
        for t in range(1, 13):
            state = step(state, zeros)
            if t % 3 == 0:
                firsts.append(state.obs)
        return firsts

    fresh, first, pooled = starts(1), starts(0), starts(0, pool=3)
    assert all(not np.allclose(a, b) for a, b in zip(fresh, fresh[1:], strict=False))
    assert all(np.array_equal(first[1], f) for f in first[2:])  # always the cached start
    # A pool of 3: each env's three starts in turn, then the first again; all distinct.
    assert np.array_equal(pooled[1], pooled[4])
    assert all(not np.allclose(a, b) for a, b in zip(pooled, pooled[1:4], strict=False))
    assert not np.allclose(pooled[1][0], pooled[1][1])  # and distinct across the envs
    assert np.array_equal(pooled[1], first[1])  # the pool's first draw is the single cache's
    with pytest.raises(ValueError, match="refresh_every must be >= 0"):
        AutoResetWrapper(VmapWrapper(cartpole, 2), refresh_every=-1)
    with pytest.raises(ValueError, match="pool must be >= 1"):
        AutoResetWrapper(VmapWrapper(cartpole, 2), refresh_every=0, pool=0)
    with pytest.raises(ValueError, match="set refresh_every=0"):
        AutoResetWrapper(VmapWrapper(cartpole, 2), refresh_every=32, pool=4)


def test_termination_is_not_truncation():
    env = EpisodeWrapper(envs.make("hopper"), 1000)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    # Throw the hopper down: it falls and terminates long before the time limit.
    state = state.replace(data=state.data.replace(qpos=state.data.qpos.at[2].set(1.0)))
    state = jax.jit(env.step)(state, jnp.zeros(3))
    assert bool(state.done) and not bool(state.truncated) and bool(state.terminated)


@pytest.mark.slow
def test_wrong_action_shape_and_dtype_are_clear_errors(cartpole):
    single = cartpole
    state = jax.jit(single.reset)(jax.random.PRNGKey(0))  # the checks run before any physics
    with pytest.raises(ValueError, match=r"shape \(2,\), expected \(1,\)"):
        single.step(state, jnp.zeros(2))
    with pytest.raises(TypeError, match="float"):
        single.step(state, jnp.zeros(1, dtype=jnp.int32))
    with pytest.raises(ValueError, match="NaN"):
        single.step(state, jnp.array([jnp.nan]))
    batched = VmapWrapper(cartpole, 3)
    with pytest.raises(ValueError, match="num_envs, action_size"):
        batched.step(jax.jit(batched.reset)(jax.random.PRNGKey(0)), jnp.zeros((2, 1)))


@pytest.mark.slow
class _DivergeOnCue(Wrapper):
    """Physics that blows up (NaN positions) when the action is above 1.5: a diverged env.
    (A NaN action cannot do it: the env replaces non-finite actions.)"""

    def step(self, state, action):
        state = self.env.step(state, action)
        qpos = jnp.where(action[0] > 1.5, jnp.nan, state.data.qpos)
        return state.replace(data=state.data.replace(qpos=qpos),
                             obs=jnp.where(action[0] > 1.5, jnp.nan, state.obs))


@pytest.mark.quick_compile(False)  # two programs bitwise equal: at level 1 (level 0 reorders)
def test_nan_guard_resets_only_the_diverged_env(cartpole):
    env = _DivergeOnCue(envs.make("cartpole-balance"))
    guarded = AutoResetWrapper(NanGuardWrapper(VmapWrapper(EpisodeWrapper(env, 1000), 4)))
    plain = AutoResetWrapper(VmapWrapper(EpisodeWrapper(env, 1000), 4))
    actions = jax.random.uniform(jax.random.PRNGKey(1), (6, 4, 1), minval=-1, maxval=1)
    actions = actions.at[2, 1].set(2.0)  # env 1 diverges at step 2

    def run(wrapped):
        @jax.jit
        def go(key):
            def one(state, action):
                state = wrapped.step(state, action)
                return state, (state.obs, state.reward, state.done,
                               state.metrics.get("nan_resets", jnp.zeros(4)))
            return jax.lax.scan(one, wrapped.reset(key), actions)[1]
        return go(jax.random.PRNGKey(0))

    obs, reward, done, nan_resets = run(guarded)
    ref_obs, ref_reward, _, _ = run(plain)
    assert np.all(np.isfinite(obs)) and np.all(np.isfinite(reward))
    assert nan_resets[:, 1].tolist() == [0, 0, 1, 0, 0, 0]
    assert done[2, 1] and reward[2, 1] == 0
    others = [0, 2, 3]
    np.testing.assert_array_equal(obs[:, others], ref_obs[:, others])  # bit-identical
    np.testing.assert_array_equal(reward[:, others], ref_reward[:, others])
    assert not np.all(np.isfinite(ref_obs[:, 1]))  # without the guard env 1 stays NaN


@pytest.mark.slow
def test_domain_randomization_changes_physics_per_env():
    env = envs.make("cartpole-balance")
    dr = DomainRandomizationWrapper(EpisodeWrapper(env, 1000), 3, randomize_physics,
                                    jax.random.PRNGKey(5))
    masses = dr.randomized_fields[dr._batched_ids.index(
        next(i for i in dr._batched_ids if dr.randomized_fields[dr._batched_ids.index(i)].shape
             == (3, *env.mjx_model.body_mass.shape)))]
    assert masses.shape[0] == 3 and not np.allclose(masses[0], masses[1])
    state = jax.jit(dr.reset)(jnp.tile(jax.random.PRNGKey(0)[None], (3, 1)))  # same start
    push = jnp.ones((3, 1))
    step = jax.jit(dr.step)
    for _ in range(20):
        state = step(state, push)
    cart_x = np.asarray(state.data.qpos[:, 0])
    assert len(np.unique(np.round(cart_x, 6))) == 3  # same start and actions, different physics


def test_randomize_must_change_something():
    env = envs.make("cartpole-balance")
    with pytest.raises(ValueError, match="changed no model field"):
        DomainRandomizationWrapper(env, 2, lambda model, key: model, jax.random.PRNGKey(0))
