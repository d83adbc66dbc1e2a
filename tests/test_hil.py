"""HIL (`--algo hil`): RLPD with the simulated human taking over during collection."""

import dataclasses

import jax
import numpy as np
import pytest
from robojax.envs import make as make_env

from robojax import algos
from robojax.algos import sac
from robojax.hil import human

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)

TINY = sac.HILConfig(num_envs=4, batch_size=8, learning_starts=8, buffer_capacity=64,
                     intervention_capacity=64, grad_updates_per_step=2,
                     critic_updates_per_actor=2, num_critics=2, policy_hidden_sizes=(8,),
                     critic_hidden_sizes=(4,), num_eval_envs=2, episode_length=20,
                     human=human.HumanConfig(threshold=0.3, reaction_delay=1, min_takeover=3,
                                             action_noise=0.0))


@pytest.mark.slow
def test_takeovers_are_executed_stored_flagged_and_counted():
    env = make_env("point-mass")
    train_input = sac.make_train_input(TINY, env)
    state = sac.init(TINY, env, train_input, jax.random.PRNGKey(0))
    step = jax.jit(lambda s: sac.train_iteration(TINY, train_input, s))
    totals = 0
    for _ in range(6):
        state, metrics = step(state)
        totals += int(metrics["hil/intervention_steps"])
    online = jax.tree.map(np.asarray, state.buffer.data)
    taken = online["intervened"][:24]
    assert 0 < taken.sum() < 24 and totals == taken.sum() == int(state.human.used)
    # The executed action of a takeover is the expert's (noise 0), not the policy's.
    assert not np.allclose(online["action"][:24][taken], online["policy_action"][:24][taken])
    np.testing.assert_array_equal(online["action"][:24][~taken],
                                  online["policy_action"][:24][~taken])
    # The intervention buffer holds exactly the takeovers, in order.
    kept = jax.tree.map(np.asarray, state.interventions.data)
    assert int(state.interventions.size) == taken.sum()
    np.testing.assert_array_equal(kept["action"][:taken.sum()], online["action"][:24][taken])
    assert metrics["hil/human_seconds_total"] == pytest.approx(totals * env.dt)


def test_hil_is_registered_as_rlpd_with_a_human():
    hil = algos.get("hil")
    assert hil.train_iteration is sac.train_iteration and hil.Config is sac.HILConfig
    assert isinstance(hil.Config().human, human.HumanConfig)
    with pytest.raises(ValueError, match="intervention_fraction"):
        dataclasses.replace(TINY, intervention_fraction=0.9).validate()
    with pytest.raises(ValueError, match="hopper has no scripted solver"):
        sac.make_train_input(TINY, make_env("hopper"))


@pytest.mark.slow
def test_a_hil_run_trains_checkpoints_and_plots_its_interventions(tmp_path):
    from robojax import cli
    from robojax.io.metrics import read_metrics

    run_dir = tmp_path / "hil"
    cli.main(["train", "--algo", "hil", "--env", "point-mass", "--run-dir", str(run_dir),
              "--num-timesteps", "1024", "--num-envs", "8", "--episode-length", "50",
              "--hil.num-evals", "2", "--hil.num-eval-envs", "4", "--hil.learning-starts", "64",
              "--hil.batch-size", "32", "--hil.grad-updates-per-step", "2",
              "--hil.critic-updates-per-actor", "2", "--hil.num-critics", "2",
              "--hil.policy-hidden-sizes", "16", "--hil.critic-hidden-sizes", "16",
              "--hil.human.attention", "2", "--no-video", "--no-progress"])
    last = read_metrics(run_dir / "metrics.csv")[-1]
    # At most 2 of the 8 envs held at a time, each step 0.02 s of the human's time.
    assert 0 < last["hil/human_seconds_total"] <= 1024 * 2 / 8 * 0.02
    assert (run_dir / "interventions.png").stat().st_size > 0
    assert max(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()) > 0


@pytest.mark.parametrize("rule", ["stall", "value"])
def test_every_rule_reads_its_signal_from_the_rollout(rule):
    from robojax.core.wrappers import VmapWrapper
    from robojax.hil import intervene

    env = make_env("point-mass")
    batch = VmapWrapper(env, 3)
    env_state = jax.jit(batch.reset)(jax.random.PRNGKey(0))
    env_state = env_state.replace(step=env_state.step + 1)  # not an episode's first step
    expert = intervene.expert_policy(env)
    cfg = human.HumanConfig(rule=rule, reaction_delay=0, stall_steps=1, value_ratio=0.9)
    hstate = human.init(3, env.action_spec.size)
    policy = expert(env_state).at[0].add(1.0)  # env 0's policy strays from the expert
    value = lambda actions: -jax.numpy.abs(actions - expert(env_state)).sum(-1)  # noqa: E731
    for _ in range(2):  # the stall rule needs a step without progress first
        hstate, mask, _, _ = intervene.takeover(cfg, expert, hstate, env_state, policy,
                                                jax.random.PRNGKey(1), env.dt, value)
    if rule == "value":  # only the straying env's value falls below the expert's
        assert mask.tolist() == [True, False, False]
    else:  # the reward does not change: every env stalls
        assert mask.tolist() == [True, True, True]


def test_the_stall_rule_can_watch_a_metric_in_place_of_a_sparse_reward():
    """On a sparse-reward task the reward stays 0 until success: the stall rule watches a
    shaped metric instead, and only the envs whose metric stops rising are taken over."""
    from robojax.core.wrappers import VmapWrapper
    from robojax.hil import intervene

    env = make_env("point-mass")
    env_state = jax.jit(VmapWrapper(env, 3).reset)(jax.random.PRNGKey(0))
    expert = intervene.expert_policy(env)
    cfg = human.HumanConfig(rule="stall", reaction_delay=0, stall_steps=2,
                            progress_metric="closeness")
    hstate = human.init(3, env.action_spec.size)
    for t in range(4):  # env 1 gets closer every step, envs 0 and 2 never do
        closeness = jax.numpy.array([0.0, 0.1 * t, 0.0])
        state = env_state.replace(step=env_state.step + 1 + t,
                                  metrics={**env_state.metrics, "closeness": closeness})
        hstate, mask, _, _ = intervene.takeover(cfg, expert, hstate, state, expert(state),
                                                jax.random.PRNGKey(t), env.dt)
    assert mask.tolist() == [True, False, True]
    with pytest.raises(ValueError, match=r"progress_metric 'closeness' is not a metric of this "
                                         r"env; it has \["):
        intervene.takeover(cfg, expert, hstate, env_state, expert(env_state),
                           jax.random.PRNGKey(0), env.dt)
