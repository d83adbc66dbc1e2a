"""Export: every policy family to ONNX and StableHLO with the JAX policy's outputs, and the
contract that ties an exported program to its run."""

import collections
import json
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import onnx
import onnxruntime
import pytest
from robojax.policies import DiffusionPolicy, EnergyPolicy, FlowPolicy, GaussianPolicy
from robojax.policies.diffusion import DenoiserConfig

from robojax.algos import bc
from robojax.core.types import ArraySpec
from robojax.deploy import ContractError, Policy
from robojax.export import export_run, formats
from robojax.export.graph import policy_function, signature

pytestmark = [pytest.mark.xdist_group("export"),  # one worker trains and exports the PPO run once
              pytest.mark.quick_compile]  # compile-bound (tests/conftest.py)

OBS, ACT = 5, 2
UNET = DenoiserConfig(down_dims=(16, 32), time_dim=16)
MLP = DenoiserConfig(network="mlp", mlp_hidden=(32, 32), time_dim=16)
FAMILIES = {
    "gaussian": dict(policy="gaussian", gaussian=GaussianPolicy(hidden_sizes=(32, 32))),
    "diffusion-mlp-ddpm": dict(policy="diffusion",
                               diffusion=DiffusionPolicy(denoiser=MLP, sampler="ddpm")),
    "flow-mlp-1-step": dict(policy="flow", flow=FlowPolicy(denoiser=MLP), inference_steps=1),
    "energy-descent": dict(policy="energy", energy=EnergyPolicy(
        hidden_sizes=(32, 32), num_proposals=32, descent_starts=4)),
    "flow-unet-1-step": dict(policy="flow", flow=FlowPolicy(denoiser=UNET), inference_steps=1),
    "diffusion-unet-ddim-10": dict(policy="diffusion", diffusion=DiffusionPolicy(denoiser=UNET)),
    "flow-unet-10-step": dict(policy="flow", flow=FlowPolicy(denoiser=UNET)),
}
SLOW = ("diffusion-unet-ddim-10", "flow-unet-10-step")  # U-Net conversions take ~15 s each


def _bc_program(**fields):
    """The program of an untrained BC policy (To=2, Tp=8, Ta=4) on OBS-sized observations."""
    cfg = bc.BCConfig(chunks=bc.ChunkConfig(2, 8, 4), **fields)
    params = cfg.make_policy().init(jax.random.PRNGKey(0), ArraySpec((2 * OBS,)),
                                    ArraySpec((8, ACT)))
    # Some output layers start at zero; random weights everywhere make every output count.
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(2), len(leaves))
    params = jax.tree.unflatten(tree, [x + 0.05 * jax.random.normal(k, x.shape, x.dtype)
                                       for x, k in zip(leaves, keys, strict=True)])
    state = bc.TrainState(params, params, None, jnp.linspace(-1, 1, OBS), jnp.full(OBS, 2.0),
                          jax.random.PRNGKey(1), jnp.zeros((), jnp.int32), ACT)
    return bc.program(cfg, state)


def _inputs(sig, program, batch, seed=0):
    rng = np.random.default_rng(seed)
    inputs = {name: rng.standard_normal((batch, *shape), np.float32)
              for name, shape in sig.inputs.items()}
    for name, spec in program.noise.items():
        if spec.kind == "uniform":
            inputs["noise_" + name] = rng.uniform(-1, 1, (batch, *spec.shape)).astype(np.float32)
    return inputs


@pytest.mark.parametrize("family", [pytest.param(f, marks=pytest.mark.slow) if f in SLOW else f
                                    for f in FAMILIES])
def test_every_family_exports_to_both_formats_with_the_jax_outputs(family, tmp_path):
    program = _bc_program(**FAMILIES[family])
    sig = signature(program, OBS, ACT)
    low, high = np.array([-2.0, 0.0]), np.array([2.0, 4.0])
    policy = policy_function(program, low, high)
    inputs = _inputs(sig, program, batch=32)
    actions, command = jax.jit(policy)(*inputs.values())
    assert actions.shape == (32, 4, ACT)  # the Ta executed actions of the chunk
    np.testing.assert_allclose(command, low + (actions + 1) / 2 * (high - low), atol=1e-6)

    # Ten unrolled U-Nets take minutes to convert: the 10-step tests keep the Loop node, the
    # others check the unrolled graph that `robojax export` writes by default.
    session = onnxruntime.InferenceSession(formats.onnx(policy, sig, unroll=family not in SLOW))
    assert [i.name for i in session.get_inputs()] == list(sig.inputs)
    assert [o.name for o in session.get_outputs()] == ["actions", "command"]
    onnx_actions, onnx_command = session.run(None, inputs)
    np.testing.assert_allclose(onnx_actions, actions, atol=1e-5, rtol=0)
    np.testing.assert_allclose(onnx_command, command, atol=1e-5, rtol=0)

    path = tmp_path / "policy.stablehlo"
    path.write_bytes(formats.stablehlo(policy, sig))
    hlo_actions, _ = formats.load_stablehlo(path)(*inputs.values())
    np.testing.assert_allclose(hlo_actions, actions, atol=1e-5, rtol=0)
    # The batch dimension is symbolic in both formats.
    one = {k: v[:1] for k, v in inputs.items()}
    np.testing.assert_allclose(session.run(None, one)[0], actions[:1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["flow-unet-1-step", "energy-descent"])
def test_exported_graphs_hold_only_ops_onnx_runtime_runs_fast(family):
    """Convolutions and multiplies with leading dimensions run as Gemm (ONNX Runtime's 1D Conv
    and its Einsum are up to 4x slower at batch 1), samplers as straight-line code (a Loop
    body is barely optimized), no Softplus (~50x slower than an Exp)."""
    program = _bc_program(**FAMILIES[family])
    policy = policy_function(program, -np.ones(ACT), np.ones(ACT))
    model = onnx.load_from_string(formats.onnx(policy, signature(program, OBS, ACT)))
    ops = collections.Counter(node.op_type for node in model.graph.node)
    assert ops["Gemm"] > 0
    assert not {"Conv", "Einsum", "Loop", "Softplus"} & set(ops), ops


def test_the_energy_descent_exports_as_a_loop_node_too():
    """`--no-unroll-sampler` keeps the descent's early stop: a Loop node, the same actions."""
    program = _bc_program(**FAMILIES["energy-descent"])
    sig = signature(program, OBS, ACT)
    policy = policy_function(program, -np.ones(ACT), np.ones(ACT))
    model = formats.onnx(policy, sig, unroll=False)
    assert "Loop" in {node.op_type for node in onnx.load_from_string(model).graph.node}
    inputs = _inputs(sig, program, batch=16)
    onnx_actions, _ = onnxruntime.InferenceSession(model).run(None, inputs)
    np.testing.assert_allclose(onnx_actions, jax.jit(policy)(*inputs.values())[0],
                               atol=1e-5, rtol=0)


def test_noise_is_an_input_not_a_random_op():
    program = _bc_program(**FAMILIES["diffusion-mlp-ddpm"])
    sig = signature(program, OBS, ACT)
    policy = jax.jit(policy_function(program, -np.ones(ACT), np.ones(ACT)))
    inputs = _inputs(sig, program, batch=4)
    same, _ = policy(*inputs.values())
    np.testing.assert_array_equal(same, policy(*inputs.values())[0])
    for name in program.noise:  # each noise input moves the actions
        other = {**inputs, "noise_" + name: inputs["noise_" + name] + 0.5}
        assert not np.allclose(policy(*other.values())[0], same), name


def test_the_keyed_sampler_is_the_noise_driven_one():
    """`sample(key)` draws the noise `sample_from_noise` takes: eval and export agree."""
    policy = FlowPolicy(denoiser=MLP)
    params = policy.init(jax.random.PRNGKey(0), ArraySpec((OBS,)), ArraySpec((8, ACT)))
    obs, key = jax.random.normal(jax.random.PRNGKey(1), (3, OBS)), jax.random.PRNGKey(2)
    noise = {"init": jax.random.normal(key, (3, 8, ACT))}
    np.testing.assert_array_equal(policy.sample(params, obs, key),
                                  policy.sample_from_noise(params, obs, noise))


def test_a_sampled_ppo_policy_exports_with_its_noise_as_an_input():
    from robojax import envs
    from robojax.algos import ppo

    env = envs.make("point-mass")
    cfg = ppo.PPOConfig(num_envs=4, rollout_length=4, num_minibatches=1,
                        deterministic_eval=False)
    state = ppo.init(cfg, env, ppo.make_train_input(cfg, env), jax.random.PRNGKey(0))
    program = ppo.program(cfg, state)
    obs_size, act_size = env.observation_spec.shape[0], env.action_spec.shape[0]
    sig = signature(program, obs_size, act_size)
    assert list(sig.inputs) == ["obs", "noise_action"]
    policy = policy_function(program, -np.ones(act_size), np.ones(act_size))
    inputs = _inputs(sig, program, batch=16)
    actions, _ = jax.jit(policy)(*inputs.values())
    noise = inputs["noise_action"]
    expected = np.clip(ppo.act(cfg, state, inputs["obs"][:, -1], noise), -1.0, 1.0)
    np.testing.assert_allclose(actions[:, 0], expected, atol=1e-6)
    onnx_actions, _ = onnxruntime.InferenceSession(formats.onnx(policy, sig)).run(None, inputs)
    np.testing.assert_allclose(onnx_actions, actions, atol=1e-5, rtol=0)
    assert not np.allclose(onnx_actions[:, 0], np.clip(ppo.act(cfg, state, inputs["obs"][:, -1]),
                                                       -1.0, 1.0))


@pytest.fixture(scope="session")
def ppo_export(tmp_path_factory):
    """A small PPO cartpole run, exported to both formats. Its observation ends with its last
    2 actions (`observe_last_actions`), which the runtime appends itself."""
    from robojax.cli import main

    root = tmp_path_factory.mktemp("export")
    main(["train", "--env", "cartpole-balance", "--run-dir", str(root / "run"), "--no-video",
          "--env-config", "observe_last_actions=2",
          "--num-envs", "32", "--num-timesteps", "4096", "--ppo.unroll-length", "16",
          "--ppo.num-minibatches", "4", "--ppo.num-evals", "1", "--ppo.num-eval-envs", "4",
          "--episode-length", "60", "--no-progress"])
    main(["export", str(root / "run"), "--out", str(root / "out")])
    return root / "run", root / "out"


@pytest.mark.slow
def test_exported_ppo_policy_acts_as_the_trained_one(ppo_export):
    from robojax.runs import load_run

    run_dir, out = ppo_export
    contract = json.loads((out / "contract.json").read_text())
    assert contract["env"]["name"] == "cartpole-balance"
    assert contract["action"]["names"] == ["slide"] and contract["control_dt"] == 0.01
    assert contract["observation"]["layout"][0] == {"name": "cart_position", "slice": [0, 1],
                                                    "unit": "m"}
    assert contract["observation"]["layout"][-1] == {"name": "last_actions", "slice": [5, 7],
                                                     "unit": "action"}
    assert contract["observation"]["size"] == 7 and contract["observation"]["last_actions"] == 2
    assert contract["env"]["episode_length"] == 60 and contract["run"]["dir"] == str(run_dir)
    assert [i["name"] for i in contract["inputs"]] == ["obs"]
    assert contract["files"]["onnx"]["path"] == "policy.onnx"
    run = load_run(run_dir)
    obs = np.random.default_rng(0).standard_normal((256, 7), np.float32)
    expected = np.clip(np.asarray(run.algo.act(run.cfg, run.state, obs)), -1, 1)
    policy = Policy.load(out, env="cartpole-balance")
    np.testing.assert_allclose(policy.plan(obs[:, None])[0][:, 0], expected, atol=1e-5)
    hlo = formats.load_stablehlo(out / "policy.stablehlo")(obs[:, None])
    np.testing.assert_allclose(np.asarray(hlo[0])[:, 0], expected, atol=1e-5)
    # The robot gives the task's 5 values; an episode's first step appends 2 zero actions.
    first = np.concatenate([obs[0, :5], np.zeros(2, np.float32)])
    np.testing.assert_allclose(policy.act(obs[0, :5]),
                               np.clip(run.algo.act(run.cfg, run.state, first), -1, 1), atol=1e-5)


@pytest.mark.slow
def test_the_runtime_refuses_what_does_not_match_its_contract(ppo_export, tmp_path):
    run_dir, out = ppo_export
    with pytest.raises(ContractError, match="trained on 'cartpole-balance', not 'hopper'"):
        Policy.load(out, env="hopper")
    tampered = shutil.copytree(out, tmp_path / "tampered")
    data = bytearray((tampered / "policy.onnx").read_bytes())
    data[-20] ^= 0xFF
    (tampered / "policy.onnx").write_bytes(bytes(data))
    with pytest.raises(ContractError, match="changed or damaged after export"):
        Policy.load(tampered)
    (tampered / "policy.onnx").unlink()
    with pytest.raises(ContractError, match="policy.onnx is missing"):
        Policy.load(tampered)
    with pytest.raises(ContractError, match="no contract.json"):
        Policy.load(run_dir)
    edited = shutil.copytree(out, tmp_path / "edited")
    contract = json.loads((edited / "contract.json").read_text())
    contract["inputs"][0]["shape"][-1] = 9  # a contract from another export
    (edited / "contract.json").write_text(json.dumps(contract))
    with pytest.raises(ContractError, match="differ from the contract"):
        Policy.load(edited)
    with pytest.raises(ValueError, match="unknown export format"):
        export_run(run_dir, tmp_path / "x", formats=("tflite",))
    with pytest.raises(ValueError, match="the ppo policy has none"):
        export_run(run_dir, tmp_path / "x", steps=4)


@pytest.mark.slow
def test_the_runtime_runs_without_jax(ppo_export):
    _, out = ppo_export
    script = (
        "import sys\n"
        "for name in ('jax', 'jaxlib', 'flax', 'mujoco', 'optax'):\n"
        "    sys.modules[name] = None  # importing any of them now fails\n"
        "from robojax.deploy import Policy\n"
        f"policy = Policy.load({str(out)!r})\n"
        "print(float(policy.act([0.0, 1.0, 0.0, 0.0, 0.0])[0]))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert -1.0 <= float(result.stdout.strip()) <= 1.0


@pytest.mark.slow
def test_sim2sim_runs_the_export_in_mujoco_c_beside_its_mjx_evaluation(ppo_export):
    from robojax.sim2sim import sim2sim

    _, out = ppo_export
    result = sim2sim(out, episodes=8)
    summary = result.summary()
    assert result.loop == {"steps": 8 * 60, "faults": 0, "stale": 0}  # 60: the run's length
    assert summary["return_ratio"] == pytest.approx(1.0, abs=0.05)
    assert json.loads((out / "sim2sim.json").read_text())["returns"] == result.returns
    noisy = sim2sim(out, episodes=8, obs_noise=0.05, action_delay=2, compare=False)
    assert noisy.returns != result.returns and noisy.mjx is None


@pytest.mark.slow
def test_sim2sim_refuses_a_model_that_changed_since_export(ppo_export, tmp_path):
    from robojax.sim2sim import sim2sim

    _, out = ppo_export
    edited = shutil.copytree(out, tmp_path / "edited")
    contract = json.loads((edited / "contract.json").read_text())
    contract["env"]["mjcf_sha256"] = "0" * 64
    (edited / "contract.json").write_text(json.dumps(contract))
    with pytest.raises(ContractError, match="MuJoCo model differs"):
        sim2sim(edited, compare=False)
    with pytest.raises(ContractError, match="trained on 'cartpole-balance', not 'hopper'"):
        sim2sim(out, env="hopper")
