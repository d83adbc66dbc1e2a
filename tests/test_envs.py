"""Contract tests run over every registered env, plus each task's scripted solver."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robojax import envs
from robojax.core.wrappers import VmapWrapper

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)

NAMES = envs.names()


def test_suite_has_the_promised_tasks():
    for name in ("cartpole-balance", "cartpole-swingup", "pendulum-swingup", "reacher",
                 "point-mass", "hopper", "pusher", "push-t", "detour"):
        assert name in NAMES


@pytest.mark.parametrize("name", [name if name == "cartpole-balance" else pytest.param(
    name, marks=pytest.mark.slow) for name in NAMES])  # one in `make test-fast`
def test_env_contract(name):
    env = envs.make(name)
    batched = VmapWrapper(env, 4)
    reset, step = jax.jit(batched.reset), jax.jit(batched.step)

    def trajectory(seed):
        state = reset(jax.random.PRNGKey(seed))
        actions = jax.random.uniform(jax.random.PRNGKey(seed + 7), (5, 4, env.action_spec.size),
                                     minval=-1, maxval=1)
        obs, rewards = [state.obs], []
        for a in actions:
            state = step(state, a)
            obs.append(state.obs)
            rewards.append(state.reward)
        return state, np.stack(obs), np.stack(rewards)

    state, obs, rewards = trajectory(0)
    assert obs.shape == (6, 4, *env.observation_spec.shape)
    assert obs.dtype == np.float32
    assert rewards.shape == (5, 4)
    assert np.all(np.isfinite(obs)) and np.all(np.isfinite(rewards))
    assert state.step.tolist() == [5, 5, 5, 5]
    assert env.mj_model.nu == env.action_spec.shape[0]
    assert env.n_substeps >= 1 and env.mjx_model is not None
    assert any(k.startswith("reward/") for k in state.metrics)
    # Same seed, same trajectory (bitwise); another seed, another start.
    _, obs_again, rewards_again = trajectory(0)
    np.testing.assert_array_equal(obs, obs_again)
    np.testing.assert_array_equal(rewards, rewards_again)
    _, obs_other, _ = trajectory(1)
    assert not np.array_equal(obs[0], obs_other[0])


def test_a_reset_computes_what_its_task_reads_and_the_episode_is_the_same():
    """A reset runs MJX's whole forward pass only where the task's observation or first reward
    reads more than the state and the poses; either way the first step computes everything
    afresh, so the episodes agree to the last bit."""
    from envs.pendulum import Pendulum

    class ReadsAcceleration(Pendulum):  # a task observing something only a forward pass gives
        def observe(self, data, key):
            return jnp.concatenate([super().observe(data, key), data.qacc])

    def episode(env):
        state = env.reset(jax.random.PRNGKey(3))
        steps = jax.lax.scan(lambda s, a: (env.step(s, a),) * 2, state, jnp.ones((5, 1)))[1]
        return state, (steps.data.qpos, steps.data.qvel, steps.reward)

    (poses, plain), (forward, full) = (jax.jit(episode, static_argnums=0)(env)
                                        for env in (envs.make("pendulum-swingup"),
                                                    ReadsAcceleration()))
    assert not np.any(poses.data.qacc)  # only the poses: nothing read the accelerations
    assert forward.obs[-1] == forward.data.qacc[0] != 0  # gravity, from the forward pass
    for got, expected in zip(plain, full, strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name,threshold", [
    ("cartpole-balance", 950), *(pytest.param(*case, marks=pytest.mark.slow) for case in (
        ("cartpole-swingup", 700), ("pendulum-swingup", 600), ("point-mass", 900),
        ("reacher", 900)))])
def test_scripted_solvers_score_well(name, threshold):
    env = envs.make(name)
    solve = envs.solver(name)
    batched = VmapWrapper(env, 8)

    @jax.jit
    def episode_return(key):
        def one_step(state, _):
            state = batched.step(state, jax.vmap(lambda s: solve(env, s))(state))
            return state, state.reward
        _, rewards = jax.lax.scan(one_step, batched.reset(key), None, env.config.episode_length)
        return rewards.sum(0)

    returns = episode_return(jax.random.PRNGKey(3))
    assert float(jnp.mean(returns)) >= threshold


def test_shaping_terms_are_logged_and_weighted_only_when_asked():
    def first_step(name, **overrides):
        env = envs.make(name, **overrides)
        return jax.jit(env.step)(jax.jit(env.reset)(jax.random.PRNGKey(0)), jnp.ones(1))

    state = first_step("pendulum-swingup")
    cos, vel = float(jnp.cos(state.data.qpos[0])), float(state.data.qvel[0])
    swing, upright = state.metrics["reward/swing"], state.metrics["reward/upright"]
    np.testing.assert_allclose(swing, 0.5 * (1 + cos), rtol=1e-6)
    energy = 0.5 * 0.25 * vel**2 + 9.81 * 0.5 * (cos - 1)  # 1 kg at 0.5 m; 0 at rest upright
    np.testing.assert_allclose(state.metrics["reward/energy"], 1 - abs(energy) / 9.81, atol=1e-6)
    balance = state.metrics["reward/balance"]
    np.testing.assert_allclose(balance, np.exp(-(1 - cos) / 0.05), rtol=1e-5)
    assert float(state.reward) == float(upright)  # the task's reward: the sparse term alone
    shaped = first_step("pendulum-swingup",
                        reward_scales={"swing": 1.0, "energy": 1.0, "balance": 2.0})
    np.testing.assert_allclose(
        shaped.reward, upright + swing + state.metrics["reward/energy"] + 2 * balance, rtol=1e-6)
    # Cartpole's reward is a product: the energy factor enters only with a nonzero exponent.
    state = first_step("cartpole-swingup")
    factors = {k.removeprefix("reward/"): float(v) for k, v in state.metrics.items()
               if k.startswith("reward/")}
    task = np.prod([v for k, v in factors.items() if k not in ("energy", "balance")])
    np.testing.assert_allclose(state.reward, task, rtol=1e-5)
    assert 0 < factors["energy"] < 0.01  # hanging almost at rest: the farthest from upright
    np.testing.assert_allclose(factors["balance"], 0.5, atol=1e-6)  # its floor, far from upright
    shaped = first_step("cartpole-swingup", reward_scales={"energy": 1.0, "balance": 2.0})
    np.testing.assert_allclose(shaped.reward, task * factors["energy"] * factors["balance"] ** 2,
                               rtol=1e-5)


def test_envs_built_alike_share_one_traced_step_and_others_do_not():
    config = {"episode_length": 123}  # built nowhere else in the suite: nothing traced yet
    first, second = envs.make("pendulum-swingup", **config), envs.make("pendulum-swingup", **config)
    shaped = envs.make("pendulum-swingup", **config, reward_scales={"swing": 1.0})
    assert first is not second and second._step_program is first._step_program
    assert shaped._step_program is not first._step_program
    state = second.reset(jax.random.PRNGKey(0))
    action = jnp.ones(1)
    assert first._step_program._cache_size() == 0
    assert float(second.step(state, action).reward) == float(first.step(state, action).reward)
    assert first._step_program._cache_size() == 1  # traced once, for both
    assert float(shaped.step(state, action).reward) > float(first.step(state, action).reward)
    with pytest.raises(TypeError, match="same kind, got Cartpole for Pendulum"):
        first.share_programs(envs.make("cartpole-balance"))


def test_detour_pays_for_reaching_the_goal_not_for_waiting_beside_it():
    env = envs.make("detour")
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    act = jax.jit(lambda state: envs.solver("detour")(env, state))
    state = reset(jax.random.PRNGKey(0))
    start_distance = float(jnp.linalg.norm(state.obs[4:6]))
    expert_return, progress = 0.0, 0.0
    for _ in range(env.config.episode_length):
        state = step(state, act(state))
        expert_return += float(state.reward)
        progress += float(state.metrics["reward/progress"])
        if bool(state.done):
            break
    assert float(state.metrics["reward/success"]) == 1.0
    end_distance = float(jnp.linalg.norm(state.data.mocap_pos[0, :2] - state.data.qpos))
    np.testing.assert_allclose(progress, start_distance - end_distance, atol=1e-5)
    np.testing.assert_allclose(expert_return, 10 * progress + 1.0, rtol=1e-5)
    # At rest 4 cm beside the goal (the old dense term paid ~0.9 a step there): nothing.
    state = reset(jax.random.PRNGKey(0))
    beside = state.data.mocap_pos[0, :2] + jnp.array([0.04, 0.0])
    state = state.replace(data=state.data.replace(qpos=beside))
    waiting_return = 0.0
    for _ in range(env.config.episode_length):
        state = step(state, jnp.zeros(2))
        waiting_return += float(state.reward)
    assert abs(waiting_return) < 1e-3 and float(state.metrics["reward/near_goal"]) > 0.9


def test_cartpole_random_start_spreads_a_share_of_the_starts():
    keys = jax.random.split(jax.random.PRNGKey(0), 512)

    def starts(**overrides):
        env = envs.make("cartpole-swingup", **overrides)
        return jax.vmap(jax.jit(env.reset))(keys).data.qpos

    default, spread = starts(), starts(random_start=0.5)
    moved = np.any(np.asarray(spread) != np.asarray(default), axis=1)
    assert 0.4 < moved.mean() < 0.6  # about half the starts are random, the rest as usual
    assert 1.0 < np.abs(spread[moved, 0]).max() <= 1.5  # the cart anywhere on the rail
    assert np.cos(spread[moved, 1]).max() > 0.99  # some start near upright, to be caught
    np.testing.assert_array_equal(default, starts(random_start=0.0))
    with pytest.raises(ValueError, match="random_start is a probability.*in \\[0, 1\\]"):
        envs.make("cartpole-swingup", random_start=1.5)


@pytest.mark.slow
def test_pusher_solver_pushes_block_to_goal():
    env = envs.make("pusher")
    solve = envs.solver("pusher")
    batched = VmapWrapper(env, 32)

    @jax.jit
    def final_success(key):
        def one_step(state, _):
            state = batched.step(state, jax.vmap(lambda s: solve(env, s))(state))
            return state, state.metrics["reward/success"]
        _, success = jax.lax.scan(one_step, batched.reset(key), None, env.config.episode_length)
        return success[-1].mean()

    assert float(final_success(jax.random.PRNGKey(0))) >= 0.7


def test_push_t_coverage_is_the_overlap_with_the_target():
    from robojax.envs.push_t import CELLS, TARGET, coverage

    target, yaw = jnp.array(TARGET[:2]), TARGET[2]
    assert float(coverage(target, yaw)) == 1.0
    # The cells tile the T's area: 0.14 x 0.035 bar plus 0.035 x 0.105 stem.
    assert len(CELLS) * 0.0025**2 == pytest.approx(0.14 * 0.035 + 0.035 * 0.105)
    # Sliding the T up along its own axis by a stem-width uncovers the bar's bottom strip and
    # the bottom of the stem (worked by hand: 0.9 of the area stays covered, to a cell).
    up = jnp.array([-np.sin(yaw), np.cos(yaw)])
    assert float(coverage(target + 0.01 * up, yaw)) == pytest.approx(1 - (
        0.01 * (0.14 - 0.035) + 0.01 * 0.035) / (0.14 * 0.035 + 0.035 * 0.105), abs=0.01)
    assert float(coverage(target, yaw + np.pi)) < 0.5  # upside down
    assert float(coverage(target + 0.5, yaw)) == 0.0


def test_push_t_pays_for_bringing_the_block_to_the_target_not_for_holding_it_near():
    from robojax.envs.push_t import TARGET

    env = envs.make("push-t")
    data = env.reset(jax.random.PRNGKey(0)).data
    at = lambda xy, yaw: data.replace(  # noqa: E731 - the block at a pose, the pusher away
        qpos=jnp.array([0.25, 0.25, *xy, yaw]))
    target = at(TARGET[:2], TARGET[2])
    assert float(env.keypoint_distance(target)) == pytest.approx(0.0, abs=1e-6)
    # A translation moves every keypoint alike: 3-4-5 cm off, 5 cm to come.
    off = at((TARGET[0] + 0.03, TARGET[1] + 0.04), TARGET[2])
    assert float(env.keypoint_distance(off)) == pytest.approx(0.05, abs=1e-6)
    terms = env.reward_terms(off, target, jnp.zeros(2))
    assert float(terms["progress"]) == pytest.approx(0.05, abs=1e-6)
    assert float(terms["success"]) == 1.0
    assert float(env.combine_reward(terms)) == pytest.approx(10 * 0.05 + 1.0, abs=1e-5)
    # Holding the block half on target pays nothing (Diffusion Policy's coverage, logged only,
    # would pay its share every step): a learner gains only by finishing.
    half = at((TARGET[0] + 0.02, TARGET[1]), TARGET[2])
    held = env.reward_terms(half, half, jnp.zeros(2))
    assert 0.3 < float(held["coverage"]) < 0.95
    assert float(env.combine_reward(held)) == 0.0
    dp = envs.make("push-t", reward_scales={"coverage": 1.0, "progress": 0.0, "success": 0.0})
    assert float(dp.combine_reward(held)) == pytest.approx(float(held["coverage"]))
    # `reach` (logged, weight 0): how far the pusher came toward the block, here 10 cm to 5.
    pusher_at = lambda dx, dy: half.replace(qpos=half.qpos.at[:2].set(  # noqa: E731
        half.qpos[2:4] + jnp.array([dx, dy])))
    approach = env.reward_terms(pusher_at(0.06, 0.08), pusher_at(0.03, 0.04), jnp.zeros(2))
    assert float(approach["reach"]) == pytest.approx(0.05, abs=1e-6)
    assert float(env.combine_reward(approach)) == pytest.approx(0.0, abs=1e-6)


def test_push_t_delta_actions_offset_the_pusher_and_its_costs_are_distances():
    from robojax.envs.push_t import REACH, TARGET, solve

    from robojax.core.mjx_env import require_command_actions

    env = envs.make("push-t", action_mode="delta", action_step=0.05)
    state = env.reset(jax.random.PRNGKey(0))
    data, pusher = state.data, state.data.qpos[:2]
    # An action is the pusher's target as an offset of up to action_step from where it is.
    np.testing.assert_allclose(env.action_to_ctrl(data, jnp.zeros(2)), pusher, atol=1e-7)
    np.testing.assert_allclose(env.action_to_ctrl(data, jnp.array([1.0, -0.5])),
                               pusher + jnp.array([0.05, -0.025]), atol=1e-7)
    edge = data.replace(qpos=data.qpos.at[:2].set(jnp.array([0.29, 0.0])))
    assert float(env.action_to_ctrl(edge, jnp.array([1.0, 0.0]))[0]) == pytest.approx(REACH)
    # The expert's target, as an offset: the same place it aims at with position actions.
    absolute = solve(envs.make("push-t"), state) * REACH
    np.testing.assert_allclose(solve(env, state),
                               jnp.clip((absolute - pusher) / 0.05, -1.0, 1.0), atol=1e-5)
    # The costs, paid every step: the keypoints 3-4-5 cm off, the pusher 10 cm from the block.
    off = data.replace(qpos=jnp.array([TARGET[0] + 0.09, TARGET[1] + 0.12, TARGET[0] + 0.03,
                                       TARGET[1] + 0.04, TARGET[2]]))
    terms = env.reward_terms(off, off, jnp.zeros(2))
    assert float(terms["distance"]) == pytest.approx(-0.05, abs=1e-6)
    assert float(terms["approach"]) == pytest.approx(-0.1, abs=1e-6)
    # uncovered: 0 at the target pose, -1 with no overlap, the coverage's shortfall between.
    on = data.replace(qpos=data.qpos.at[2:].set(jnp.array(TARGET)))
    assert float(env.reward_terms(on, on, jnp.zeros(2))["uncovered"]) == 0.0
    away = data.replace(qpos=data.qpos.at[2:4].set(jnp.array([0.25, 0.25])))
    assert float(env.reward_terms(away, away, jnp.zeros(2))["uncovered"]) == -1.0
    shifted = on.replace(qpos=on.qpos.at[2].add(0.01))
    covered = float(env.coverage(shifted))
    assert 0.5 < covered < 0.95
    assert float(env.reward_terms(shifted, shifted, jnp.zeros(2))["uncovered"]) == (
        pytest.approx(covered / 0.95 - 1.0, abs=1e-6))
    # Exports and MuJoCo C replays map actions onto control ranges: refused, with the fix.
    assert envs.make("push-t").actions_are_commands and not env.actions_are_commands
    with pytest.raises(ValueError, match=r"action_mode='delta'.*action_mode='position'"):
        require_command_actions(env, "an export")
    for bad, message in ((dict(action_mode="relative"), "must be 'position' or 'delta'"),
                         (dict(action_mode="delta", action_step=0.0), r"action_step must be")):
        with pytest.raises(ValueError, match=message):
            envs.make("push-t", **bad)


def test_push_t_start_near_target_moves_a_share_of_starts_toward_the_target():
    from robojax.envs.push_t import TARGET

    keys = jax.random.split(jax.random.PRNGKey(3), 4000)
    def starts(**config):
        qpos = jax.vmap(envs.make("push-t", **config).reset)(keys).data.qpos
        return np.asarray(qpos[:, 2:4]), np.asarray(qpos[:, 4])
    block, yaw = starts()
    # 0 is the plain start distribution, key for key.
    np.testing.assert_array_equal(starts(start_near_target=0.0)[0], block)
    near_block, near_yaw = starts(start_near_target=0.5)
    # Each start is its random pose or a point on the way from the target to it: a fraction u
    # of the position offset and u of the yaw offset (the shorter turn), the same u for both.
    offset, near_offset = block - TARGET[:2], near_block - TARGET[:2]
    u = np.linalg.norm(near_offset, axis=-1) / np.linalg.norm(offset, axis=-1)
    np.testing.assert_allclose(near_offset, u[:, None] * offset, atol=1e-6)
    turn = lambda q: np.angle(np.exp(1j * (q - TARGET[2])))  # noqa: E731
    np.testing.assert_allclose(turn(near_yaw), u * turn(yaw), atol=1e-4)
    moved = u < 1.0 - 1e-6
    # The others start exactly as with plain starts.
    np.testing.assert_array_equal(near_block[~moved], block[~moved])
    np.testing.assert_array_equal(near_yaw[~moved], yaw[~moved])
    assert 0.47 < moved.mean() < 0.53  # the share asked for (4000 draws: sd 0.008)
    assert 0.45 < u[moved].mean() < 0.55 and u[moved].min() < 0.05  # u uniform in [0, 1]
    with pytest.raises(ValueError, match=r"start_near_target is a share of episodes in \[0, 1\]"):
        envs.make("push-t", start_near_target=1.5)


@pytest.mark.slow
def test_push_t_expert_reaches_95_percent_coverage():
    from robojax.core.wrappers import EpisodeWrapper
    from robojax.data.collect import solver_controller
    from robojax.rollout import evaluate_episodes

    env = envs.make("push-t")
    eval_env = VmapWrapper(EpisodeWrapper(env, 200), 32)
    metrics = jax.jit(lambda key: evaluate_episodes(
        eval_env, solver_controller(env, "push-t"), key, key, track_success=True))(
        jax.random.PRNGKey(0))
    assert float(metrics["eval/success_rate"]) >= 0.9
    # Peaks are per episode: a success means the overlap peaked at >= 95%.
    assert float(metrics["eval/peak/reward/success"]) == float(metrics["eval/success_rate"])
    assert float(metrics["eval/peak/reward/overlap"]) >= 0.95 * float(
        metrics["eval/success_rate"])


def test_push_t_keypoint_observations_follow_the_block():
    from robojax.envs.push_t import KEYPOINTS, rotation

    pose = envs.make("push-t", observation="pose")
    points = envs.make("push-t")  # the default
    a, b = (jax.jit(e.reset)(jax.random.PRNGKey(3)) for e in (pose, points))
    assert b.obs.shape == (2 + 2 * len(KEYPOINTS),) and pose.observation_spec.shape == (11,)
    block, yaw = a.obs[4:6], jnp.arctan2(a.obs[7], a.obs[6])
    np.testing.assert_allclose(b.obs[:2], a.obs[:2])
    np.testing.assert_allclose(b.obs[2:].reshape(-1, 2), block + KEYPOINTS @ rotation(yaw).T,
                               atol=1e-6)
    with pytest.raises(ValueError, match="'pose' or 'keypoints'"):
        envs.make("push-t", observation="image")


def test_hopper_has_no_solver_and_says_which_do():
    with pytest.raises(ValueError, match="cartpole-balance"):
        envs.solver("hopper")


def test_render_frames(tmp_path):
    from robojax.io.video import RenderUnavailable, write_video

    env = envs.make("cartpole-balance")
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    try:
        frames = env.render([state, state], width=64, height=48)
    except RenderUnavailable as err:
        pytest.skip(str(err))
    assert len(frames) == 2 and frames[0].shape == (48, 64, 3)
    assert frames[0].std() > 0  # not a blank image
    moved = jax.jit(env.step)(state, jnp.ones(env.action_spec.shape))
    trajectory = jax.tree.map(lambda *xs: jnp.stack(xs), state, moved)  # as a scan returns it
    for listed, stacked in zip(env.render([state, moved], width=64, height=48),
                               env.render(trajectory, width=64, height=48), strict=True):
        np.testing.assert_array_equal(listed, stacked)
    assert write_video(tmp_path / "v.gif", frames, fps=10).stat().st_size > 0


def test_gl_backend_is_headless_only_where_its_library_exists(monkeypatch):
    import ctypes.util

    from robojax._gl import can_render, choose_gl_backend

    for var in ("MUJOCO_GL", "DISPLAY", "PYOPENGL_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert choose_gl_backend() is None and "MUJOCO_GL" not in os.environ  # import mujoco works
    assert not can_render(None) and not can_render("glfw")
    osmesa_only = lambda name: "libOSMesa.so" if name == "OSMesa" else None
    monkeypatch.setattr(ctypes.util, "find_library", osmesa_only)
    assert choose_gl_backend() == "osmesa" and os.environ["MUJOCO_GL"] == "osmesa"
    monkeypatch.setenv("MUJOCO_GL", "egl")
    assert choose_gl_backend() == "egl"  # the user's choice stands


def test_render_without_backend_says_how_to_get_one_and_never_retries(monkeypatch):
    import robojax
    from robojax.io import video

    monkeypatch.setattr(robojax, "GL_BACKEND", None)
    monkeypatch.setattr(video, "_failure", None)
    env = envs.make("cartpole-balance")
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    with pytest.raises(video.RenderUnavailable, match="MUJOCO_GL=egl"):
        env.render([state])
    monkeypatch.setattr(robojax, "GL_BACKEND", "egl")  # a failed GL stack is not touched again
    monkeypatch.setattr(video.mujoco, "Renderer", lambda *a, **k: pytest.fail("retried GL"))
    with pytest.raises(video.RenderUnavailable, match="no display"):
        env.render([state])


def _expert_and_mirror_image(env, name: str):
    """A jitted step of the task's expert and, beside it, of its mirror image driven by the
    mirrored actions: `step(state, image) -> (state, image)`."""
    from robojax.data.augment import reflect

    mirror, solve = env.reflection(), envs.solver(name)

    @jax.jit
    def step(state, image):
        action = solve(env, state)
        image = env.step(image, reflect(mirror, state.obs, action)[1])
        return env.step(state, action), image

    return step


@pytest.mark.slow
@pytest.mark.parametrize("observation", ["keypoints", "pose"])
def test_push_t_reflection_maps_trajectories_to_trajectories(observation):
    """The mirror image of an expert trajectory, started from the mirrored state and driven by
    the mirrored actions, is what the simulator produces: observation for observation."""
    from robojax.envs.push_t import MIRROR

    from robojax.data.augment import reflect_obs

    env = envs.make("push-t", observation=observation)
    mirror = env.reflection()
    state = jax.jit(env.reset)(jax.random.PRNGKey(3))
    qpos = state.data.qpos
    image_qpos = jnp.concatenate([MIRROR @ qpos[:2], MIRROR @ qpos[2:4], np.pi / 2 - qpos[4:]])
    image_data = state.data.replace(qpos=image_qpos, ctrl=MIRROR @ state.data.ctrl)
    image = state.replace(data=image_data, obs=env.observe(image_data, state.key))
    assert not np.allclose(image.obs, state.obs)
    step = _expert_and_mirror_image(env, "push-t")
    for _ in range(60):
        np.testing.assert_allclose(reflect_obs(mirror, state.obs), image.obs, atol=1e-4)
        state, image = step(state, image)
    # The expert pushed the block (contacts included) well onto the target.
    assert float(state.metrics["reward/overlap"]) > 0.5
    np.testing.assert_allclose(image.metrics["reward/overlap"], state.metrics["reward/overlap"],
                               atol=1e-3)


def test_detour_reflection_maps_trajectories_to_trajectories():
    """The expert's way round the wall, mirrored: started from the mirrored state and driven by
    the mirrored actions, the simulator goes round the other side, observation for observation,
    and reaches the goal as the original does."""
    from robojax.envs.detour import MIRROR

    from robojax.data.augment import reflect_obs

    env = envs.make("detour")
    mirror = env.reflection()
    state = jax.jit(env.reset)(jax.random.PRNGKey(3))
    data = state.data
    goal = data.mocap_pos.at[0, :2].set(MIRROR @ data.mocap_pos[0, :2])
    image_data = data.replace(qpos=MIRROR @ data.qpos, mocap_pos=goal)
    image = state.replace(data=image_data, obs=env.observe(image_data, state.key))
    step, sides = _expert_and_mirror_image(env, "detour"), []
    for _ in range(env.config.episode_length):
        np.testing.assert_allclose(reflect_obs(mirror, state.obs), image.obs, atol=1e-5)
        sides.append((float(state.obs[0]), float(image.obs[0])))
        state, image = step(state, image)
        if bool(state.done):
            break
    assert bool(state.done) and float(state.metrics["reward/success"]) == 1.0
    assert float(image.metrics["reward/success"]) == 1.0
    x, image_x = max(sides, key=lambda s: abs(s[0]))  # passing the wall: opposite sides
    assert abs(x) > 0.1 and np.sign(image_x) == -np.sign(x)


@pytest.mark.parametrize("name", ["pusher", pytest.param("push-t", marks=pytest.mark.slow)])
def test_sparse_reward_pays_one_on_success_and_ends_the_episode(name):
    from robojax.envs.push_t import TARGET

    env = envs.make(name, sparse_reward=True)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    qpos = state.data.qpos
    if name == "pusher":  # the block onto the goal, the pusher well behind it
        at_goal = qpos.at[2:4].set(state.data.mocap_pos[0, :2])
    else:  # the T onto the target pose, the pusher clear of it
        at_goal = qpos.at[2:5].set(jnp.asarray(TARGET)).at[:2].set(
            jnp.asarray(TARGET[:2]) + 0.2)
    step = jax.jit(env.step)
    action = jnp.zeros(env.action_spec.shape)
    away = step(state, action)
    assert float(away.reward) == 0.0 and not bool(away.done)
    there = step(state.replace(data=state.data.replace(qpos=at_goal)), action)
    assert float(there.reward) == 1.0 and bool(there.terminated)
    dense = envs.make(name)  # the dense default is unchanged: shaped terms, no early end
    assert not dense.config.sparse_reward


@pytest.mark.parametrize("name,config", [(n, {}) for n in envs.names()]
                         + [("push-t", {"observation": "keypoints"})])
def test_every_task_names_each_part_of_its_observation(name, config):
    from robojax.export import observation_layout

    env = envs.make(name, **config)
    layout = observation_layout(env)  # raises where the parts do not cover the observation
    assert layout[-1]["slice"][1] == env.observation_spec.size
    assert len(layout) > 1 and all(part["name"] != "obs" for part in layout)
