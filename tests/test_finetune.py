"""RL fine-tuning of cloned generative policies (ReinFlow, DPPO): the sampling chain's
likelihood against direct Gaussian computations, the start equal to the cloned sampler, the
errors of a wrong --init-from, and fine-tuning that lifts a weak detour policy."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from robojax.policies import DiffusionPolicy, FlowPolicy, GaussianPolicy
from robojax.policies.chunking import ChunkConfig
from robojax.policies.diffusion import DenoiserConfig, cosine_alphas_cumprod

from robojax import cli
from robojax.algos import finetune
from robojax.core.types import ArraySpec
from robojax.io import run as run_dir_io
from robojax.io.metrics import read_metrics
from robojax.runs import TrainArgs
from robojax.train import train

pytestmark = pytest.mark.xdist_group("finetune")

OBS, ACT = 3, 2
CHUNKS = ChunkConfig(n_obs_steps=2, horizon=8, n_action_steps=4)
MLP = DenoiserConfig(network="mlp", mlp_hidden=(32, 32), time_dim=16)


def _perturbed(params, scale=0.3):
    """Weights moved off their initialization, so the networks' outputs are not trivial."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(7), len(leaves))
    return jax.tree.unflatten(tree, [x + scale * jax.random.normal(k, x.shape)
                                     for x, k in zip(leaves, keys, strict=True)])


def _state(cfg, policy) -> finetune.TrainState:
    """A fine-tuning state around a random cloned policy, without an env."""
    cond_size = OBS * CHUNKS.n_obs_steps
    weights = _perturbed(policy.init(jax.random.PRNGKey(0), ArraySpec((cond_size,)),
                                     ArraySpec((CHUNKS.horizon, ACT))))
    params = {"policy": weights}
    if isinstance(cfg, finetune.ReinFlowConfig):
        size = CHUNKS.horizon * ACT
        params["noise"] = _perturbed(finetune.noise_network(cfg, size).init(
            jax.random.PRNGKey(1), jnp.zeros((cond_size + 1 + size,))), 0.1)
    spec = finetune.Cloned(policy, CHUNKS, ACT)
    return finetune.TrainState(params=params, frozen=weights, opt_state=None,
                               obs_mean=jnp.zeros(OBS), obs_std=jnp.ones(OBS), env_state=None,
                               history=None, key=jax.random.PRNGKey(2),
                               iteration=jnp.zeros((), jnp.int32), spec=spec)


def _normal_log_density(x, mean, std):
    return np.sum(-0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi))


def test_reinflow_chain_likelihood_is_the_gaussian_of_each_euler_step():
    cfg = finetune.ReinFlowConfig(inference_steps=3)
    policy = FlowPolicy(denoiser=MLP)
    state = _state(cfg, policy)
    cond = jax.random.normal(jax.random.PRNGKey(3), (5, OBS * CHUNKS.n_obs_steps))
    chain, log_prob = finetune.sample_chain(cfg, state, cond, jax.random.PRNGKey(4))
    assert chain.shape == (5, 4, CHUNKS.horizon, ACT) and log_prob.shape == (5, 3, 8, 2)
    noise_net = finetune.noise_network(cfg, CHUNKS.horizon * ACT)
    for b in range(2):
        expected = 0.0
        for k in range(3):
            x = chain[b:b + 1, k]
            drift = policy.velocity(state.params["policy"], x, jnp.full((1,), k / 3),
                                    jnp.full((1,), 1 / 3), cond[b:b + 1])
            mean = np.asarray(x + drift / 3)
            raw = noise_net.apply(state.params["noise"], jnp.concatenate(
                [cond[b:b + 1], jnp.full((1, 1), k / 3), x.reshape(1, -1)], axis=-1))
            std = cfg.min_std + (cfg.max_std - cfg.min_std) / (1 + np.exp(-np.asarray(raw)))
            expected += _normal_log_density(np.asarray(chain[b, k + 1]).ravel(), mean.ravel(),
                                            std.ravel())
        assert float(log_prob[b].sum()) == pytest.approx(expected, rel=1e-4)
    again = finetune.chain_log_prob(cfg, state.spec, state.params, cond, chain)
    np.testing.assert_allclose(again, log_prob, rtol=1e-4, atol=1e-4)


def test_dppo_step_likelihood_is_the_ddpm_posterior_by_hand():
    policy = DiffusionPolicy(denoiser=MLP, num_train_steps=20, sampler="ddpm")
    cfg = finetune.DPPOConfig(inference_steps=4, ft_denoising_steps=2, min_std=1e-3)
    state = _state(cfg, policy)
    cond = jax.random.normal(jax.random.PRNGKey(3), (1, OBS * CHUNKS.n_obs_steps))
    chain, log_prob = finetune.sample_chain(cfg, state, cond, jax.random.PRNGKey(4))
    assert log_prob.shape == (1, 2, 8, 2)  # the last two of four steps are trained
    # The first trained step (k = 2 of 4): timestep t = 5 of T = 20 towards t = 0.
    alphas = cosine_alphas_cumprod(20)
    ab, ab_prev = alphas[5], alphas[0]
    beta = 1 - ab / ab_prev
    x = np.asarray(chain[0, 0])
    x0 = np.clip(np.asarray(policy._predict(state.params["policy"], chain[:, 0],
                                            jnp.array([5]), cond))[0], -1, 1)
    mean = (np.sqrt(ab_prev) * beta / (1 - ab)) * x0 + \
        (np.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab)) * x
    std = np.sqrt(beta * (1 - ab_prev) / (1 - ab))
    expected = _normal_log_density(np.asarray(chain[0, 1]), mean, std)
    assert float(log_prob[0, 0].sum()) == pytest.approx(expected, rel=1e-4)
    # The last step (t = 0) lands on the predicted chunk; its std is the floor.
    x0_last = np.clip(np.asarray(policy._predict(state.params["policy"], chain[:, 1],
                                                 jnp.array([0]), cond))[0], -1, 1)
    expected_last = _normal_log_density(np.asarray(chain[0, 2]), x0_last, cfg.min_std)
    assert float(log_prob[0, 1].sum()) == pytest.approx(expected_last, rel=1e-4)


@pytest.mark.parametrize("family", ["flow", "diffusion"])
def test_fine_tuning_starts_at_the_cloned_sampler(family):
    """The noise-free chain with the cloned weights is the cloned policy's own sampler."""
    if family == "flow":
        policy, cfg = FlowPolicy(denoiser=MLP), finetune.ReinFlowConfig(inference_steps=4)
    else:
        policy = DiffusionPolicy(denoiser=MLP, num_train_steps=20)
        cfg = finetune.DPPOConfig(inference_steps=5, ft_denoising_steps=2)
    state = _state(cfg, policy)
    cond = jax.random.normal(jax.random.PRNGKey(3), (6, OBS * CHUNKS.n_obs_steps))
    x0 = jax.random.normal(jax.random.PRNGKey(5), (6, CHUNKS.horizon, ACT))
    ours = finetune.mean_chain(cfg, state, cond, x0)
    cloned = policy.sample_from_noise(state.params["policy"], cond, {"init": x0},
                                      steps=cfg.inference_steps)
    np.testing.assert_allclose(ours, cloned, atol=1e-6)
    assert float(jnp.abs(ours).max()) > 0.05  # not a trivially zero chunk


@pytest.mark.parametrize("family", ["flow", "diffusion"])
def test_the_exported_program_is_the_controllers_plan(family):
    """`program` (what `robojax export` compiles) executes the n_action_steps actions of the
    noise-free chain that the controller plans, from the same starting noise."""
    if family == "flow":
        policy, cfg = FlowPolicy(denoiser=MLP), finetune.ReinFlowConfig(inference_steps=3)
    else:
        policy = DiffusionPolicy(denoiser=MLP, num_train_steps=20)
        cfg = finetune.DPPOConfig(inference_steps=4, ft_denoising_steps=2)
    state = _state(cfg, policy)
    history = jax.random.normal(jax.random.PRNGKey(3), (4, CHUNKS.n_obs_steps, OBS))
    key = jax.random.PRNGKey(5)
    program = finetune.program(cfg, state)
    assert (program.n_obs_steps, program.n_action_steps) == (2, 4)
    noise = {"init": jax.random.normal(key, (4, CHUNKS.horizon, ACT))}
    planned = finetune.plan_fn(cfg, state)(history, key)
    np.testing.assert_allclose(program.fn(history, noise), planned[:, 1:5], atol=1e-6)


def _fake_run(path: Path, **args) -> Path:
    run_dir_io.write_config(path, TrainArgs(**args))
    return path


def test_a_wrong_init_from_is_refused_by_name(tmp_path):
    def tune(algo, init_from, env="detour"):
        return train(TrainArgs(algo=algo, env=env, init_from=init_from, progress=False,
                               run_dir=tmp_path / "tuned"))

    with pytest.raises(ValueError, match="pass --init-from RUN_DIR"):
        tune("reinflow", None)
    with pytest.raises(ValueError, match="is not a run directory"):
        tune("reinflow", tmp_path)
    ppo = _fake_run(tmp_path / "ppo", algo="ppo", env="detour")
    with pytest.raises(ValueError, match="`--algo ppo` run.*behaviour-cloned flow"):
        tune("reinflow", ppo)
    diffusion = _fake_run(tmp_path / "diffusion", algo="bc", policy="diffusion", env="detour",
                          dataset=Path("demos.hdf5"))
    with pytest.raises(ValueError, match=r"--algo dppo fine-tunes it"):
        tune("reinflow", diffusion)
    gaussian = _fake_run(tmp_path / "gaussian", algo="bc", policy="gaussian", env="detour",
                         dataset=Path("demos.hdf5"))
    with pytest.raises(ValueError, match="fine-tunes a behaviour-cloned diffusion"):
        tune("dppo", gaussian)
    with pytest.raises(ValueError, match="trained on 'detour', not 'point-mass'"):
        tune("dppo", diffusion, env="point-mass")
    with pytest.raises(ValueError, match="holds no checkpoint to start from"):
        tune("dppo", diffusion)  # config.json alone: the clone never saved a checkpoint
    assert not (tmp_path / "tuned").exists()  # refused before anything is written


def test_fine_tuning_configs_refuse_what_cannot_run():
    with pytest.raises(ValueError, match="min_std must be > 0"):
        finetune.DPPOConfig(min_std=0.0).validate()
    with pytest.raises(ValueError, match="ft_denoising_steps must be >= 1"):
        finetune.DPPOConfig(ft_denoising_steps=0).validate()
    with pytest.raises(ValueError, match=r"max_std \(0.01\) must be >= min_std"):
        finetune.ReinFlowConfig(max_std=0.01).validate()
    assert dataclasses.replace(finetune.DPPOConfig(), sampler="ddpm").validate() is None


@pytest.fixture(scope="module")
def weak_clone(detour_demos, tmp_path_factory):
    """A diffusion policy cloned from the detour demos for 500 gradient steps (success ~0.45)."""
    bc = tmp_path_factory.mktemp("clone") / "bc"
    cli.main(["train", "--algo", "bc", "--policy", "diffusion", "--dataset", str(detour_demos),
              "--env", "detour", "--run-dir", str(bc), "--no-progress", "--no-video",
              "--bc.diffusion.denoiser.network", "mlp", "--bc.diffusion.denoiser.mlp-hidden",
              "256", "256", "256", "--bc.num-grad-steps", "500", "--bc.num-evals", "0"])
    return bc


@pytest.mark.slow
def test_fine_tuning_lifts_a_weak_detour_policy(weak_clone, tmp_path, resume_matches_whole_run):
    """DPPO end to end (ReinFlow shares its loop; its chain is checked above), then resumed
    from its checkpoint before the last; the 3-seed figures of both are in
    experiments/generative/finetune_detour.py."""
    bc, algo, tuned = weak_clone, "dppo", tmp_path / "dppo"
    cli.main(["train", "--algo", algo, "--env", "detour", "--init-from", str(bc),
              "--env-config", "reward_scales={'progress': 0.0}", "--run-dir", str(tuned),
              "--no-progress", "--no-video", "--num-timesteps", "250000",
              f"--{algo}.num-evals", "2", f"--{algo}.num-eval-envs", "256"])
    rows = read_metrics(tuned / "metrics.csv")
    start, end = rows[0]["eval/success_rate"], rows[-1]["eval/success_rate"]
    assert start < 0.75 and end >= start + 0.15, (start, end)
    resume_matches_whole_run(tuned, tmp_path)  # with the frozen clone and its chunk in progress


@pytest.mark.slow
def test_the_residual_starts_exactly_at_the_base_policy(weak_clone):
    """At initialization the residual's output layer is zero: the combined policy's actions
    are bitwise the cloned policy's, in evaluation and in the training rollout's base."""
    from robojax import algos, envs
    from robojax.algos import residual
    from robojax.rollout import rollout_states
    from robojax.runs import load_run

    bc = weak_clone
    base = load_run(bc)
    env = envs.make("detour")
    cfg = residual.ResidualConfig(init_from=bc, num_envs=8, rollout_length=4,
                                  num_minibatches=2)
    state = residual.init(cfg, env, residual.make_train_input(cfg, env), jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(3)
    ours, _ = rollout_states(env, residual.controller(cfg, state), key, 40, 16)
    cloned, _ = rollout_states(env, algos.get("bc").controller(base.cfg, base.state), key, 40,
                               16)
    np.testing.assert_array_equal(np.asarray(ours.obs), np.asarray(cloned.obs))
    # The mean correction is exactly zero, while the sampled ones explore around it.
    inputs = jnp.zeros((3, env.observation_spec.size + env.action_spec.size))
    policy = residual.make_policy(cfg)
    assert not np.any(np.asarray(policy.mode(state.params["policy"], inputs)))
    assert np.all(np.asarray(policy.sample(state.params["policy"], inputs, key)) != 0)


def test_a_mirrored_residual_corrects_mirror_images_with_mirror_images():
    """With `mirror=True` on detour (x -> -x) the correction of a mirrored observation and base
    action is the mirrored correction, and mirrored samples are exactly as likely: the network
    cannot favour one way round the wall. Zero-initialized, its correction is exactly zero."""
    from robojax import envs
    from robojax.algos import residual
    from robojax.core import normalize

    env = envs.make("detour")
    cfg = residual.ResidualConfig(hidden_sizes=(32, 32), mirror=True)
    mirror = residual.task_mirror(cfg, env)
    obs_map, action_map = np.array(mirror.obs_map), np.array(mirror.action_map)
    policy = residual.make_policy(cfg, mirror)
    size = env.observation_spec.size + env.action_spec.size
    params = policy.init(jax.random.PRNGKey(0), ArraySpec((size,)), env.action_spec)
    params = {**_perturbed(params), "log_std": jnp.array([-0.5, -1.5])}
    rng = np.random.default_rng(0)
    stats = normalize.update(normalize.init((6,)), jnp.asarray(  # off-centre statistics
        0.3 + rng.standard_normal((64, 6)), jnp.float32))
    obs = jnp.asarray(rng.standard_normal((5, 6)), jnp.float32)
    base = jnp.asarray(rng.uniform(-1, 1, (5, 2)), jnp.float32)
    inputs = residual.residual_input(cfg, stats, obs, base, mirror)
    images = residual.residual_input(cfg, stats, obs @ obs_map.T, base @ action_map.T, mirror)
    assert inputs.shape == (5, 2, size)
    mean = np.asarray(policy.mode(params, inputs))
    assert np.abs(mean).min() > 1e-3  # a correction that is not trivially symmetric
    np.testing.assert_allclose(policy.mode(params, images), mean @ action_map.T, atol=1e-6)
    action = policy.sample(params, inputs, jax.random.PRNGKey(1))
    np.testing.assert_allclose(policy.log_prob(params, images, action @ action_map.T),
                               policy.log_prob(params, inputs, action), rtol=1e-6)
    plain = residual.make_policy(dataclasses.replace(cfg, mirror=False))  # the same network
    assert not np.allclose(plain.mode(params, images[:, 0]),
                           plain.mode(params, inputs[:, 0]) @ action_map.T, atol=1e-2)
    zero = jax.tree.map(jnp.zeros_like, params)
    assert not np.any(np.asarray(policy.mode(zero, inputs)))


@pytest.mark.parametrize("mirror", [False, True])
def test_an_exported_residual_corrects_each_planned_action_as_its_controller_does(tmp_path,
                                                                                  mirror):
    """A residual run exports its base's program and its correction; the runtime plans with
    the one and corrects every executed action on that step's observation with the other,
    exactly as the controller does (a Gaussian base, so both sides are deterministic). The
    same for a mirrored correction, which feeds its network twice."""
    import types

    from robojax import algos, envs
    from robojax.algos import bc, residual
    from robojax.core import normalize
    from robojax.deploy import Policy
    from robojax.deploy import contract as contract_io
    from robojax.export import export_program, formats

    env = envs.make("detour")
    obs_size, act = env.observation_spec.size, env.action_spec.size
    base_cfg = bc.BCConfig(policy="gaussian", chunks=CHUNKS,
                           gaussian=GaussianPolicy(hidden_sizes=(32, 32)))
    weights = _perturbed(base_cfg.make_policy().init(
        jax.random.PRNGKey(0), ArraySpec((CHUNKS.n_obs_steps * obs_size,)),
        ArraySpec((CHUNKS.horizon, act))))
    base = bc.TrainState(weights, weights, None, jnp.linspace(-1, 1, obs_size),
                         jnp.full(obs_size, 2.0), jax.random.PRNGKey(1),
                         jnp.zeros((), jnp.int32), act)
    cfg = residual.ResidualConfig(hidden_sizes=(32, 32), mirror=mirror)
    reflection = residual.task_mirror(cfg, env)
    correction = _perturbed(residual.make_policy(cfg, reflection).init(
        jax.random.PRNGKey(2), ArraySpec((obs_size + act,)), env.action_spec))
    rng = np.random.default_rng(0)
    stats = normalize.update(normalize.init((obs_size,)),
                             jnp.asarray(1 + 3 * rng.standard_normal((64, obs_size))))
    state = residual.TrainState(
        params={"policy": correction}, opt_state=None, obs_stats=stats, base=base,
        base_memory=None, env_state=None, key=jax.random.PRNGKey(3),
        iteration=jnp.zeros((), jnp.int32), base_cfg=base_cfg, mirror=reflection)

    # Ten steps of one episode: plans at steps 0, 4 and 8, a correction on every step.
    observations = rng.standard_normal((10, obs_size)).astype(np.float32)

    def play(controller):
        at = lambda t: types.SimpleNamespace(obs=jnp.asarray(observations[t:t + 1]),
                                             step=jnp.array([t]))
        memory, actions = controller.init(at(0)), []
        for t in range(len(observations)):
            action, memory = controller.step(memory, at(t), jax.random.PRNGKey(t))
            actions.append(np.asarray(action[0]))
        return np.array(actions)

    expected = play(residual.controller(cfg, state))
    planned = np.clip(play(algos.get("bc").controller(base_cfg, base)), -1, 1)
    assert np.abs(expected - planned).max() > 0.05  # the correction moves the actions

    contract = export_program(residual.program(cfg, state), env, tmp_path)
    contract_io.write(tmp_path, contract)
    assert [i["name"] for i in contract["correction"]["inputs"]] == ["obs", "planned"]
    assert contract["sampler"]["correction"] == {"algo": "residual", "residual_scale": 0.3}
    policy = Policy.load(tmp_path)
    commands = np.array([policy.act(obs) for obs in observations])
    low, high = np.array(contract["action"]["ctrl_low"]), np.array(contract["action"]["ctrl_high"])
    np.testing.assert_allclose(commands, low + (expected + 1) / 2 * (high - low), atol=1e-5)
    # StableHLO's correction gives ONNX's.
    hlo = formats.load_stablehlo(tmp_path / "correction.stablehlo")
    np.testing.assert_allclose(np.asarray(hlo(observations, planned)[0]),
                               policy.correct(observations, planned)[0], atol=1e-5)


@pytest.mark.quick_compile
@pytest.mark.slow
def test_a_residual_run_resumed_from_an_earlier_checkpoint_ends_as_the_whole_run(
        weak_clone, tmp_path, compiled_programs, resume_matches_whole_run):
    """As DPPO's run above (ReinFlow shares its state and loop): the residual's state, with
    the frozen base and its chunk memory, round-trips through a checkpoint exactly. Its state
    mixes the restored base with new weights, and each run still compiles its chunk and its
    evaluation once (the resumed one reading them back from the cache)."""
    whole = tmp_path / "whole"
    cli.main(["train", "--algo", "residual", "--env", "detour", "--init-from", str(weak_clone),
              "--run-dir", str(whole), "--no-progress", "--no-video", "--num-envs", "16",
              "--num-timesteps", "1024", "--residual.rollout-length", "16",
              "--residual.num-evals", "2", "--residual.num-eval-envs", "8"])
    assert compiled_programs.count("jit(run_chunk)") == 1
    assert compiled_programs.count("jit(run_eval)") == 1
    resume_matches_whole_run(whole, tmp_path)
    assert compiled_programs.count("jit(run_chunk)") == 2


def test_residual_refuses_a_run_that_is_not_a_clone_or_a_mirror_the_env_lacks(tmp_path):
    from robojax.algos.residual import ResidualConfig

    ppo = _fake_run(tmp_path / "ppo", algo="ppo", env="detour")
    with pytest.raises(ValueError, match="residual fine-tunes a behaviour-cloned gaussian, "
                                         "diffusion, flow or energy policy"):
        train(TrainArgs(algo="residual", env="detour", init_from=ppo, progress=False,
                        run_dir=tmp_path / "tuned"))
    clone = _fake_run(tmp_path / "clone", algo="bc", policy="gaussian", env="point-mass",
                      dataset=Path("demos.hdf5"))
    with pytest.raises(ValueError, match=r"--residual.mirror needs an env with a mirror "
                                         r"symmetry.*point-mass has none.*\['detour', 'push-t'\]"):
        train(TrainArgs(algo="residual", env="point-mass", init_from=clone, progress=False,
                        run_dir=tmp_path / "mirrored", residual=ResidualConfig(mirror=True)))
    assert not (tmp_path / "mirrored").exists()
    from robojax import envs
    from robojax.algos import residual
    from robojax.core.reflection import Reflection

    detour = envs.make("detour")
    turn = np.array([[0.5, 0.75 ** 0.5], [0.75 ** 0.5, -0.5]])  # a mirror that mixes the actions
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(detour), "reflection", lambda env: Reflection(np.eye(6), turn))
        with pytest.raises(ValueError, match="only permutes them and flips signs; detour's"):
            residual.task_mirror(ResidualConfig(mirror=True), detour)
    with pytest.raises(ValueError, match="residual_scale must be > 0"):
        ResidualConfig(residual_scale=0.0).validate()


@pytest.mark.parametrize("family", ["flow", "diffusion"])
def test_fine_tuned_programs_export_to_both_formats_with_the_jax_outputs(family, tmp_path):
    """What `robojax export` writes for a ReinFlow or DPPO run (the fine-tuned chain, its
    starting noise an input) gives the JAX program's actions in ONNX and StableHLO."""
    import onnxruntime

    from robojax.export import formats
    from robojax.export.graph import policy_function, signature

    if family == "flow":
        policy, cfg = FlowPolicy(denoiser=MLP), finetune.ReinFlowConfig(inference_steps=3)
    else:
        policy = DiffusionPolicy(denoiser=MLP, num_train_steps=20)
        cfg = finetune.DPPOConfig(inference_steps=4, ft_denoising_steps=2)
    program = finetune.program(cfg, _state(cfg, policy))
    sig = signature(program, OBS, ACT)
    low, high = -2.0 * np.ones(ACT), 3.0 * np.ones(ACT)
    exported = policy_function(program, low, high)
    rng = np.random.default_rng(0)
    inputs = {k: rng.standard_normal((16, *shape)).astype(np.float32)
              for k, shape in sig.inputs.items()}
    actions, command = jax.jit(exported)(*inputs.values())
    assert float(np.abs(np.asarray(actions)).max()) > 0.05  # not a trivially zero chunk
    # `_state`'s weights are far off their initialization (large activations): ONNX Runtime's
    # float32 sums, in another order than XLA's, drift by up to ~2e-4 over the Euler steps.
    session = onnxruntime.InferenceSession(formats.onnx(exported, sig, unroll=True))
    onnx_actions, onnx_command = session.run(None, inputs)
    np.testing.assert_allclose(onnx_actions, actions, atol=5e-4, rtol=0)
    np.testing.assert_allclose(onnx_command, command, atol=5e-4 * (high - low).max(), rtol=0)
    path = tmp_path / "policy.stablehlo"
    path.write_bytes(formats.stablehlo(exported, sig))
    np.testing.assert_allclose(formats.load_stablehlo(path)(*inputs.values())[0], actions,
                               atol=1e-5, rtol=0)
