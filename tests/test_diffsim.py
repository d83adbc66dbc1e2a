"""The differentiable-rollout library (`robojax.diffsim`) and the switch that makes MJX tasks
differentiable (`robojax.core.differentiable`): finite differences, remat, contacts, the
NaN-skip path, and a user's own `jax.grad` through `env.step`."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from robojax import diffsim, envs
from robojax.core.differentiable import NotDifferentiableError, differentiable
from robojax.core.wrappers import VmapWrapper

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)


def _rollout_loss(cfg: diffsim.GradientConfig, env, length: int):
    """A smooth loss of a linear tanh policy's weights, through `length` physics steps."""
    batched = VmapWrapper(differentiable(env), 4)
    first = jax.jit(batched.reset)(jax.random.PRNGKey(3))

    def loss(w):
        act = lambda obs, key: jnp.tanh(obs @ w)  # noqa: E731
        _, steps = diffsim.rollout(cfg, batched, act, first, jax.random.PRNGKey(0), length)
        return jnp.mean(jnp.sum(steps.final_obs**2, axis=-1))

    return loss


@pytest.mark.slow
def test_gradient_matches_central_finite_differences_without_contacts():
    env = envs.make("pendulum-swingup")
    loss = jax.jit(_rollout_loss(diffsim.GradientConfig(remat=False), env, length=30))
    w = jax.random.normal(jax.random.PRNGKey(1), (3, 1)) * 0.5
    grad = jax.grad(loss)(w)
    eps = 1e-2
    for direction in jax.random.normal(jax.random.PRNGKey(2), (3, 3, 1)):
        direction = direction / jnp.linalg.norm(direction)
        fd = (loss(w + eps * direction) - loss(w - eps * direction)) / (2 * eps)
        analytic = jnp.vdot(grad, direction)
        # float32 physics: central differences agree to within 2% (+ a small absolute slack)
        np.testing.assert_allclose(analytic, fd, rtol=2e-2, atol=1e-3)


@pytest.mark.slow
def test_remat_changes_memory_not_gradients():
    env = envs.make("pendulum-swingup")
    w = jnp.full((3, 1), 0.3)
    plain = jax.grad(_rollout_loss(diffsim.GradientConfig(remat=False), env, 32))(w)
    remat = jax.grad(_rollout_loss(diffsim.GradientConfig(remat=True), env, 32))(w)
    np.testing.assert_allclose(remat, plain, rtol=1e-5, atol=1e-7)
    assert diffsim.remat_segment(diffsim.GradientConfig(), 512) in (16, 32)


@pytest.mark.slow
def test_gradients_through_100_contact_steps_are_finite():
    env = envs.make("hopper")
    w = jax.random.normal(jax.random.PRNGKey(0), (env.observation_spec.size,
                                                  env.action_spec.size)) * 0.3
    cfg = diffsim.GradientConfig(step_grad_clip=1.0, contact_grad_scale=0.5, remat=False)
    grad = jax.jit(jax.grad(_rollout_loss(cfg, env, 100)))(w)  # remat: tested above
    assert bool(jnp.all(jnp.isfinite(grad)))
    assert float(jnp.abs(grad).max()) > 0


@pytest.mark.quick_compile(False)  # two programs bitwise equal: at level 1 (level 0 reorders)
@pytest.mark.slow
def test_differentiable_solver_leaves_the_forward_pass_bitwise_unchanged():
    env = envs.make("hopper")  # contacts: the solver's line search runs
    batched = VmapWrapper(env, 4)
    first = jax.jit(batched.reset)(jax.random.PRNGKey(0))
    w = jnp.full((env.observation_spec.size, env.action_spec.size), 0.1)

    def plain(state, _):
        nxt = batched.step(state, jnp.tanh(state.obs @ w))
        return nxt, nxt.obs

    act = lambda obs, key: jnp.tanh(obs @ w)  # noqa: E731
    cfg = diffsim.GradientConfig(remat=False)
    _, expected = jax.jit(lambda s: jax.lax.scan(plain, s, None, length=40))(first)
    _, steps = jax.jit(lambda s: diffsim.rollout(cfg, batched, act, s, jax.random.PRNGKey(1),
                                                 40))(first)
    assert bool(jnp.all(steps.final_obs == expected))


@pytest.mark.slow
def test_truncation_and_clipping_shape_the_gradient():
    env = envs.make("pendulum-swingup")
    w = jnp.full((3, 1), 0.3)
    full = jax.grad(_rollout_loss(diffsim.GradientConfig(), env, 32))(w)
    cut = jax.grad(_rollout_loss(diffsim.GradientConfig(truncation_length=4), env, 32))(w)
    clipped = jax.grad(_rollout_loss(diffsim.GradientConfig(step_grad_clip=1e-3), env, 32))(w)
    assert not np.allclose(cut, full) and float(jnp.linalg.norm(cut)) > 0
    assert float(jnp.linalg.norm(clipped)) < float(jnp.linalg.norm(full))


def test_non_finite_gradient_skips_the_update_and_is_counted():
    optimizer = optax.adam(1e-2)
    params = {"w": jnp.ones(3)}
    opt_state = optimizer.init(params)
    bad = {"w": jnp.array([1.0, jnp.nan, 0.0])}
    new_params, new_opt_state, skipped = diffsim.guarded_update(optimizer, bad, opt_state, params)
    assert float(skipped) == 1.0
    assert bool(jnp.all(new_params["w"] == params["w"]))
    assert all(bool(jnp.all(a == b)) for a, b in zip(jax.tree.leaves(new_opt_state),
                                                     jax.tree.leaves(opt_state), strict=True))
    good = {"w": jnp.ones(3)}
    new_params, _, skipped = diffsim.guarded_update(optimizer, good, opt_state, params)
    assert float(skipped) == 0.0 and not bool(jnp.all(new_params["w"] == params["w"]))


def test_saturation_penalty_pulls_a_saturated_actor_back_and_ignores_one_in_range():
    from robojax.policies.gaussian import GaussianPolicy

    from robojax.algos import apg, shac
    from robojax.core.types import ArraySpec

    policy = GaussianPolicy((8,), "elu", -1.0)
    params = policy.init(jax.random.PRNGKey(0), ArraySpec((3,)), ArraySpec((2,)))
    obs = jax.random.normal(jax.random.PRNGKey(1), (32, 3))
    penalty = lambda p: diffsim.saturation_penalty(policy, p, obs, 2.0)  # noqa: E731
    assert [float(x) for x in penalty(params)] == [0.0, 0.0]
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(
        jax.grad(lambda p: penalty(p)[0])(params)))

    # A mean pushed to ~10 (tanh' ~ 1e-8: no gradient from any reward reaches it).
    bias = params["net"]["params"]["Dense_1"]["bias"]
    saturated = jax.tree.map(lambda x: x, params)
    saturated["net"]["params"]["Dense_1"]["bias"] = bias + jnp.array([10.0, -10.0])
    value, fraction = penalty(saturated)
    assert float(fraction) == 1.0 and float(value) == pytest.approx(64.0, rel=0.05)
    grads = jax.grad(lambda p: penalty(p)[0])(saturated)
    assert float(grads["log_std"].sum()) == 0.0  # only the mean is touched
    moved = jax.tree.map(lambda p, g: p - 0.01 * g, saturated, grads)
    assert float(jnp.abs(policy.mode(moved, obs)).mean()) < \
        float(jnp.abs(policy.mode(saturated, obs)).mean())

    for config in (apg.APGConfig, shac.SHACConfig):
        with pytest.raises(ValueError, match="saturation_cost must be >= 0"):
            config(saturation_cost=-1.0).validate()
        with pytest.raises(ValueError, match="saturation_bound must be > 0"):
            config(saturation_bound=0.0).validate()


def test_solver_only_runs_on_mjx_tasks():
    with pytest.raises(TypeError, match="robojax MJX task"):
        differentiable(object())


def _total_reward(env, state, action, length: int = 3):
    def step(state, _):
        state = env.step(state, action)
        return state, state.reward

    return jax.lax.scan(step, state, None, length=length)[1].sum()


@pytest.mark.slow
def test_a_users_grad_through_env_step_needs_the_switch_and_the_error_names_it():
    env = envs.make("cartpole-swingup")  # a rail limit: MJX iterates its constraint solver
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    action = jnp.full(env.action_spec.shape, 0.3)
    with pytest.raises(NotDifferentiableError, match=r"differentiable\(env\)"):
        jax.jit(jax.grad(lambda a: _total_reward(env, state, a)))(action)
    twin = differentiable(env)
    assert twin.differentiable and not env.differentiable and differentiable(twin) is twin
    grad = jax.jit(jax.grad(lambda a: _total_reward(twin, state, a)))(action)
    assert bool(jnp.all(jnp.isfinite(grad))) and float(jnp.abs(grad).max()) > 0
    # The guard changes nothing forward: the guarded physics step is the bare one, bit for bit.
    ctrl = jnp.full(env.action_spec.shape, 0.3)
    guarded = jax.jit(env.physics_step)(state.data, ctrl)
    bare = jax.jit(env._substeps)(state.data, ctrl)
    assert all(bool(jnp.all(a == b)) for a, b in zip(jax.tree.leaves(guarded),
                                                     jax.tree.leaves(bare), strict=True))


def test_the_fixed_step_line_search_applies_only_in_the_context_that_asked_for_it():
    import concurrent.futures

    from robojax.core.differentiable import fixed_step_linesearch

    env = envs.make("hopper")
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    ctrl = jnp.zeros(env.action_spec.shape)
    trace = lambda: str(jax.make_jaxpr(env.physics_step)(state.data, ctrl))  # noqa: E731
    mjx_own = trace()
    with fixed_step_linesearch():
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            other_thread = pool.submit(trace).result()
        this_thread = trace()
    assert other_thread == mjx_own  # e.g. an evaluation traced beside training
    assert this_thread != mjx_own
    assert trace() == mjx_own  # and back to MJX's own once the context ends
